# -*- test-case-name: tests.test_history, tests.test_api -*-
"""
The embedded state store: an SQLite file in the data directory
(``server.state_db``) holding what is created at run time and must survive
a restart: mounts created through the REST API, API keys (their hash,
never the secret) with their usage, dashboard logins (the hash of their
cookie), and the stats history (:mod:`gocast.history`).

Reads happen once, at startup, before the reactor runs. Writes go through
``run_in_thread`` (a thread, so the reactor never waits on the disk), one
at a time behind a lock, since they share one connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mounts (name TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, "
    "permissions TEXT NOT NULL, expires TEXT, description TEXT NOT NULL, created REAL NOT NULL, "
    "last_used REAL, requests INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS dashboard_sessions (hash TEXT PRIMARY KEY, expires REAL NOT NULL, "
    "csrf TEXT NOT NULL)",
) + tuple(
    "CREATE TABLE IF NOT EXISTS %s (ts REAL NOT NULL, mount TEXT NOT NULL, listeners REAL NOT NULL, "
    "peak INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, places TEXT, "
    "PRIMARY KEY (ts, mount))" % table for table in ("history_fine", "history_coarse"))
#: The stats history's columns, in order.
STATS_COLUMNS = ("ts", "mount", "listeners", "peak", "bytes_sent", "bytes_received", "places")
_KEY_COLUMNS = ("id", "name", "hash", "permissions", "expires", "description", "created", "last_used", "requests")


#: Where data goes when neither the config nor systemd says.
DEFAULT_DATA_DIR = "gocast-data"


def data_dir_in_use(setting: str, systemd_state_directory: Optional[str]) -> str:
    """
    ``server.data_dir``, or when it is left empty systemd's
    ``StateDirectory=`` (``/var/lib/gocast``) when set, else ``gocast-data``
    in the working folder.
    """
    return setting or systemd_state_directory or DEFAULT_DATA_DIR


def state_path(data_dir: str, state_db: str) -> str:
    return state_db if os.path.isabs(state_db) else os.path.join(data_dir, state_db)


class StateStore:
    def __init__(self, path: str, run_in_thread: Callable[..., Any]):
        self.path = path
        self.run_in_thread = run_in_thread
        self._lock = threading.Lock()
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
            # API key hashes and dashboard sessions: readable by GoCast's user only.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with self._lock:
            for statement in _SCHEMA:
                self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Startup reads (the reactor is not running yet)

    def mounts(self) -> Dict[str, Dict[str, Any]]:
        """Mounts created through the API: name (without /) to their raw config."""
        with self._lock:
            rows = self._db.execute("SELECT name, config FROM mounts ORDER BY name").fetchall()
        return {name: json.loads(config) for name, config in rows}

    def keys(self) -> List[Dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT %s FROM api_keys ORDER BY created" % ", ".join(_KEY_COLUMNS))
            records = [dict(zip(_KEY_COLUMNS, row)) for row in rows.fetchall()]
        for record in records:
            record["permissions"] = json.loads(record["permissions"])
        return records

    def dashboard_sessions(self, now: float) -> List[Tuple[str, float, str]]:
        """Dashboard logins that have not expired: (token hash, expiry, CSRF token)."""
        with self._lock:
            rows = self._db.execute("SELECT hash, expires, csrf FROM dashboard_sessions WHERE expires > ?",
                                    (now,)).fetchall()
        return [tuple(row) for row in rows]  # type: ignore[misc]

    # Writes, off the reactor

    def _write(self, sql: str, *args: Any) -> Any:
        def write() -> None:
            with self._lock:
                self._db.execute(sql, args)

        return self.run_in_thread(write)

    def put_mount(self, name: str, config: Dict[str, Any], created: float) -> Any:
        return self._write("INSERT INTO mounts (name, config, created) VALUES (?, ?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET config = excluded.config",
                           name, json.dumps(config), created)

    def delete_mount(self, name: str) -> Any:
        return self._write("DELETE FROM mounts WHERE name = ?", name)

    def put_key(self, record: Dict[str, Any]) -> Any:
        values = dict(record, permissions=json.dumps(list(record["permissions"])))
        return self._write("INSERT OR REPLACE INTO api_keys (%s) VALUES (%s)" % (", ".join(_KEY_COLUMNS),
                                                                     ", ".join("?" * len(_KEY_COLUMNS))),
                           *[values[c] for c in _KEY_COLUMNS])

    def delete_key(self, key_id: str) -> Any:
        return self._write("DELETE FROM api_keys WHERE id = ?", key_id)

    def record_usage(self, key_id: str, last_used: float, requests: int) -> Any:
        return self._write("UPDATE api_keys SET last_used = ?, requests = ? WHERE id = ?",
                           last_used, requests, key_id)

    def put_dashboard_session(self, token_hash: str, expires: float, csrf: str) -> Any:
        return self._write("INSERT OR REPLACE INTO dashboard_sessions (hash, expires, csrf) VALUES (?, ?, ?)",
                           token_hash, expires, csrf)

    def delete_dashboard_session(self, token_hash: str, now: float) -> Any:
        """Forget a login, and the logins that expired."""
        return self._write("DELETE FROM dashboard_sessions WHERE hash = ? OR expires <= ?", token_hash, now)

    # The stats history: samples every few seconds ("fine"), downsampled ("coarse")

    def add_samples(self, rows: List[tuple]) -> Any:
        def write() -> None:
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO history_fine VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

        return self.run_in_thread(write)

    def downsample(self, start: float, end: float, prune_fine: float, prune_coarse: float) -> Any:
        """One coarse row per mount for the samples in [start, end); rows older than the prune times go."""
        def write() -> None:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO history_coarse SELECT ?, mount, AVG(listeners), MAX(peak), "
                    "MAX(bytes_sent), MAX(bytes_received), "
                    "(SELECT f.places FROM history_fine f WHERE f.mount = history_fine.mount AND f.ts >= ? "
                    "AND f.ts < ? ORDER BY f.ts DESC LIMIT 1) "
                    "FROM history_fine WHERE ts >= ? AND ts < ? GROUP BY mount", (start, start, end, start, end))
                self._db.execute("DELETE FROM history_fine WHERE ts < ?", (prune_fine,))
                self._db.execute("DELETE FROM history_coarse WHERE ts < ?", (prune_coarse,))

        return self.run_in_thread(write)

    def stats_rows(self, table: str, since: float, mount: Optional[str] = None) -> Any:
        """Deferred rows (dicts) of ``history_fine`` or ``history_coarse`` from ``since``, oldest first."""
        assert table in ("history_fine", "history_coarse")

        def read() -> List[Dict[str, Any]]:
            sql = "SELECT %s FROM %s WHERE ts >= ?" % (", ".join(STATS_COLUMNS), table)
            args: List[Any] = [since]
            if mount is not None:
                sql += " AND mount = ?"
                args.append(mount)
            with self._lock:
                rows = self._db.execute(sql + " ORDER BY ts, mount", args).fetchall()
            return [dict(zip(STATS_COLUMNS, row)) for row in rows]

        return self.run_in_thread(read)
