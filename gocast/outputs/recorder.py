# -*- test-case-name: tests.test_recorder -*-
"""
Recordings: a subscriber of the mount's frame stream (so it never touches
listeners) that writes what the source sends to files.

``recording { enabled true }`` records continuously while the mount has a
source. Files rotate ``hourly`` or ``daily`` at the wall-clock boundary in
the recording's ``timezone``, or at a size (``size:100MB``), always between
two chunks of whole frames; an Ogg file starts with the stream's header
pages, so every file plays on its own. A file is written under a ``.part``
name and renamed when closed. When the source leaves, the file is closed
(with ``record_fallback true`` the recorder follows listeners to the
fallback and keeps recording it). A file that cannot be written (disk full,
a read-only folder) stops the recording with a ``recording.failed`` event;
streaming goes on, and the next chunk after :data:`RETRY_AFTER` tries a new
file.

Besides ``enabled``, a recording starts by hand (:meth:`Recorders.start`)
or on a schedule (cron, :meth:`Recorders.schedule`). Other formats than the
source's go through one ffmpeg a file (:mod:`.recording_encoder`); closed
files get tags and a track list (:mod:`.recording_tags`) and, with
``upload``, go to object storage (:mod:`.uploader`). :class:`Recorders`
also applies retention and lists, serves and deletes recordings for the
API.
"""

from __future__ import annotations

import os
import re
import string
from datetime import datetime, time as dt_time, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..config._kinds import parse_size
from ..core.mount import Chunk, Mount
from .recording_encoder import FORMATS, Encoder
from .recording_tags import SIDECAR, FileInfo, finish_file
from .uploader import PENDING, Uploads, pending_uploads

#: After a failed write, how long before the recorder tries a new file.
RETRY_AFTER = 30.0
#: After an ffmpeg died mid-file, how long before the recorder starts a new file (and a new ffmpeg).
ENCODER_RETRY = 2.0
#: How often retention looks for recordings to delete.
RETENTION_EVERY = 3600.0
#: Content types of downloads, by extension.
CONTENT_TYPES = {"mp3": "audio/mpeg", "aac": "audio/aac", "ogg": "audio/ogg", "opus": "audio/ogg",
                 "flac": "audio/flac", "webm": "audio/webm"}
def content_type_of(name: str) -> str:
    """What a recording file is served as, by its extension."""
    return CONTENT_TYPES.get(name.rpartition(".")[2].lower(), "application/octet-stream")


#: File extensions by the source's content type.
EXTENSIONS = {"audio/mpeg": "mp3", "audio/aac": "aac", "audio/aacp": "aac", "audio/ogg": "ogg",
              "application/ogg": "ogg", "audio/opus": "opus", "audio/flac": "flac", "audio/webm": "webm"}
#: What a template's {mount} may contain: the mount path with anything but letters, digits, - and _ replaced.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def file_name(template: str, mount: str, start: datetime, extension: str) -> str:
    """``{mount}-{start:%Y%m%d-%H%M%S}.{ext}`` filled in; never a path (separators become ``_``)."""
    name = template.format(mount=_UNSAFE.sub("_", mount).strip("_") or "root", start=start, ext=extension)
    return name.replace(os.sep, "_").replace("/", "_").lstrip(".") or "recording." + extension


def next_boundary(rotation: str, start: datetime) -> Optional[datetime]:
    """
    When a file started at ``start`` (aware, in the recording's time zone)
    ends by the clock: the next top of the hour, or the next midnight
    there (across a DST change too); ``None`` when files rotate by size.
    """
    if rotation == "hourly":
        top = start.replace(minute=0, second=0, microsecond=0)
        return (top.astimezone(timezone.utc) + timedelta(hours=1)).astimezone(start.tzinfo)
    if rotation == "daily":
        midnight = datetime.combine(start.date() + timedelta(days=1), dt_time(0), tzinfo=start.tzinfo)
        return midnight.astimezone(timezone.utc).astimezone(start.tzinfo)
    return None


def next_start(cron: str, now: float, timezone_name: str) -> float:
    """When ``cron`` next fires after ``now``, read in ``timezone_name`` (DST-correct), as Unix time."""
    from croniter import croniter

    return croniter(cron, datetime.fromtimestamp(now, ZoneInfo(timezone_name))).get_next(datetime).timestamp()


