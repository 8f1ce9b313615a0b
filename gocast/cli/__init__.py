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
- ``gocast config reload [FILE] [--url URL] [--api-key KEY]``: ask the
  running server to reload: through the REST API when an API key is at hand
  (option, ``GOCAST_API_KEY`` or the client config), else with the admin
  credentials FILE holds (FILE also gives the address when no URL does).
- ``gocast mount|listeners|kick|source|stats|cluster|record ...``: talk to a running
  server through the REST API (see :mod:`gocast._cli_api`).
- ``gocast --version``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, List, Optional, TextIO

from ._api import (COMMANDS, EXIT_USAGE, UsageError, add_client_options, add_commands, client_settings,
                       print_reload, reload_with_key, run)
from .._version import __version__
from ..config.files import unusable_files
from ..outputs.transcode import ffmpeg_missing
from ..config import (
    ConfigError,
    LoadedConfig,
    default_config,
    dump_config,
    load_config,
    render_issues,
)
from ..config import vibe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gocast", description="GoCast streaming server.",
        epilog="gocast --config FILE, with no command, runs the server (as gocast serve --config FILE). "
               "--url, --api-key and --json may come before or after the command.")
    parser.add_argument("--version", action="version", version="gocast %s" % __version__)
    parser.add_argument("--config", "-c", help="with no command: run the server with this config file")
    add_client_options(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--config", "-c", default=argparse.SUPPRESS, help="configuration file (VIBE or JSON)")

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
    reload = config_commands.add_parser(
        "reload", help="ask the running server to reload its config file (POST <admin_root>/reload)")
    reload.add_argument("file", nargs="?", default="gocast.vibe", metavar="FILE",
                        help="the server's config file, for its port and admin credentials "
                             "(default: gocast.vibe)")
    reload.add_argument("--url", default=argparse.SUPPRESS,
                        help="the server's base URL (default: GOCAST_URL, the client config, else from FILE)")
    reload.add_argument("--api-key", default=argparse.SUPPRESS,
                        help="reload through the REST API with this key (default: GOCAST_API_KEY, "
                             "the client config); without a key, the admin credentials in FILE")
    add_commands(commands)
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
        unusable = unusable_files(loaded.config)
        if unusable:
            err.write("".join("%s: %s\n" % (path, problem) for problem in unusable))
            err.write("%s: %d error%s\n" % (path, len(unusable), "" if len(unusable) == 1 else "s"))
            status = 1
            continue
        missing = ffmpeg_missing(loaded.config)
        if missing:
            err.write("%s: warning: %s\n" % (path, missing))
        mounts = len(loaded.config.mounts)
        warnings = len(loaded.warnings) + bool(missing)
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


def reload_server(path: str, url: Optional[str], out: TextIO, err: TextIO) -> int:
    """POST to the running server's reload endpoint, with the admin credentials from ``path``."""
    import base64
    import urllib.error
    import urllib.request

    try:
        config = load_config(path).config
    except ConfigError as e:
        err.write(render_issues(e.issues) + "\n")
        return 1
    base = url or config_url(config)
    token = base64.b64encode(("%s:%s" % (config.auth.admin_user, config.auth.admin_password)).encode())
    request = urllib.request.Request(base.rstrip("/") + config.server.admin_root + "/reload", data=b"",
                                     method="POST", headers={"Authorization": "Basic " + token.decode()})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            result = json.loads(response.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            result = json.loads(body)
        except ValueError:
            err.write("gocast: %s answered %d: %s\n" % (base, e.code, body[:200].decode("utf-8", "replace")))
            return 1
    except OSError as e:
        err.write("gocast: cannot reach the server at %s: %s\n" % (base, e))
        return 1
    for line in result.get("errors", []):
        err.write(line + "\n")
    if result.get("success"):
        print_reload(result, out)
        return 0
    err.write("reload refused; the server keeps its running configuration\n")
    return 1


def config_url(config: Any) -> str:
    """The address a config file's server listens on, as a base URL."""
    host = "127.0.0.1" if config.server.listen in ("0.0.0.0", "::") else config.server.listen
    return "http://%s:%d" % ("[%s]" % host if ":" in host else host, config.server.port)


def server_url(path: str, err: TextIO) -> Optional[str]:
    try:
        return config_url(load_config(path).config)
    except ConfigError as e:
        err.write(render_issues(e.issues) + "\n")
        return None


def reload(args: Any, out: TextIO, err: TextIO) -> int:
    """Through the REST API when a key is at hand, else the Icecast-style admin endpoint."""
    try:
        settings = client_settings(args, dict(os.environ))
    except UsageError as e:
        err.write("gocast: %s\n" % e)
        return EXIT_USAGE
    if settings["api_key"]:
        if not settings["url"]:
            settings["url"] = server_url(args.file, err)
            if settings["url"] is None:
                return 1
        return reload_with_key(settings["url"], settings["api_key"], out, err)
    return reload_server(args.file, args.url, out, err)


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


#: The exit status of a command whose output was cut off (128 + SIGPIPE), as a shell reports it.
EXIT_BROKEN_PIPE = 141


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
    """
    The ``gocast`` command. Output piped into a reader that stops early
    (``gocast stats --watch | head``) ends it quietly, as for any Unix tool.
    """
    try:
        _main(argv, out, err)
    except BrokenPipeError:
        if out is sys.stdout:
            # Nothing more can be written; keep Python from complaining as it flushes at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)


def _main(argv: Optional[List[str]], out: TextIO, err: TextIO) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve" or (args.command is None and args.config):
        sys.exit(serve(args.config))
    if args.command in COMMANDS:
        sys.exit(run(args, out, err))
    if args.command == "config":
        if args.config_command == "check":
            sys.exit(check_files(args.files, out, err))
        if args.config_command == "show":
            sys.exit(show_config(args.file, args.format, args.reveal_secrets, out, err))
        if args.config_command == "reload":
            sys.exit(reload(args, out, err))
        if args.config_command == "docs":
            from ..config._docs import generate

            out.write(generate())
            sys.exit(0)
    parser.print_help(err)
    sys.exit(2)
