# -*- test-case-name: tests.test_cli -*-
"""
The ``gocast`` command.

- ``gocast serve [--config FILE]``: run the server in the foreground (the same
  service as ``twistd -n gocast``).
- ``gocast config check FILE...``: validate; print every problem as
  ``file:line:column: key: message``; exit 1 on any error.
- ``gocast config show [FILE] [--format vibe|json] [--reveal-secrets]``: the
  effective configuration, defaults filled in.
- ``gocast config docs``: the configuration reference (docs/configuration.md).
- ``gocast --version``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, TextIO

from ._version import __version__
from .config import (
    ConfigError,
    LoadedConfig,
    default_config,
    dump_config,
    load_config,
    render_issues,
)
from .config import vibe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gocast", description="GoCast streaming server.")
    parser.add_argument("--version", action="version", version="gocast %s" % __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--config", "-c", help="configuration file (VIBE or JSON)")

    config = commands.add_parser("config", help="check and show configuration files")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = config_commands.add_parser("check", help="validate configuration files")
    check.add_argument("files", nargs="+", metavar="FILE")
    show = config_commands.add_parser("show", help="print the effective configuration")
    show.add_argument("file", nargs="?", metavar="FILE", help="omit to show the defaults")
    show.add_argument("--format", choices=("vibe", "json"), default="vibe")
    show.add_argument("--reveal-secrets", action="store_true",
                      help="print passwords and keys instead of <redacted>")
    config_commands.add_parser("docs", help="print the configuration reference (Markdown)")
    return parser


def check_files(files: List[str], out: TextIO, err: TextIO) -> int:
    status = 0
    for path in files:
        try:
            loaded = load_config(path)
        except ConfigError as e:
            errors = len(e.errors)
            err.write(render_issues(e.issues) + "\n")
            err.write("%s: %d error%s\n" % (path, errors, "" if errors == 1 else "s"))
            status = 1
            continue
        if loaded.warnings:
            err.write(render_issues(list(loaded.warnings)) + "\n")
        mounts = len(loaded.config.mounts)
        warnings = len(loaded.warnings)
        out.write("%s: OK (%d mount%s, %d warning%s)\n" % (
            path, mounts, "" if mounts == 1 else "s", warnings, "" if warnings == 1 else "s"))
    return status


def show_config(path: Optional[str], fmt: str, reveal: bool, out: TextIO, err: TextIO) -> int:
    if path is None:
        loaded = LoadedConfig(default_config())
    else:
        try:
            loaded = load_config(path)
        except ConfigError as e:
            err.write(render_issues(e.issues) + "\n")
            return 1
    tree = dump_config(loaded.config, reveal_secrets=reveal)
    if fmt == "json":
        out.write(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(vibe.dumps(tree))
    return 0


def serve(config: Optional[str]) -> int:
    """Run ``twistd --nodaemon gocast`` in this process."""
    from twisted.scripts.twistd import ServerOptions, runApp
    from twisted.python import usage

    argv = ["--nodaemon", "--pidfile=", "gocast"] + (["--config", config] if config else [])
    options = ServerOptions()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        sys.stderr.write("gocast: %s\n" % e)
        return 2
    runApp(options)
    return 0


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        sys.exit(serve(args.config))
    if args.command == "config":
        if args.config_command == "check":
            sys.exit(check_files(args.files, out, err))
        if args.config_command == "show":
            sys.exit(show_config(args.file, args.format, args.reveal_secrets, out, err))
        if args.config_command == "docs":
            from .config._docs import generate

            out.write(generate())
            sys.exit(0)
    parser.print_help(err)
    sys.exit(2)
