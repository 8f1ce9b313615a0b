# -*- test-case-name: tests.test_config -*-
"""
The per-mount part of the schema: ``mounts { NAME { ... } }``, with the keys
of the old GoCast and every per-mount block of the roadmap.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import attr

from ._kinds import (
    Charset,
    CIDR,
    INVALID,
    URL,
    Bitrate,
    Bool,
    Cron,
    Dimensions,
    Duration,
    Int,
    Kind,
    ListOf,
    MapOf,
    MountPath,
    Size,
    Str,
)
from ..media import STREAMABLE
from ._report import Path, Reporter
from ._section import Section, setting

AUDIO_FORMATS = ("mp3", "aac", "opus", "vorbis", "ogg", "flac")


@attr.frozen
class HlsConfig:
    enabled: bool = setting(False, "Serve this mount as HLS too.")
    segment_duration: float = setting(6.0, "Target length of one media segment (1s to 60s).",
                                      Duration(minimum=1.0, maximum=60.0))
    playlist_length: int = setting(3, "Segments listed in the live playlist.", Int(1, 100))
    low_latency: bool = setting(False, "Low-Latency HLS: CMAF partial segments, blocking playlist reload.")
    part_duration: float = setting(0.5, "Target length of an LL-HLS partial segment (0.1s to 2s).",
                                   Duration(minimum=0.1))
    path: str = setting("", "Another URL prefix for the playlist and segments (outside /hls/); "
                        "/hls/<mount> always works.")
    variants: Tuple[str, ...] = setting((), "Mounts listed in this mount's master playlist (master.m3u8) for "
                                        "adaptive bitrate; empty: its transcoding outputs, if any.",
                                        ListOf(MountPath()))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.variants and not self.enabled:
            report.error(path + ("variants",), "variants makes a master playlist: set enabled true too",
                         at="key")
        if self.low_latency and (self.part_duration > 2.0 or self.part_duration * 2 > self.segment_duration):
            where = path + ("part_duration",) if "part_duration" in raw else path
            report.error(where, "part_duration must be at most 2s and at most half of segment_duration (%gs)"
                         % self.segment_duration, at="value" if "part_duration" in raw else "key")


@attr.frozen
class DashConfig:
    enabled: bool = setting(False, "Serve this mount as MPEG-DASH too: /dash/<mount>/manifest.mpd, CMAF "
                            "segments of AAC (other codecs are transcoded with ffmpeg).")
    segment_duration: float = setting(4.0, "Length of one media segment (1s to 60s).",
                                      Duration(minimum=1.0, maximum=60.0))
    window: int = setting(5, "Segments kept in the live MPD window.", Int(1, 100))
    path: str = setting("", "Another URL prefix for the manifest and segments (outside /dash/); "
                        "/dash/<mount> always works.")
    low_latency: bool = setting(False, "Low-latency DASH: the segment being cut is announced and sent as it "
                                "grows (chunked transfer, one CMAF chunk per part_duration).")
    part_duration: float = setting(0.5, "Length of a CMAF chunk in low-latency DASH (0.1s to 2s, at most half "
                                   "of segment_duration).", Duration(minimum=0.1))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.low_latency and (self.part_duration > 2.0 or self.part_duration * 2 > self.segment_duration):
            where = path + ("part_duration",) if "part_duration" in raw else path
            report.error(where, "part_duration must be at most 2s and at most half of segment_duration (%gs)"
                         % self.segment_duration, at="value" if "part_duration" in raw else "key")


def dash_shares_hls(hls: HlsConfig, dash: DashConfig) -> bool:
    """
    Whether DASH serves the CMAF segments low-latency HLS cuts (one
    packaging, two manifests): both on, with the same segment duration.
    """
    return (dash.enabled and hls.enabled and hls.low_latency and hls.segment_duration == dash.segment_duration
            and (not dash.low_latency or dash.part_duration == hls.part_duration))


LISTENER_AUTH_TYPES = ("token", "http", "url", "ip", "basic")

#: The keys that each listener auth type needs (any one of a tuple).
_AUTH_REQUIRED = {
    "token": ("secret", "public_key", "jwks_url"),
    "http": ("url",),
    "url": ("url",),
    "ip": ("allowed", "denied"),
    "basic": ("users", "users_file"),
}


@attr.frozen
class ListenerAuthConfig:
    type: str = setting("", "Backend: token (JWT), http (callback), url (Icecast-compatible), ip or basic; "
                        "empty: none.",
                        Str(("",) + LISTENER_AUTH_TYPES,
                            expected="one of %s (or empty: no auth)" % ", ".join(LISTENER_AUTH_TYPES)))
    secret: str = setting("", "token: HS256 shared secret.", secret=True)
    public_key: str = setting("", "token: file with the RS256/ES256 public key (PEM).", operator=True)
    jwks_url: Optional[str] = setting(None, "token: JWKS URL to fetch signing keys from.", URL(), operator=True)
    leeway: float = setting(30.0, "token: clock skew allowed on exp and nbf.", Duration())
    allow_past_expiry: bool = setting(False, "token: keep a listener connected after its token expires.")
    audience: str = setting("", "token: the aud claim a token must carry (empty: aud is not checked, and a "
                            "token that carries one is still accepted).")
    issuer: str = setting("", "token: the iss claim a token must carry (empty: not checked).")
    max_lifetime: float = setting(0.0, "token: longest a token may be valid (exp - iat, or exp - now without "
                                  "iat); 0 is no limit.", Duration())
    allow_no_exp: bool = setting(False, "token: accept tokens without an exp claim (they never expire).")
    url: Optional[str] = setting(None, "http/url: the URL asked to allow each listener.", URL(), operator=True)
    timeout: float = setting(5.0, "http/url: how long to wait for the callback.", Duration(positive=True))
    cache_ttl: float = setting(0.0, "http/url: how long a decision is reused; 0 asks every time.", Duration())
    on_error: str = setting("deny", "http/url: decision when the callback fails or times out.",
                            Str(("allow", "deny")))
    allowed: Tuple[Any, ...] = setting((), "ip: networks allowed; empty allows all.", ListOf(CIDR()))
    denied: Tuple[Any, ...] = setting((), "ip: networks denied; denied wins.", ListOf(CIDR()))
    users: Dict[str, str] = setting(dict, "basic: user names and passwords (plain or bcrypt $2b$).",
                                    MapOf(Str()), secret=True)
    users_file: str = setting("", "basic: htpasswd file (bcrypt or SHA lines), re-read on reload.", operator=True)
    realm: str = setting("GoCast", "basic: realm shown by the player's password prompt.")

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if not self.type:
            # No auth; a block with nothing set says the same (config show writes one).
            if self != ListenerAuthConfig():
                report.error(path, "type is required: one of %s" % ", ".join(LISTENER_AUTH_TYPES), at="key")
            return
        needed = _AUTH_REQUIRED[self.type]
        if not any(key in raw for key in needed):
            report.error(
                path,
                "auth type %s needs %s" % (self.type, " or ".join(needed)),
                at="key",
            )


@attr.frozen
class UploadConfig:
    type: str = setting("s3", "Object store: s3, or gcs and b2 through their S3-compatible endpoints.",
                        Str(("s3", "gcs", "b2")))
    bucket: str = setting("", "Bucket name; empty: no upload.")
    region: str = setting("", "Bucket region.")
    endpoint: Optional[str] = setting(None, "Endpoint URL of an S3-compatible store (needed for gcs and b2).",
                                      URL(), operator=True)
    prefix: str = setting("", "Key prefix: objects are PREFIX/MOUNT/FILE.")
    access_key: str = setting("", "Access key id (else boto3's usual sources: environment, files, role).",
                              secret=True)
    secret_key: str = setting("", "Secret access key.", secret=True)
    delete_after_upload: bool = setting(False, "Delete the local file once it is uploaded and checked.")

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if not self.bucket and self != UploadConfig():  # (config show writes the empty block: no upload)
            report.error(path, "bucket is required to upload", at="key")
        if self.type != "s3" and not self.endpoint:
            report.error(path + ("type",), "%s is reached through its S3-compatible endpoint: set endpoint "
                         "(GCS: https://storage.googleapis.com; B2: https://s3.<region>.backblazeb2.com)"
                         % self.type, at="value")


class Rotation(Str):
    """``hourly``, ``daily``, or ``size:100MB``."""

    expected = "hourly, daily or size:<size> such as size:100MB"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if raw in ("hourly", "daily"):
            return raw
        if isinstance(raw, str) and raw.startswith("size:"):
            size = Size().parse(raw[5:], path, report)
            return INVALID if size is INVALID else raw
        return self.fail(raw, path, report)

    def schema(self) -> Dict[str, Any]:
        return {"type": "string", "pattern": "^(?:hourly|daily|size:.+)$", "description": self.expected}


class TimeZone(Str):
    """An IANA time zone name such as ``Europe/Paris`` (or ``UTC``)."""

    expected = "an IANA time zone name such as UTC or Europe/Paris"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if isinstance(raw, str) and raw and ".." not in raw and not raw.startswith("/"):
            try:
                ZoneInfo(raw)
                return raw
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self.fail(raw, path, report)


class FileTemplate(Str):
    """A recording's file name: ``{mount}``, ``{start:<strftime>}`` and ``{ext}``; never a path."""

    expected = "a file name with {mount}, {start:%Y%m%d-%H%M%S} and {ext}, without / or .."

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        from datetime import datetime, timezone

        if not isinstance(raw, str) or not raw or "/" in raw or "\\" in raw or raw.startswith("."):
            return self.fail(raw, path, report)
        try:
            raw.format(mount="m", start=datetime.now(timezone.utc), ext="mp3")
        except (KeyError, IndexError, ValueError, AttributeError):
            return self.fail(raw, path, report)
        return raw


