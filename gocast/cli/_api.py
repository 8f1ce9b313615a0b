# -*- test-case-name: tests.integration.test_api_cli -*-
"""
The ``gocast`` commands that talk to a running server through the REST API
(with the SDK, :mod:`gocast.client`).

Where the server is and which key to use: ``--url`` and ``--api-key``, else
``GOCAST_URL`` and ``GOCAST_API_KEY``, else the client config file
(``$GOCAST_CLIENT_CONFIG``, default ``~/.config/gocast/client.vibe``) with
``url`` and ``api_key``, else ``http://localhost:8000`` and no key.

Exit codes: 0 done; 1 the server refused (the error says why); 2 bad
usage; 3 the server cannot be reached; 4 not allowed (no valid key, or
the key lacks the permission).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

import attr

from ..client import ConnectionFailed, GoCastClient, GoCastError

DEFAULT_URL = "http://localhost:8000"
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_DENIED = 1, 2, 3, 4

_HINTS = {
    "connection_failed": ["Is GoCast running? Start it with: gocast serve",
                          "Check the address: --url, GOCAST_URL or the client config file"],
    "unauthorized": ["Pass an API key with --api-key or GOCAST_API_KEY (keys: docs/api.md#api-keys)",
                     "An expired or revoked key is refused too"],
    "forbidden": ["Use a key that has this permission, or ask an admin for one"],
    "rate_limited": ["Too many failed attempts from this address: wait a minute and check the key"],
    "not_found": ["Check the name: gocast mount list"],
    "config_file_mount": ["Edit the config file, then: gocast config reload"],
    "no_source": ["Nothing is streaming to this mount right now"],
}


def add_client_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """
    ``--url``, ``--api-key``, ``--json``: on the ``gocast`` parser and on
    each API command, so they may come before or after the command. The
    commands' copies default to SUPPRESS, so one given before the command
    is not overwritten by the command's default.
    """
    parser.add_argument("--url", default=default,
                        help="the server (default: GOCAST_URL, the client config, %s)" % DEFAULT_URL)
    parser.add_argument("--api-key", default=default,
                        help="API key gck_... (default: GOCAST_API_KEY, the client config)")
    parser.add_argument("--json", action="store_true", default=default, help="print JSON instead of a table")


def add_commands(commands: Any) -> None:
    """Add the API commands to the ``gocast`` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    add_client_options(common, argparse.SUPPRESS)

    mount = commands.add_parser("mount", help="list, create, delete mounts; a mount's figures")
    actions = mount.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="list mounts")
    create = actions.add_parser("create", parents=[common], help="create a mount (kept across restarts)")
    create.add_argument("mount")
    create.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a mount setting, as in the config file (repeatable): --set max_listeners=100")
    delete = actions.add_parser("delete", parents=[common], help="delete a mount created through the API")
    delete.add_argument("mount")
    stats = actions.add_parser("stats", parents=[common], help="a mount's figures and source")
    stats.add_argument("mount")

    listeners = commands.add_parser("listeners", parents=[common], help="list a mount's listeners")
    listeners.add_argument("mount")
    kick = commands.add_parser("kick", parents=[common], help="disconnect a listener")
    kick.add_argument("mount")
    kick.add_argument("id")

    source = commands.add_parser("source", help="a mount's source")
    source_actions = source.add_subparsers(dest="action", metavar="ACTION", required=True)
    kill = source_actions.add_parser("kill", parents=[common], help="disconnect the source")
    kill.add_argument("mount")

    stats = commands.add_parser("stats", parents=[common], help="listener figures (stats export: CSV/JSON)")
    stats.add_argument("export", nargs="?", choices=["export"], help="print the figures for a file")
    stats.add_argument("--format", choices=("csv", "json"), default="csv", help="for export")
    stats.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    stats.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (--watch)")
    stats.add_argument("--count", type=int, default=0, help="stop after this many refreshes (--watch)")

    cluster = commands.add_parser("cluster", help="the cluster and this server's relays")
    cluster_actions = cluster.add_subparsers(dest="action", metavar="ACTION", required=True)
    cluster_actions.add_parser("status", parents=[common], help="nodes, regions, mounts carried, relays")
    route = cluster_actions.add_parser("route", parents=[common], help="the node a listener address is sent to")
    route.add_argument("ip")
    route.add_argument("mount")
    route.add_argument("--region", help="decide the region instead of GeoIP")

    record = commands.add_parser("record", help="recordings")
    record_actions = record.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("start", "start recording a mount"), ("stop", "stop recording a mount")):
        action = record_actions.add_parser(name, parents=[common], help=text)
        action.add_argument("mount")
    listing = record_actions.add_parser("list", parents=[common], help="list recordings, newest first")
    listing.add_argument("mount", nargs="?", help="only this mount's")
    download = record_actions.add_parser("download", parents=[common], help="download a closed recording")
    download.add_argument("id", help="the recording's id (its file name), from gocast record list")
    download.add_argument("-o", "--output", help="file to write (default: the id, in this folder)")
    delete = record_actions.add_parser("delete", parents=[common], help="delete a closed recording")
    delete.add_argument("id")


