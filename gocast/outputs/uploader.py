# -*- test-case-name: tests.test_uploader -*-
"""
Closed recordings copied to S3-compatible object storage (``recording {
upload { type s3 bucket .. } }``; GCS and B2 through their S3-compatible
endpoints), with boto3 in a thread so the reactor never waits.

A file waiting for its upload has a marker beside it (``NAME.upload``),
so retention never deletes it and a restart uploads it still. Each upload
is retried with backoff (2, 4, 8... up to 5 minutes) until it succeeds;
large files go up in parts; the object's size and ETag (the MD5 of the
file, or of its parts for a multipart upload) are checked against the file
before the upload counts. Credentials are never logged.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.logger import Logger

#: What a recording waiting for its upload has beside it.
PENDING = ".upload"
#: Multipart uploads above this size, in parts of this size.
PART_SIZE = 8 * 1024 * 1024
#: The longest wait between two tries of an upload.
MAX_BACKOFF = 300.0


def object_key(prefix: str, mount: str, name: str) -> str:
    """``PREFIX/MOUNT/NAME`` (the mount without its slashes' leading one)."""
    parts = [part for part in (prefix.strip("/"), mount.strip("/"), name) if part]
    return "/".join(parts)


def expected_etag(path: str, part_size: int = PART_SIZE) -> str:
    """The ETag S3 gives the file: its MD5, or for a multipart upload the MD5 of its parts' MD5s and ``-N``."""
    size = os.path.getsize(path)
    digests = []
    with open(path, "rb") as f:
        while True:
            block = f.read(part_size)
            if not block and digests:
                break
            digests.append(hashlib.md5(block).digest())
            if not block:
                break
    if size < part_size:
        return digests[0].hex()
    return "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests))


def client_for(config: Any) -> Any:
    """A boto3 S3 client for an ``upload { }`` block."""
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=config.endpoint or None, region_name=config.region or None,
                        aws_access_key_id=config.access_key or None, aws_secret_access_key=config.secret_key or None,
                        config=BotoConfig(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=60))


def upload_file(config: Any, path: str, key: str) -> Tuple[str, int]:
    """Upload ``path`` as ``key`` and check what arrived; (etag, size). Runs in a thread."""
    from boto3.s3.transfer import TransferConfig

    client = client_for(config)
    client.upload_file(path, config.bucket, key,
                       Config=TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE))
    head = client.head_object(Bucket=config.bucket, Key=key)
    etag, size = head["ETag"].strip('"'), int(head["ContentLength"])
    if size != os.path.getsize(path) or etag != expected_etag(path):
        raise ValueError("the object %s differs from the file (%d bytes, ETag %s)" % (key, size, etag))
    return etag, size


class Uploads:
    """Uploads queued files one at a time, retrying each until it is up."""

    _log = Logger()

    def __init__(self, clock: Any, run_in_thread: Callable[..., Any], publish: Callable[..., None],
                 upload: Callable[[Any, str, str], Tuple[str, int]] = upload_file):
        self.clock = clock
        self.run_in_thread = run_in_thread
        self.publish = publish
        self.upload = upload
        #: Path: (mount, upload config, delete after upload, tries so far).
        self.queue: Dict[str, Tuple[str, Any, bool, int]] = {}
        self.busy = False
        self.results: Dict[str, int] = {"success": 0, "failed": 0}
        self._retry: Any = None

    def add(self, mount: str, config: Any, path: str, delete_after: bool) -> None:
        """Upload ``path`` (a closed recording) as soon as may be; its marker keeps it until then."""
        try:
            with open(path + PENDING, "w") as marker:
                marker.write(mount)
        except OSError as e:
            self._log.error("{mount}: {file} will not be uploaded: {why}", mount=mount, file=os.path.basename(path),
                            why=str(e))
            return
        self.queue[path] = (mount, config, delete_after, 0)
        self.next()

    def next(self) -> None:
        if self.busy or not self.queue or self._retry is not None:
            return
        path, (mount, config, delete_after, tries) = next(iter(self.queue.items()))
        self.busy = True
        key = object_key(config.prefix, mount, os.path.basename(path))
        d = self.run_in_thread(self.upload, config, path, key)
        d.addCallbacks(lambda done: self.done(path, key, done), lambda failure: self.failed(path, failure))

    def done(self, path: str, key: str, uploaded: Tuple[str, int]) -> None:
        self.busy = False
        mount, config, delete_after, _ = self.queue.pop(path)
        self.results["success"] += 1
        for leftover in (path + PENDING,) + ((path,) if delete_after else ()):
            try:
                os.remove(leftover)
            except OSError:
                pass
        self._log.info("{mount}: {file} uploaded to {bucket} as {key}", mount=mount, file=os.path.basename(path),
                       bucket=config.bucket, key=key)
        self.publish("recording.uploaded", mount, file=os.path.basename(path), key=key, size=uploaded[1],
                     deleted=delete_after)
        self.next()

    def failed(self, path: str, failure: Any) -> None:
        self.busy = False
        mount, config, delete_after, tries = self.queue.pop(path)
        self.results["failed"] += 1
        delay = min(2.0 ** (tries + 1), MAX_BACKOFF)
        why = failure.getErrorMessage()[:300]
        self._log.warn("{mount}: upload of {file} failed ({why}); trying again in {delay} s", mount=mount,
                       file=os.path.basename(path), why=why, delay=int(delay))
        self.publish("recording.upload_failed", mount, file=os.path.basename(path), reason=why, retry_in=delay)
        if os.path.exists(path):
            self.queue[path] = (mount, config, delete_after, tries + 1)  # last in line, after the others
        self._retry = self.clock.callLater(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.next()

    def stop(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None


def pending_uploads(folder: str) -> Dict[str, Optional[str]]:
    """Recordings in ``folder`` still waiting for their upload: {path: mount}."""
    found: Dict[str, Optional[str]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return found
    for name in names:
        if name.endswith(PENDING) and os.path.exists(os.path.join(folder, name[:-len(PENDING)])):
            try:
                with open(os.path.join(folder, name)) as marker:
                    found[os.path.join(folder, name[:-len(PENDING)])] = marker.read(300).strip() or None
            except OSError:
                continue
    return found
