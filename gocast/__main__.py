"""``python -m gocast`` is the ``gocast`` command."""

from gocast.cli import main

main()