@attr.frozen
class RecordingSchedule:
    cron: str = setting("", "When the recording starts: a cron expression, in the recording's timezone.", Cron())
    duration: float = setting(3600.0, "How long it records.", Duration(positive=True))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if "cron" not in raw:
            report.error(path, 'cron is required: when to start, such as "0 18 * * 1-5"', at="key")


@attr.frozen
class RecordingConfig:
    enabled: bool = setting(False, "Record this mount continuously while it has a source.")
    path: str = setting("recordings", "Folder for recordings (relative paths are under server.data_dir).",
                        operator=True)
    format: str = setting("source", "Keep the source's bytes, or transcode with ffmpeg to mp3, aac, opus, "
                          "vorbis or flac.", Str(("source", "mp3", "aac", "opus", "vorbis", "ogg", "flac")))
    bitrate: int = setting(128000, "Bitrate of a transcoded recording.", Bitrate())
    rotation: str = setting("hourly", "Start a new file hourly, daily (at the boundary in timezone), or at "
                            "a size (size:100MB).", Rotation())
    timezone: str = setting("UTC", "Time zone of hourly and daily rotation and of file names.", TimeZone())
    template: str = setting("{mount}-{start:%Y%m%d-%H%M%S}.{ext}", "File name: {mount}, {start:<strftime>} "
                            "and {ext}.", FileTemplate())
    record_fallback: bool = setting(False, "Keep recording what listeners hear from a fallback while the "
                                    "source is away (otherwise the file closes with the source).")
    schedule: Dict[str, RecordingSchedule] = setting(
        dict, "Scheduled recordings: NAME { cron \"0 18 * * 1-5\" duration 2h } (the cluster's leader runs them).",
        MapOf(Section(RecordingSchedule)))
    max_age: float = setting(0.0, "Delete this mount's recordings older than this (at start and hourly); "
                             "0 keeps them.", Duration())
    max_size: int = setting(0, "Delete this mount's oldest recordings past this total; 0 is no limit.", Size())
    upload: UploadConfig = setting(UploadConfig, "Copy finished recordings to object storage (S3, or GCS "
                                   "and B2 through their S3-compatible endpoints).")



