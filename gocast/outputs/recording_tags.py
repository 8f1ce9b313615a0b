# -*- test-case-name: tests.test_recorder -*-
"""
What a recording gets when it closes, off the reactor thread (tagging an
MP3 rewrites the file): tags written with mutagen (title: the mount and
the time range; artist: the station; album: the mount; date; and for a
recording in the source's format, the last stream title as a comment),
a track list beside it (``NAME.tracks.json``: each stream title with its
offset in the file), and then its final name, so a listed recording is
always a finished one. An ADTS AAC stream has no place for tags: it gets
the track list only.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import List, Tuple
from zoneinfo import ZoneInfo

import attr
from twisted.logger import Logger

_log = Logger()

#: What a recording's track list is named after: NAME.tracks.json.
SIDECAR = ".tracks.json"


@attr.s(auto_attribs=True, frozen=True)
class FileInfo:
    mount: str
    station: str
    started: float
    ended: float
    timezone: str
    #: (seconds from the file's start, stream title)
    tracks: List[Tuple[float, str]]
    #: The bytes are the source's: its last title goes in the comment.
    source_format: bool


def title_of(info: FileInfo) -> str:
    zone = ZoneInfo(info.timezone)
    start, end = datetime.fromtimestamp(info.started, zone), datetime.fromtimestamp(info.ended, zone)
    same_day = start.date() == end.date()
    return "%s %s-%s" % (info.mount, start.strftime("%Y-%m-%d %H:%M:%S"),
                         end.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S"))


def finish_file(part: str, final: str, info: FileInfo) -> None:
    """Tag ``part``, write its track list, and give it its ``final`` name (a failed tag is only logged)."""
    try:
        tag(part, final.rpartition(".")[2].lower(), info)
    except Exception as e:  # a file mutagen cannot read is still a recording
        _log.warn("{mount}: {file} recorded without tags: {why}", mount=info.mount, file=os.path.basename(final),
                  why=str(e))
    with open(final + SIDECAR + ".part", "w", encoding="utf-8") as f:
        json.dump({"mount": info.mount, "station": info.station, "started": info.started, "ended": info.ended,
                   "tracks": [{"offset": offset, "title": title} for offset, title in info.tracks]}, f, indent=1)
    os.replace(final + SIDECAR + ".part", final + SIDECAR)
    os.replace(part, final)


def tag(path: str, extension: str, info: FileInfo) -> None:
    zone = ZoneInfo(info.timezone)
    date = datetime.fromtimestamp(info.started, zone).strftime("%Y-%m-%d")
    last = info.tracks[-1][1] if info.tracks and info.source_format else ""
    if extension == "mp3":
        from mutagen.id3 import COMM, ID3, TALB, TDRC, TIT2, TPE1

        tags = ID3()
        tags.add(TIT2(encoding=3, text=title_of(info)))
        tags.add(TPE1(encoding=3, text=info.station))
        tags.add(TALB(encoding=3, text=info.mount))
        tags.add(TDRC(encoding=3, text=date))
        if last:
            tags.add(COMM(encoding=3, lang="eng", desc="", text="last title: " + last))
        tags.save(path)
    elif extension in ("ogg", "opus", "flac"):
        import mutagen

        found = mutagen.File(path)
        if found is None:
            raise ValueError("not a stream mutagen knows")
        if found.tags is None:
            found.add_tags()
        found.tags["title"] = [title_of(info)]
        found.tags["artist"] = [info.station]
        found.tags["album"] = [info.mount]
        found.tags["date"] = [date]
        if last:
            found.tags["comment"] = ["last title: " + last]
        found.save()