def template_pattern(template: str, mount: str) -> "re.Pattern[str]":
    """What the names of ``mount``'s recordings look like (retention touches nothing else in a shared folder)."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field == "mount":
            parts.append(re.escape(_UNSAFE.sub("_", mount).strip("_") or "root"))
        elif field == "start":
            parts.append(".+?")
        elif field == "ext":
            parts.append("[A-Za-z0-9]+")
    return re.compile("".join(parts))


def recordings_of(folder: str, template: str, mount: str) -> List[Tuple[str, float, int]]:
    """``mount``'s closed recordings in ``folder``: (name, modified, size), oldest first."""
    pattern = template_pattern(template, mount)
    found = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if name.endswith((".part", SIDECAR, PENDING)) or not pattern.fullmatch(_COUNTER.sub("", name)):
            continue
        try:
            info = os.stat(os.path.join(folder, name))
        except OSError:
            continue
        found.append((name, info.st_mtime, info.st_size))
    return sorted(found, key=lambda item: (item[1], item[0]))


def expired(recordings: List[Tuple[str, float, int]], max_age: float, max_size: int, now: float) -> List[str]:
    """The recordings (oldest first) that ``max_age`` and ``max_size`` say to delete; 0 is no limit."""
    doomed = [name for name, modified, _ in recordings if max_age and modified < now - max_age]
    if max_size:
        total = sum(size for name, _, size in recordings if name not in doomed)
        for name, _, size in recordings:
            if total <= max_size:
                break
            if name not in doomed:
                doomed.append(name)
                total -= size
    return doomed


#: The "-2" a name already taken is given, before its extension.
_COUNTER = re.compile(r"-\d+(?=\.[^.]+$)")


def remove_recording(path: str) -> None:
    """Delete a recording, its track list and its upload marker (an upload waiting for it gives up)."""
    os.remove(path)
    for beside in (path + SIDECAR, path + PENDING):
        try:
            os.remove(beside)
        except FileNotFoundError:
            pass


class RecordingFile:
    """
    One file being written under its ``.part`` name. The final name is
    chosen when it opens (a name already taken, or about to be, gets a
    counter), so files closing one after the other never collide.
    """

    def __init__(self, folder: str, name: str, started: float, ends: Optional[float]):
        final, counter = os.path.join(folder, name), 1
        while os.path.exists(final) or os.path.exists(final + ".part"):
            base, dot, ext = os.path.join(folder, name).rpartition(".")
            final = "%s-%d.%s" % (base, counter, ext) if dot else "%s-%d" % (os.path.join(folder, name), counter)
            counter += 1
        self.final = final
        self.part = final + ".part"
        self.started = started
        self.ends = ends
        self.size = 0
        #: The stream titles heard in the file: (seconds from its start, title).
        self.tracks: List[Tuple[float, str]] = []
        self.handle = open(self.part, "xb")

    def write(self, data: bytes) -> None:
        """Write and flush: a chunk is a quarter second, and a crash should lose no more."""
        self.handle.write(data)
        self.handle.flush()
        self.size += len(data)

    def title(self, at: float, title: str) -> None:
        if title and (not self.tracks or self.tracks[-1][1] != title):
            self.tracks.append((round(max(0.0, at - self.started), 3), title))