#: What a transcoding output may be encoded as.
TRANSCODE_FORMATS = ("mp3", "aac", "opus", "vorbis")


@attr.frozen
class TranscodeOutput:
    path: str = setting("", "Mount the transcoded stream is published on (a mount of its own: listeners, "
                        "HLS, stats; configure it under mounts to set more).", MountPath())
    format: str = setting("mp3", "Output codec: mp3, aac (ADTS), opus or vorbis (both in Ogg).",
                          Str(TRANSCODE_FORMATS))
    bitrate: int = setting(128000, "Output bitrate.", Bitrate())
    sample_rate: int = setting(0, "Output sample rate in Hz; 0 keeps the source's (Opus is always 48000).",
                               Int(0, 192000))
    channels: int = setting(0, "Output channels (1 or 2); 0 keeps the source's.", Int(0, 2))
    quality: Optional[int] = setting(None, "Encoder effort from 0 (fastest) to 10 (best) for mp3 and opus; "
                                     "unset uses the encoder's default.", Int(0, 10))
    on_demand: bool = setting(False, "Encode only while the output has listeners (its own ffmpeg, started "
                              "by the first listener, stopped a while after the last).")

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if "path" not in raw:
            report.error(path, "path is required: the mount this output is published on", at="key")
        if self.quality is not None and self.format not in ("mp3", "opus"):
            report.error(path + ("quality",), "quality is the mp3 and opus encoders' effort; the %s encoder "
                         "has none: remove it and set bitrate" % self.format, at="key")


