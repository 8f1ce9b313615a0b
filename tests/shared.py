"""
The team's shared folder (``../shared`` beside the checkout): the roadmap
and the VIBE conformance fixtures some tests read.

``GOCAST_SHARED`` names another folder; a test whose file is missing skips
with the path it looked at, so a clone without the folder still runs green.
"""

import os
from pathlib import Path

from twisted.trial.unittest import SkipTest

SHARED = Path(os.environ.get("GOCAST_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def shared_path(override: str, *parts: str) -> Path:
    """``$override`` when set, else ``parts`` under the shared folder."""
    return Path(os.environ.get(override) or SHARED.joinpath(*parts))


def require(path: Path) -> Path:
    """``path``, or skip the calling test with where it was looked for."""
    if not path.exists():
        raise SkipTest("%s is not there (set GOCAST_SHARED to the team's shared folder)" % path)
    return path