class Recorder:
    """Records one mount (its ``home``): a subscriber of the stream that feeds it, not a listener."""

    is_listener = False
    _log = Logger()

    def __init__(self, home: Mount, folder: str, now: Callable[[], float], manual: bool = False,
                 run_in_thread: Callable[..., Deferred] = maybeDeferred,
                 spawn: Optional[Callable[[Encoder, str, int], None]] = None):
        """
        :param manual: started through the API (until stopped), not by ``recording.enabled``.
        :param run_in_thread: runs the closing of a file (tags, rename) off the reactor thread.
        """
        self._home = home
        self.run_in_thread = run_in_thread
        self.manual = manual
        #: The ``recording.schedule`` entry that started it, if one did (it stops itself after its duration).
        self.schedule_name = ""
        #: Starts the ffmpeg of a transcoded file (``recording.format`` other than source); None: no transcoding.
        self.spawn = spawn
        self.encoder: Optional[Encoder] = None
        #: Where closed files go when ``recording.upload`` names a bucket (:class:`Uploads`).
        self.uploads: Any = None
        #: Transcoded files whose ffmpeg is flushing: their file, and when they ended.
        self._finishing: Dict[Encoder, Tuple[RecordingFile, float]] = {}
        #: The mount whose stream is being recorded: home, or a fallback with ``record_fallback``.
        self.mount = home
        self.folder = folder
        self.now = now
        self.file: Optional[RecordingFile] = None
        self.failed_until = 0.0
        #: For the metrics: bytes written, and files given up.
        self.bytes_written = 0
        self.failures = 0

    @property
    def home(self) -> str:
        return self._home.path

    @property
    def config(self) -> Any:
        return self._home.config.recording

    @property
    def follows_fallback(self) -> bool:
        return bool(self.config.record_fallback)

    def reconfigured(self, home: Mount, folder: str) -> None:
        self._home = home
        self.folder = folder

    # ISubscriber

    def chunk(self, chunk: Chunk) -> None:
        if chunk.header:
            self.close()  # new codec headers: a new file that starts with them
            return
        now = self.now()
        if self.file is not None and self.rotate_now(now):
            self.close()
        if self.file is None:
            if now < self.failed_until or not self.open(now):
                return
        self.write(chunk.data)

    def metadata_changed(self) -> None:
        """A new stream title: noted with its time, for the file's track list and tags."""
        if self.file is not None:
            self.file.title(self.now(), self.mount.song)

    def moved(self, mount: Mount) -> None:
        """Following a fallback (or home again): what comes next is another stream, in its own file."""
        self.close()
        self.mount = mount

    def detach(self, reason: str) -> None:
        self.close()

    def source_stopped(self) -> None:
        if not self.follows_fallback:
            self.close()

    # Files

    def rotate_now(self, now: float) -> bool:
        assert self.file is not None
        if self.file.ends is not None and now >= self.file.ends:
            return True
        rotation = self.config.rotation
        return rotation.startswith("size:") and self.file.size >= parse_size(rotation[5:])

    def open(self, now: float) -> bool:
        config = self.config
        zone = ZoneInfo(config.timezone)
        start = datetime.fromtimestamp(now, zone)
        source = self.mount.source
        transcoding = config.format != "source" and self.spawn is not None
        if transcoding:
            extension = FORMATS[config.format][2]
        else:
            extension = EXTENSIONS.get(source.content_type if source is not None else "", "bin")
        name = file_name(config.template, self.home, start, extension)
        boundary = next_boundary(config.rotation, start)
        try:
            os.makedirs(self.folder, exist_ok=True)
            self.file = RecordingFile(self.folder, name, now, boundary.timestamp() if boundary else None)
        except OSError as e:
            self.failed(str(e))
            return False
        recording = self.file
        if transcoding:
            self.encoder = Encoder(lambda data: self.encoded(recording, data), self.encoder_ended)
            assert self.spawn is not None
            self.spawn(self.encoder, config.format, config.bitrate)
        if self.mount.header_pages:
            self.write(self.mount.header_pages)  # an Ogg stream's headers start every file (or ffmpeg's input)
        recording.title(now, self.mount.song)
        self.mount.bus.publish("recording.started", self.home, file=os.path.basename(recording.final))
        return True

    def write(self, data: bytes) -> None:
        if self.encoder is not None:
            self.encoder.feed(data)
            return
        assert self.file is not None
        self.encoded(self.file, data)

    def encoded(self, recording: RecordingFile, data: bytes) -> None:
        """Bytes for ``recording``: the source's, or what its ffmpeg made of them."""
        if recording.handle.closed:
            return  # given up after a failure
        try:
            recording.write(data)
        except OSError as e:
            if recording is self.file:
                self.failed(str(e))
            return
        self.bytes_written += len(data)

    def close(self) -> Optional[str]:
        """
        Close the file being written, if any, and return its final name: its
        tags and track list are written, and the ``.part`` name dropped, by
        :func:`finish_file` in a thread (tagging an MP3 rewrites the file);
        a transcoded file first waits for its ffmpeg to flush and exit.
        """
        recording, self.file = self.file, None
        encoder, self.encoder = self.encoder, None
        if recording is None:
            return None
        ended = self.now()
        if encoder is not None:
            self._finishing[encoder] = (recording, ended)
            encoder.finish()
        else:
            self._finish(recording, ended)
        return os.path.basename(recording.final)

    def encoder_ended(self, encoder: Encoder, failure: Any, errors: str) -> None:
        finishing = self._finishing.pop(encoder, None)
        if finishing is None and encoder is self.encoder:
            # ffmpeg died with its file current: keep what it made, and start again soon.
            assert self.file is not None
            finishing, self.file, self.encoder = (self.file, self.now()), None, None
            self.failed_until = self.now() + ENCODER_RETRY
            self.failures += 1
            why = "ffmpeg stopped: %s" % (errors or (failure.getErrorMessage() if failure else "exited"))
            self._log.error("{mount}: recording failed: {why}", mount=self.home, why=why)
            self.mount.bus.publish("recording.failed", self.home, reason=why)
        if finishing is not None:
            self._finish(*finishing)

    def _finish(self, recording: RecordingFile, ended: float) -> None:
        try:
            recording.handle.close()
        except OSError as e:
            self._log.error("{mount}: recording {file} not closed: {why}", mount=self.home,
                            file=os.path.basename(recording.final), why=str(e))
            return
        final = os.path.basename(recording.final)
        info = FileInfo(self.home, self._station(), recording.started, ended, self.config.timezone,
                        list(recording.tracks), self.config.format == "source")
        size, duration = recording.size, round(ended - recording.started, 3)

        def finished(_: Any) -> None:
            upload = self.config.upload
            self.mount.bus.publish("recording.finished", self.home, file=final, size=size, duration=duration,
                                   upload="queued" if upload.bucket and self.uploads is not None else "none")
            if upload.bucket and self.uploads is not None:
                self.uploads.add(self.home, upload, recording.final, upload.delete_after_upload)

        def not_finished(failure: Any) -> None:
            # The file being written now, if any, is not this one: it goes on.
            why = "%s not finished: %s" % (final, failure.getErrorMessage())
            self.failures += 1
            self._log.error("{mount}: recording failed: {why}", mount=self.home, why=why)
            self.mount.bus.publish("recording.failed", self.home, reason=why)

        self.run_in_thread(finish_file, recording.part, recording.final, info).addCallbacks(finished, not_finished)

    def _station(self) -> str:
        source = self.mount.source
        ice = source.ice if source is not None else {}
        return (self._home.config.stream_name or ice.get("ice-name") or ice.get("icy-name") or self.home)[:200]

    def failed(self, why: str) -> None:
        """Writing failed: this file is given up; streaming is untouched; a new file is tried later."""
        recording, self.file = self.file, None
        encoder, self.encoder = self.encoder, None
        if encoder is not None:
            encoder.finish()  # its ending finds no file to finish
        if recording is not None:
            try:
                recording.handle.close()
            except OSError:
                pass
        self.failed_until = self.now() + RETRY_AFTER
        self.failures += 1
        self._log.error("{mount}: recording failed: {why}", mount=self.home, why=why)
        self.mount.bus.publish("recording.failed", self.home, reason=why)