@attr.frozen
class TranscodingConfig:
    enabled: bool = setting(False, "Transcode this mount into the outputs below (one ffmpeg decodes once and "
                            "encodes them all).")
    outputs: Dict[str, TranscodeOutput] = setting(dict, "Named outputs, each published on its own mount.",
                                                  MapOf(Section(TranscodeOutput)))

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if self.enabled and not self.outputs:
            report.error(path, "transcoding is enabled with no outputs: add outputs { NAME { path /live-64 "
                         "format aac bitrate 64k } }", at="key")
        seen: Dict[str, str] = {}
        for name, output in self.outputs.items():
            if output.path in seen:
                report.error(path + ("outputs", name, "path"), "outputs %s and %s are both published on %s"
                             % (seen[output.path], name, output.path))
            seen[output.path] = name

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.outputs)


@attr.frozen
class FallbackConfig:
    mounts: Tuple[str, ...] = setting((), "Mounts to move listeners to, in order, when the source leaves.",
                                      ListOf(MountPath()))
    file: str = setting("", "Audio file played in a loop when no fallback mount has a source.", operator=True)
    loop: bool = setting(True, "Loop the fallback file.")


class FallbackKind(Kind):
    """``fallback /backup`` (Icecast style) or a ``fallback { ... }`` block."""

    expected = "a mount path or a fallback { ... } block"

    def __init__(self) -> None:
        self.section = Section(FallbackConfig)

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, str):
            mount = MountPath().parse(raw, path, report)
            return INVALID if mount is INVALID else FallbackConfig(mounts=(mount,))
        return self.section.parse(raw, path, report)

    def dump(self, value: Any, reveal: bool = False) -> Any:
        return self.section.dump(value, reveal)

    def schema(self) -> Dict[str, Any]:
        return {"oneOf": [MountPath().schema(), self.section.schema()], "description": self.expected}


@attr.frozen
class ScheduleEntry:
    source: str = setting("", "Mount whose source takes over at this time.", MountPath())
    intro: str = setting("", "Audio file played once when switching.", operator=True)
    outro: str = setting("", "Audio file played once before switching away.", operator=True)

    def check(self, path: Path, report: Reporter, raw: Dict[str, Any]) -> None:
        if "source" not in raw:
            report.error(path, "source is required: the mount to switch to", at="key")


@attr.frozen
class MetadataConfig:
    artwork_enabled: bool = setting(False, "Serve album art at /<mount>/artwork.jpg.")
    artwork_cache: str = setting("", "Folder for cached artwork (relative paths are under server.data_dir).",
                                 operator=True)
    artwork_size: Tuple[int, int] = setting((300, 300), "Artwork is resized to fit this box.", Dimensions())
    artwork_hosts: Tuple[str, ...] = setting(
        (), "Hosts GoCast may fetch a cover URL from (given by a source or the API); *.example.com takes its "
        "subdomains. Other URLs are passed on to players as they are.", ListOf(Str(allow_empty=False)),
        operator=True)


@attr.frozen
class PrerollConfig:
    enabled: bool = setting(False, "Play an ad to each listener on connect.")
    files: Tuple[str, ...] = setting((), "Audio files to choose from.", ListOf(Str(allow_empty=False)),
                                     operator=True)
    rotation: str = setting("random", "How the next file is chosen.", Str(("random", "sequential")))


