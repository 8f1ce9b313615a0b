"""Makes ``twistd gocast`` available once GoCast is installed."""

from twisted.application.service import ServiceMaker

gocast = ServiceMaker(
    "GoCast",
    "gocast.tap",
    "Icecast-compatible internet radio server",
    "gocast",
)