class Recorders:
    """
    A :class:`Recorder` on every mount whose config enables recording, and
    retention: each mount's ``max_age`` and ``max_size`` applied to its own
    closed files when it starts recording and, recording or not, every
    :data:`RETENTION_EVERY`.
    """

    _log = Logger()

    def __init__(self, now: Callable[[], float], folder_for: Callable[[str], str], clock: Any = None,
                 run_in_thread: Callable[..., Deferred] = maybeDeferred,
                 spawn: Optional[Callable[[Encoder, str, int], None]] = None):
        """
        :param folder_for: a configured ``recording.path`` as a folder (relative ones under the data dir).
        :param clock: runs retention every hour (without one, only when a recorder starts).
        :param run_in_thread: where closed files get their tags (in place, without one: tests).
        :param spawn: starts an ffmpeg for a transcoded recording (:func:`spawn_encoder`).
        """
        self.now = now
        self.run_in_thread = run_in_thread
        self.spawn = spawn
        #: Uploads of closed recordings (set by the service, with its clock and bus).
        self.uploads: Optional[Uploads] = None
        #: Folders whose waiting uploads were queued again after a start.
        self._resumed: set = set()
        self.folder_for = folder_for
        self.recorders: Dict[str, Recorder] = {}
        #: Every mount (the registry's), so recordings of mounts that record no more are listed too.
        self.mounts: Callable[[], Iterable[Mount]] = lambda: ()
        #: Whether this node runs scheduled recordings (in a cluster, the leader only).
        self.leads: Callable[[], bool] = lambda: True
        self.clock = clock
        #: The next start of each scheduled recording, by (mount, name); and when each one running ends.
        self._starts: Dict[Tuple[str, str], Any] = {}
        self._ends: Dict[str, Any] = {}
        self._retention: Any = None
        if clock is not None:
            self._retention = LoopingCall(self.apply_retention)
            self._retention.clock = clock
            self._retention.start(RETENTION_EVERY, now=False)

    def apply_retention(self) -> None:
        """Every mount's retention, whether it records now or not (its files stay where its config says)."""
        for mount in list(self.mounts()):
            self.retain(mount.path, self.folder_for(mount.config.recording.path), mount.config.recording)
        for recorder in list(self.recorders.values()):
            self.retain(recorder.home, recorder.folder, recorder.config)

    def retain(self, path: str, folder: str, config: Any) -> None:
        """Delete what mount ``path`` keeps no longer: too old, or past its size, oldest first."""
        if not (config.max_age or config.max_size):
            return
        recordings = [r for r in recordings_of(folder, config.template, path)
                      if not os.path.exists(os.path.join(folder, r[0] + PENDING))]  # not uploaded yet
        for name in expired(recordings, config.max_age, config.max_size, self.now()):
            try:
                remove_recording(os.path.join(folder, name))
            except OSError as e:
                self._log.warn("{mount}: recording {name} not deleted: {why}", mount=path, name=name, why=str(e))
                continue
            self._log.info("{mount}: recording {name} deleted (retention)", mount=path, name=name)

    def attach(self, mount: Mount) -> None:
        self.schedule(mount)
        recorder = self.recorders.get(mount.path)
        config = mount.config.recording
        if config.enabled and recorder is None:
            self._add(mount, manual=False)
        elif recorder is not None and not config.enabled and not recorder.manual:
            self._remove(recorder)
        elif recorder is not None:
            recorder.manual = recorder.manual and not config.enabled  # now the config's to keep
            recorder.reconfigured(mount, self.folder_for(config.path))

    def _add(self, mount: Mount, manual: bool) -> Recorder:
        recorder = Recorder(mount, self.folder_for(mount.config.recording.path), self.now, manual, self.run_in_thread,
                            self.spawn)
        recorder.uploads = self.uploads
        self.resume_uploads(mount)
        self.recorders[mount.path] = recorder
        mount.add_subscriber(recorder)
        self.retain(recorder.home, recorder.folder, recorder.config)
        return recorder

    def _remove(self, recorder: Recorder) -> Optional[str]:
        del self.recorders[recorder.home]
        end = self._ends.pop(recorder.home, None)
        if end is not None and end.active():
            end.cancel()
        closed = recorder.close()
        recorder.mount.remove_subscriber(recorder)
        return closed

    def start(self, mount: Mount) -> Recorder:
        """
        Record ``mount`` until :meth:`stop` (its ``recording`` settings, enabled or not).

        :raises ValueError: it is being recorded already.
        """
        if mount.path in self.recorders:
            raise ValueError("%s is being recorded already" % mount.path)
        return self._add(mount, manual=True)

    def stop(self, path: str) -> Optional[str]:
        """
        Stop a recording started with :meth:`start` or by a schedule; the file it closed, if any.

        :raises KeyError: nothing records ``path``. :raises ValueError: the config records it.
        """
        recorder = self.recorders[path]
        if not recorder.manual:
            raise ValueError("%s is recorded continuously (recording { enabled true }): change the config to stop"
                             % path)
        return self._remove(recorder)

    def catalog(self) -> List[Dict[str, Any]]:
        """
        Every recording of every mount, newest first: closed files (``id``
        is the file name), whether or not the mount records now, and the
        files being written (``recording``).
        """
        places = {mount.path: (self.folder_for(mount.config.recording.path), mount.config.recording.template)
                  for mount in self.mounts()}
        places.update({path: (r.folder, r.config.template) for path, r in self.recorders.items()})
        entries: List[Dict[str, Any]] = []
        seen = set()
        for path, (folder, template) in sorted(places.items()):
            for name, modified, size in recordings_of(folder, template, path):
                if (folder, name) not in seen:
                    seen.add((folder, name))
                    entries.append({"id": name, "mount": path, "size": size, "started": None,
                                    "modified": modified, "recording": False, "folder": folder})
        for recorder in self.recorders.values():
            current = recorder.file
            if current is not None:
                entries.append({"id": os.path.basename(current.final), "mount": recorder.home, "size": current.size,
                                "started": current.started, "modified": self.now(), "recording": True,
                                "folder": recorder.folder})
        return sorted(entries, key=lambda e: (e["modified"], e["id"]), reverse=True)

    def closed(self, recording_id: str) -> Dict[str, Any]:
        """
        The closed recording ``recording_id`` names in the catalog, with its
        ``path``: a name is never joined to a folder unless the folder's
        listing has it, so an id cannot name anything else.

        :raises KeyError: no such recording. :raises ValueError: it is being written.
        """
        for entry in self.catalog():
            if entry["id"] == recording_id:
                if entry["recording"]:
                    raise ValueError("%s is being recorded: it is available once closed" % recording_id)
                return dict(entry, path=os.path.join(entry["folder"], entry["id"]))
        raise KeyError(recording_id)

    def delete(self, recording_id: str) -> Dict[str, Any]:
        """Delete a closed recording (see :meth:`closed` for what ``recording_id`` may name)."""
        entry = self.closed(recording_id)
        remove_recording(entry["path"])
        self._log.info("{mount}: recording {name} deleted", mount=entry["mount"], name=entry["id"])
        return entry

    def resume_uploads(self, mount: Mount) -> None:
        """Queue again the uploads a previous run left waiting in ``mount``'s folder (once a folder)."""
        upload = mount.config.recording.upload
        folder = self.folder_for(mount.config.recording.path)
        if self.uploads is None or not upload.bucket or folder in self._resumed:
            return
        self._resumed.add(folder)
        for path, owner in sorted(pending_uploads(folder).items()):
            if owner in (None, mount.path):
                self.uploads.add(mount.path, upload, path, upload.delete_after_upload)

    # Scheduled recordings

    def schedule(self, mount: Mount) -> None:
        """Arm (again) the next start of each of ``mount``'s scheduled recordings, as its config says now."""
        for key in [key for key in self._starts if key[0] == mount.path]:
            timer = self._starts.pop(key)
            if timer.active():
                timer.cancel()
        if self.clock is None:
            return
        for name in sorted(mount.config.recording.schedule):
            self._arm(mount, name)

    def _arm(self, mount: Mount, name: str) -> None:
        config = mount.config.recording
        now = self.now()
        due = next_start(config.schedule[name].cron, now, config.timezone)
        self._starts[(mount.path, name)] = self.clock.callLater(max(0.0, due - now), self._due, mount.path, name)

    def _due(self, path: str, name: str) -> None:
        self._starts.pop((path, name), None)
        mount = next((m for m in self.mounts() if m.path == path), None)
        entry = mount.config.recording.schedule.get(name) if mount is not None else None
        if mount is None or entry is None:
            return
        self._arm(mount, name)
        if not self.leads():
            return  # another node of the cluster records it
        if path in self.recorders:
            self._log.info("{mount}: scheduled recording {name} not started: the mount is recorded already",
                           mount=path, name=name)
            return
        recorder = self._add(mount, manual=True)
        recorder.schedule_name = name
        self._ends[path] = self.clock.callLater(entry.duration, self._scheduled_end, recorder)
        self._log.info("{mount}: scheduled recording {name} for {seconds} s", mount=path, name=name,
                       seconds=int(entry.duration))

    def _scheduled_end(self, recorder: Recorder) -> None:
        self._ends.pop(recorder.home, None)
        if self.recorders.get(recorder.home) is recorder:
            self._remove(recorder)

    def close_all(self) -> None:
        """Shutting down: every open file is closed and renamed."""
        for timer in list(self._starts.values()) + list(self._ends.values()):
            if timer.active():
                timer.cancel()
        self._starts.clear()
        self._ends.clear()
        if self.uploads is not None:
            self.uploads.stop()
        if self._retention is not None and self._retention.running:
            self._retention.stop()
        for recorder in self.recorders.values():
            recorder.close()