@attr.frozen
class MidrollConfig:
    enabled: bool = setting(False, "Insert ads at intervals.")
    interval: float = setting(900.0, "Time between ad breaks.", Duration(positive=True))
    max_duration: float = setting(30.0, "Longest ad break.", Duration(positive=True))
    files: Tuple[str, ...] = setting((), "Audio files to choose from.", ListOf(Str(allow_empty=False)),
                                     operator=True)
    vast_url: Optional[str] = setting(None, "VAST ad server asked for each break.", URL(), operator=True)


@attr.frozen
class AdsConfig:
    preroll: PrerollConfig = setting(PrerollConfig, "Ads on connect.")
    midroll: MidrollConfig = setting(MidrollConfig, "Ads during the stream.")


@attr.frozen
class MountConfig:
    password: str = setting("", "Source password for this mount; empty uses auth.source_password.", secret=True)
    username: str = setting("source", "Source user name for this mount.")
    max_listeners: int = setting(0, "Listener limit; 0 uses limits.max_listeners_per_mount.", Int(0))
    fallback: FallbackConfig = setting(FallbackConfig, "Where listeners go when the source leaves.", FallbackKind())
    fallback_override: str = setting("all", "Who comes back when the source returns: all, own (only its own "
                                     "listeners) or none.", Str(("all", "own", "none")))
    fallback_when_full: bool = setting(False, "Send listeners past max_listeners to the fallback.")
    stream_name: str = setting("", "Stream name (icy-name); overrides the source's ice-name.")
    genre: str = setting("", "Genre (icy-genre); overrides the source's.")
    description: str = setting("", "Description (icy-description); overrides the source's.")
    url: str = setting("", "Station web site (icy-url); overrides the source's.")
    bitrate: Optional[int] = setting(None, "Advertised bitrate (icy-br); overrides the source's.", Bitrate())
    type: str = setting("", "Content type to require, e.g. audio/mpeg; empty accepts the source's.",
                        Str(choices=("",) + tuple(sorted(STREAMABLE)),
                            expected="an audio media type such as audio/mpeg, audio/aac or audio/ogg"))
    public: Optional[bool] = setting(None, "List in directories (icy-pub); unset follows the source.", Bool())
    hidden: bool = setting(False, "Hide from status pages and the public mount list.")
    burst_size: Optional[int] = setting(None, "Bytes sent at once to a new listener; unset uses limits.burst_size.",
                                        Size())
    max_listener_duration: float = setting(0.0, "Disconnect listeners after this long; 0 is no limit.", Duration())
    allowed_ips: Tuple[Any, ...] = setting((), "Only these networks may listen; empty allows all.", ListOf(CIDR()))
    denied_ips: Tuple[Any, ...] = setting((), "These networks may not listen.", ListOf(CIDR()))
    dump_file: str = setting("", "Append the raw stream to this file.", operator=True)
    charset: str = setting("UTF-8", "Character set of ICY metadata sent to listeners.", Charset())
    metaint: int = setting(16000, "Audio bytes between ICY metadata blocks.", Int(256, 65536))
    hls: HlsConfig = setting(HlsConfig, "HTTP Live Streaming output (Ogg sources are transcoded to AAC "
                             "with ffmpeg).")
    dash: DashConfig = setting(DashConfig, "MPEG-DASH output (docs/dash.md).")
    auth: ListenerAuthConfig = setting(ListenerAuthConfig, "Listener authentication (docs/auth.md).")
    recording: RecordingConfig = setting(RecordingConfig, "Recording and archiving (docs/recording.md).")
    transcoding: TranscodingConfig = setting(TranscodingConfig, "Extra outputs transcoded from this mount "
                                             "(docs/transcoding.md).")
    schedule: Dict[str, ScheduleEntry] = setting(
        dict, "Scheduled switching: a cron expression per entry.",
        MapOf(Section(ScheduleEntry), key=Cron()),
        implemented=False)
    metadata: MetadataConfig = setting(MetadataConfig, "Album art and extended metadata (docs/programming.md).")
    ads: AdsConfig = setting(AdsConfig, "Ad insertion.", implemented=False)

