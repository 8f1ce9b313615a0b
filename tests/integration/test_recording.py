"""
Recordings with real parts: ffmpeg sends MP3 and Ogg Opus to a GoCast that
records with a short size rotation; when the source is done every file is
closed (no .part left), and each one decodes end to end with ffmpeg (no
broken first frame: every Ogg file starts with its headers, every MP3 file
with a whole frame).
"""

import json
import os
import sys
from pathlib import Path

import mutagen
import treq
from twisted.internet import reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gocast.config import parse_config
from gocast.outputs.uploader import PART_SIZE, upload_file

from ._moto import ACCESS_KEY, SECRET_KEY, MotoServer
from ._process import ServerProcess, eventually, spawn_tool, start_server

KEY = "gck_recording-archive-key-0123"

SOURCES = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3"],
    "aac": ["-c:a", "aac", "-b:a", "128k", "-content_type", "audio/aac", "-f", "adts"],
    "ogg": ["-c:a", "libopus", "-b:a", "96k", "-content_type", "application/ogg", "-f", "ogg"],
}


async def stream(testcase, base, kind, seconds):
    """A real ffmpeg source sends ``seconds`` of a sine to /live, in ``kind`` (mp3 or ogg), and leaves."""
    url = "icecast://source:hackme@%s/live" % base[len("http://"):]
    source = spawn_tool(testcase, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                            "-i", "sine=frequency=440:duration=%d" % seconds] + SOURCES[kind] + [url])
    code, _ = await source.ended
    testcase.assertEqual(code, 0, source.output.decode())


