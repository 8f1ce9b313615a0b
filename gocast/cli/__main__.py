"""``python -m gocast.cli`` is the ``gocast`` command (as ``python -m gocast`` is)."""

from gocast.cli import main

main()