COMMANDS = ("mount", "listeners", "kick", "source", "stats", "cluster", "record")


class UsageError(Exception):
    """The command line or the client config file is wrong: exit code 2."""


def client_config_path(environ: Dict[str, str]) -> str:
    return environ.get("GOCAST_CLIENT_CONFIG") or os.path.join(
        environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"), "gocast", "client.vibe")


def read_client_config(path: str) -> Dict[str, str]:
    """``url`` and ``api_key`` from a client config file (VIBE); UsageError naming the line if it is wrong."""
    from ..config import vibe

    try:
        with open(path, "rb") as f:
            document = vibe.loads(f.read(), filename=path)
    except FileNotFoundError:
        return {}
    except vibe.VibeError as e:
        raise UsageError("%s:%d:%d: %s" % (path, e.line, e.column, e.message))
    except OSError as e:
        raise UsageError("cannot read the client config %s: %s" % (path, e.strerror))
    unknown = sorted(set(document) - {"url", "api_key"})
    if unknown:
        raise UsageError("%s: unknown key %s (a client config has url and api_key)" % (path, unknown[0]))
    for key in ("url", "api_key"):
        if key in document and not isinstance(document[key], str):
            raise UsageError("%s: %s must be text" % (path, key))
    return {key: document[key] for key in ("url", "api_key") if key in document}


def client_settings(args: Any, environ: Dict[str, str]) -> Dict[str, Optional[str]]:
    """URL and key from the options, else the environment, else the client config file."""
    settings: Dict[str, Optional[str]] = {"url": None, "api_key": None}
    settings.update(read_client_config(client_config_path(environ)))
    for key, variable in (("url", "GOCAST_URL"), ("api_key", "GOCAST_API_KEY")):
        if environ.get(variable):
            settings[key] = environ[variable]
        if getattr(args, key, None):
            settings[key] = getattr(args, key)
    return settings


def run(args: Any, out: TextIO, err: TextIO, environ: Optional[Dict[str, str]] = None,
        sleep: Callable[[float], None] = time.sleep) -> int:
    try:
        settings = client_settings(args, dict(os.environ) if environ is None else environ)
        client = GoCastClient(settings["url"] or DEFAULT_URL, api_key=settings["api_key"])
        return guarded(lambda: _dispatch(client, args, out, sleep), err)
    except UsageError as e:
        err.write("gocast: %s\n" % e)
        return EXIT_USAGE


def guarded(command: Callable[[], int], err: TextIO) -> int:
    """Run a command that calls the API; its errors explained, with the exit code they mean."""
    try:
        return command()
    except ConnectionFailed as e:
        return explain(e, err, EXIT_UNREACHABLE)
    except GoCastError as e:
        return explain(e, err, EXIT_DENIED if e.status in (401, 403, 429) else EXIT_REFUSED)
    except KeyboardInterrupt:
        return 0


def explain(error: GoCastError, err: TextIO, code: int) -> int:
    """The roadmap's error style: what failed, why, what to check."""
    err.write("Error: %s\n" % error.message)
    if isinstance(error.details, list):
        for detail in error.details:
            if isinstance(detail, dict):
                err.write("  → %s: %s\n" % (detail.get("field") or "body", detail.get("message")))
            else:
                err.write("  → %s\n" % detail)
    if isinstance(error.details, dict) and error.details.get("required"):
        err.write("  → The key needs the permission %s\n" % error.details["required"])
    for hint in _HINTS.get(error.code, []):
        err.write("  → %s\n" % hint)
    return code


def _dispatch(client: GoCastClient, args: Any, out: TextIO, sleep: Callable[[float], None]) -> int:
    command, action = args.command, getattr(args, "action", None)
    show = _printer(out, args.json)
    if command == "mount" and action == "list":
        show([_mount_row(m) for m in client.mounts.list()],
             ["path", "origin", "live", "listeners", "peak_listeners", "max_listeners", "title"])
    elif command == "mount" and action == "create":
        mount = client.mounts.create(args.mount, **parse_settings(args.set))
        show([_mount_row(mount)], ["path", "origin", "max_listeners"])
    elif command == "mount" and action == "delete":
        client.mounts.delete(args.mount)
        show({"deleted": "/" + args.mount.strip("/")}, None)
    elif command == "mount" and action == "stats":
        mount = client.mounts.get(args.mount)
        row = _mount_row(mount)
        row.update({"source_" + k: v for k, v in attr.asdict(mount.source).items()} if mount.source else {})
        show(row, None)
    elif command == "listeners":
        show([attr.asdict(item) for item in client.mounts.get_listeners(args.mount)],
             ["id", "ip", "listener_id", "duration", "bytes_sent", "user_agent"])
    elif command == "kick":
        client.mounts.kick(args.mount, args.id)
        show({"kicked": args.id}, None)
    elif command == "source" and action == "kill":
        client.mounts.kill_source(args.mount)
        show({"disconnected": "/" + args.mount.strip("/")}, None)
    elif command == "stats":
        return stats(client, args, out, sleep)
    elif command == "cluster" and action == "route":
        show(client.cluster_route(args.ip, args.mount, args.region), None)
    elif command == "cluster":
        cluster_status(client.cluster(), out, args.json)
    elif command == "record":
        if action == "list":
            show(client.recordings.list(args.mount), None)
        elif action == "start":
            show(client.recordings.start(args.mount), None)
        elif action == "stop":
            show(client.recordings.stop(args.mount), None)
        elif action == "delete":
            show(client.recordings.delete(args.id), None)
        else:
            return download_recording(client, args, out)
    return 0


def download_recording(client: GoCastClient, args: Any, out: TextIO) -> int:
    """Into ``--output``, or a file named as the recording here (never a path the server chose)."""
    target = args.output or os.path.basename(args.id.replace("\\", "/")) or "recording"
    partial = target + ".part"
    try:
        with open(partial, "wb") as destination:
            written = client.recordings.download(args.id, destination)
        os.replace(partial, target)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    out.write("%s: %d bytes\n" % (target, written))
    return 0


def stats(client: GoCastClient, args: Any, out: TextIO, sleep: Callable[[float], None]) -> int:
    if args.export:
        figures = client.get_stats()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows = [dict(attr.asdict(m), timestamp=now) for m in figures.mounts]
        if args.format == "json":
            out.write(json.dumps(rows, indent=2) + "\n")
        else:
            writer = csv.DictWriter(out, ["timestamp", "path", "listeners", "peak_listeners", "bytes_sent",
                                          "bytes_received", "live"], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return 0
    refreshes = 0
    while True:
        figures = client.get_stats()
        if args.watch and out.isatty():
            out.write("\x1b[H\x1b[2J")  # back to the top: refresh in place
        if args.json:
            out.write(json.dumps(attr.asdict(figures)) + "\n")
        else:
            out.write("%d listeners, %d sources, up %ds   %s\n" % (
                figures.total_listeners, figures.sources, figures.uptime, time.strftime("%H:%M:%S")))
            _table(out, [attr.asdict(m) for m in figures.mounts],
                   ["path", "live", "listeners", "peak_listeners", "bytes_sent"])
        out.flush()
        refreshes += 1
        if not args.watch or (args.count and refreshes >= args.count):
            return 0
        sleep(args.interval)


def cluster_status(status: Dict[str, Any], out: TextIO, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(status, indent=2) + "\n")
        return
    redis = status.get("redis") or {}
    if status.get("enabled"):
        state = "connected" if redis.get("connected") else redis.get("error") or "not connected"
        if redis.get("connected") and not redis.get("subscribed", True):
            state += " (not subscribed yet: updates from other nodes wait)"
        out.write("cluster: node %s (%s, region %s); Redis %s: %s\n" % (
            status.get("id"), status.get("role"), status.get("region") or "-", redis.get("url"), state))
        out.write("leader: %s%s\n" % (status.get("leader") or "none yet", " (this node)" if status.get("is_leader")
                                       else ""))
    else:
        out.write("cluster: not joined (cluster.sync is off)\n")
    nodes = [dict(node, mounts=" ".join("%s(%d)" % (m["path"], m["hops"]) for m in node["mounts"]) or "-",
                  id=node["id"] + (" *" if node.get("self") else ""))
             for node in status.get("nodes", [])]
    if nodes:
        out.write("\nnodes (mount(hops from its origin)):\n")
        _table(out, nodes, ["id", "role", "region", "listeners", "load", "mounts"])
    out.write("\nrelays:\n")
    _table(out, status.get("relays", []), ["mount", "upstream", "origin", "state", "reconnects", "last_error"])
    if status.get("workers"):
        out.write("\nworkers:\n")
        _table(out, status["workers"], ["index", "pid", "ready", "listeners"])


def parse_settings(pairs: Sequence[str]) -> Dict[str, Any]:
    """
    ``key=value`` pairs into a mount's settings; a value that is JSON (100,
    true, [..]) is taken as such, and a dotted key sets a key of a block:
    ``hls.enabled=true`` is ``{"hls": {"enabled": true}}``.
    """
    settings: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        names = key.split(".")
        if not sep or not all(names):
            raise UsageError("--set needs KEY=VALUE (KEY may be dotted: hls.enabled=true), not %r" % pair)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        block = settings
        for name in names[:-1]:
            block = block.setdefault(name, {})
            if not isinstance(block, dict):
                raise UsageError("--set %s: %s is a value, not a block" % (pair, name))
        block[names[-1]] = value
    return settings


def reload_with_key(url: str, api_key: str, out: TextIO, err: TextIO) -> int:
    """``gocast config reload`` through the REST API, with a key that has the reload permission."""
    def reload() -> int:
        print_reload(GoCastClient(url, api_key=api_key).reload(), out)
        return 0

    return guarded(reload, err)


def print_reload(result: Dict[str, Any], out: TextIO) -> None:
    out.write("reloaded: %s\n" % ("; ".join(result["changes"]) or "no change"))
    for name in result.get("restart_required", []):
        out.write("needs a restart to change: %s\n" % name)


def _mount_row(mount: Any) -> Dict[str, Any]:
    row = attr.asdict(mount)
    row.pop("source", None)
    return row


def _printer(out: TextIO, as_json: bool) -> Callable[[Any, Optional[List[str]]], None]:
    def show(data: Any, columns: Optional[List[str]]) -> None:
        if as_json:
            out.write(json.dumps(data, indent=2) + "\n")
        elif isinstance(data, list):
            _table(out, data, columns or (sorted(data[0]) if data else []))
        else:
            width = max((len(k) for k in data), default=0)
            for key, value in data.items():
                out.write("%-*s  %s\n" % (width, key, _cell(value)))

    return show


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table(out: TextIO, rows: List[Dict[str, Any]], columns: List[str]) -> None:
    """
    Aligned columns on a terminal; piped, one line per row with the cells
    separated by tabs (``cut -f``, ``awk -F'\\t'``), the header first.
    """
    if not rows:
        out.write("(none)\n")
        return
    cells = [[" ".join(_cell(row.get(c)).split()) for c in columns] for row in rows]  # one line per row
    if not out.isatty():
        for line in [[c.upper() for c in columns]] + cells:
            out.write("\t".join(line) + "\n")
        return
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")