class RecordingTests(TestCase):
    timeout = 120

    async def record(self, kind, seconds=7, recording="rotation size:24KB", extension=None):
        folder = os.path.abspath(self.mktemp())
        config = ('api_keys { archive { key "%s" permissions [manage_recordings] } }\n'
                  'mounts { live { recording { enabled true path "%s" %s } } }' % (KEY, folder, recording))
        process, base = self.process, self.base = await start_server(self, reactor, config)
        await stream(self, base, kind, seconds)

        def closed():
            names = os.listdir(folder) if os.path.isdir(folder) else []
            return names and not any(name.endswith(".part") for name in names)

        await eventually(reactor, closed, timeout=20, what="every recording closed after the source left")
        names = sorted(n for n in os.listdir(folder) if not n.endswith(".tracks.json"))
        self.assertGreater(len(names), 2, names)  # rotated
        self.assertEqual(sorted(os.listdir(folder)), sorted(names + [n + ".tracks.json" for n in names]))
        self.assertTrue(all(name.startswith("live-") and name.endswith("." + (extension or kind)) for name in names),
                        names)
        for name in names:
            player = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-i",
                                                os.path.join(folder, name), "-f", "null", "-"])
            code, _ = await player.ended
            self.assertEqual((code, player.output.decode()), (0, ""), name)  # decodes, without one error
            probe = spawn_tool(self, reactor, ["ffprobe", "-v", "error", "-show_entries", "format_tags=title,album",
                                               "-of", "json", os.path.join(folder, name)])
            code, _ = await probe.ended
            tags = {k.lower(): v for k, v in json.loads(probe.output)["format"].get("tags", {}).items()}
            if (extension or kind) == "mp3":  # (ffprobe shows an Ogg stream's comments per stream, not here)
                self.assertEqual(tags.get("album"), "/live", probe.output)
                self.assertTrue(tags.get("title", "").startswith("/live 20"), probe.output)
            elif (extension or kind) != "aac":  # (ADTS has no place for tags)
                self.assertEqual(mutagen.File(os.path.join(folder, name)).tags["album"], ["/live"], name)
        self.assertIn(b"recording.finished", process.output)
        return folder, names

    async def test_mp3_recording_rotates_and_every_file_decodes(self):
        folder, names = await self.record("mp3")
        # Downloaded through the API, whole and by Range.
        with open(os.path.join(folder, names[0]), "rb") as f:
            content = f.read()
        url = "%s/api/v1/recordings/%s" % (self.base, names[0])
        response = await treq.get(url, auth=("admin", "hackme"), reactor=reactor, persistent=False)
        self.assertEqual((response.code, await response.content()), (200, content))
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["audio/mpeg"])
        response = await treq.get(self.base + "/api/v1/openapi.json", reactor=reactor, persistent=False)
        documented = (await response.json())["paths"]["/api/v1/recordings/{id}"]["get"]["responses"]
        self.assertIn("audio/mpeg", documented["200"]["content"])  # as answered: schemathesis checks it
        self.assertIn("audio/mpeg", documented["206"]["content"])
        response = await treq.get(url, auth=("admin", "hackme"), headers={"Range": "bytes=10-19"}, reactor=reactor,
                                  persistent=False)
        self.assertEqual((response.code, await response.content()), (206, content[10:20]))
        self.assertEqual(response.headers.getRawHeaders("content-range"), ["bytes 10-19/%d" % len(content)])

        # The command line, with an API key that may manage recordings.
        code, out = await self.gocast("record", "list", "live", "--json")
        self.assertEqual((code, sorted(e["id"] for e in json.loads(out))), (0, names), out)
        target = os.path.abspath(self.mktemp())
        code, out = await self.gocast("record", "download", names[0], "-o", target)
        self.assertEqual(code, 0, out)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), content)
        code, out = await self.gocast("record", "delete", names[0])
        self.assertEqual(code, 0, out)
        self.assertNotIn(names[0], os.listdir(folder))
        code, out = await self.gocast("record", "download", "../../etc/passwd")
        self.assertEqual(code, 1, out)
        self.assertIn("no recording", out)

    async def gocast(self, *argv):
        env = dict(os.environ, GOCAST_URL=self.base, GOCAST_API_KEY=KEY, GOCAST_CLIENT_CONFIG="/nonexistent")
        where = os.path.abspath(self.mktemp())
        os.makedirs(where)
        process = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast.cli"] + list(argv), env=env, cwd=where)
        self.addCleanup(process.stop)
        code, _ = await process.ended
        return code, process.output.decode("utf-8")

    async def test_an_aac_source_recorded_as_it_came(self):
        folder, names = await self.record("aac")  # every file decodes; ADTS carries no tags, the track list does
        self.assertTrue(all(os.path.exists(os.path.join(folder, n + ".tracks.json")) for n in names))

    async def test_an_mp3_source_recorded_as_opus(self):
        folder, names = await self.record("mp3", recording="format opus bitrate 64k rotation size:12KB",
                                          extension="opus")
        for name in names:
            probe = spawn_tool(self, reactor, ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                                               "-of", "csv=p=0", os.path.join(folder, name)])
            code, _ = await probe.ended
            self.assertEqual((code, probe.output.decode().strip()), (0, "opus"), name)

    async def test_ogg_opus_files_each_start_with_the_headers(self):
        folder, names = await self.record("ogg")
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                start = f.read(64)
            self.assertTrue(start.startswith(b"OggS") and b"OpusHead" in start, name)


