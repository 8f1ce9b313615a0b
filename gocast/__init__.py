"""
GoCast: an Icecast-compatible internet radio server on Twisted, with the
modern parts operators ask for (hot reload, HLS, metrics, real auth, an API).
"""

from ._version import __version__
from .client import GoCastClient

__all__ = ["GoCastClient", "__version__"]