class UploadTests(TestCase):
    """Recordings reach a real S3-compatible server (moto), checked; credentials never in the log."""

    timeout = 120

    async def s3_with(self, bucket):
        """moto's server, with ``bucket``: (the server, a boto3 client of it)."""
        moto = MotoServer(self, reactor)
        await moto.start()
        s3 = moto.client()
        await deferToThread(s3.create_bucket, Bucket=bucket)
        return moto, s3

    async def uploaded(self, s3, bucket, process, timeout=30):
        """The keys in ``bucket``, once there is one (the server's log in the failure)."""
        deadline = reactor.seconds() + timeout
        while True:
            listing = await deferToThread(s3.list_objects_v2, Bucket=bucket)
            keys = [item["Key"] for item in listing.get("Contents", [])]
            if keys:
                return keys
            self.assertLess(reactor.seconds(), deadline, process.output.decode()[-2000:])
            await task.deferLater(reactor, 0.5, lambda: None)

    async def test_recordings_uploaded_and_checked(self):
        moto, s3 = await self.s3_with("archive")
        folder = os.path.abspath(self.mktemp())
        config = ('mounts { live { recording { enabled true path "%s" rotation size:24KB upload { endpoint "%s" '
                  'bucket archive region us-east-1 prefix shows access_key "%s" secret_key "%s" } } } }'
                  % (folder, moto.url, ACCESS_KEY, SECRET_KEY))
        process, base = await start_server(self, reactor, config)
        await stream(self, base, "mp3", 6)

        def uploaded():
            names = os.listdir(folder) if os.path.isdir(folder) else []
            return names and not any(name.endswith((".part", ".upload")) for name in names)

        await eventually(reactor, uploaded, timeout=30, what="every recording closed and uploaded")
        listing = await deferToThread(s3.list_objects_v2, Bucket="archive")
        keys = sorted(item["Key"] for item in listing.get("Contents", []))
        names = sorted(n for n in os.listdir(folder) if n.endswith(".mp3"))
        self.assertEqual(keys, ["shows/live/" + name for name in names])
        for name in names:
            body = await deferToThread(lambda: s3.get_object(Bucket="archive", Key="shows/live/" + name)["Body"].read())
            with open(os.path.join(folder, name), "rb") as f:
                self.assertEqual(body, f.read(), name)
        self.assertIn(b"recording.uploaded", process.output)
        self.assertNotIn(SECRET_KEY.encode(), process.output)
        self.assertNotIn(ACCESS_KEY.encode(), process.output)

    async def test_an_upload_server_down_twice_then_up(self):
        """The S3 server is not there for the first tries: the recording waits, then goes up whole."""
        moto = MotoServer(self, reactor)  # its port chosen, its server not started yet
        folder = os.path.abspath(self.mktemp())
        config = ('mounts { live { recording { enabled true path "%s" upload { endpoint "%s" bucket late '
                  'region us-east-1 access_key "%s" secret_key "%s" } } } }'
                  % (folder, moto.url, ACCESS_KEY, SECRET_KEY))
        process, base = await start_server(self, reactor, config)
        await stream(self, base, "mp3", 3)
        await eventually(reactor, lambda: process.output.count(b"recording.upload_failed") >= 2, timeout=30,
                         what="two failed uploads")
        await moto.start()
        s3 = moto.client()
        await deferToThread(s3.create_bucket, Bucket="late")

        [key] = await self.uploaded(s3, "late", process, timeout=60)
        [name] = [n for n in os.listdir(folder) if n.endswith(".mp3")]
        self.assertEqual(key, "live/" + name)
        body = await deferToThread(lambda: s3.get_object(Bucket="late", Key=key)["Body"].read())
        with open(os.path.join(folder, name), "rb") as f:
            self.assertEqual(body, f.read())
        await eventually(reactor, lambda: not os.path.exists(os.path.join(folder, name + ".upload")),
                         what="the upload marker gone")

    async def test_the_roadmap_snippet_as_written(self):
        """tests/roadmap/13-mounts-recording.vibe, with a local path and the test S3 endpoint (and its keys)."""
        moto, s3 = await self.s3_with("my-radio-archive")
        folder = os.path.abspath(self.mktemp())
        snippet = (Path(__file__).resolve().parent.parent / "roadmap" / "13-mounts-recording.vibe").read_text()
        config = snippet.replace("/var/gocast/recordings", '"%s"' % folder).replace(
            "region us-east-1", 'region us-east-1 endpoint "%s" access_key "%s" secret_key "%s"'
            % (moto.url, ACCESS_KEY, SECRET_KEY))
        self.assertNotEqual(config, snippet)
        process, base = await start_server(self, reactor, config)
        await stream(self, base, "ogg", 4)

        [key] = await self.uploaded(s3, "my-radio-archive", process)
        self.assertTrue(key.startswith("live/live-") and key.endswith(".mp3"), key)  # format mp3: transcoded
        [name] = [n for n in os.listdir(folder) if n.endswith(".mp3")]
        player = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-i",
                                            os.path.join(folder, name), "-f", "null", "-"])
        code, _ = await player.ended
        self.assertEqual((code, player.output.decode()), (0, ""))

    async def test_a_large_file_goes_up_in_parts_and_is_checked(self):
        moto, s3 = await self.s3_with("archive")
        upload = parse_config('mounts { live { recording { upload { endpoint "%s" bucket archive region us-east-1 '
                              'access_key "%s" secret_key "%s" } } } }' % (moto.url, ACCESS_KEY, SECRET_KEY)
                              ).config.mounts["/live"].recording.upload
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(os.urandom(PART_SIZE + 1234))
        etag, size = await deferToThread(upload_file, upload, path, "big.mp3")
        self.assertEqual((size, etag.endswith("-2")), (PART_SIZE + 1234, True))  # two parts, ETag as computed
