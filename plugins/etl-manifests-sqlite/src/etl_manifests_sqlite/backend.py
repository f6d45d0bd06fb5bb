"""SQLite backend: every manifest of a root as one row of one database file.

Root URL: ``sqlite:///abs/path/state.db`` (three slashes, then an absolute path), or
``sqlite://relative/state.db`` for a path relative to the working directory. Add
``?table=name`` to keep the rows in a table other than ``manifests``, so that several
roots can share one file. The file and its folder are created on first use.

Storage options: ``timeout`` (seconds, default 30), how long an operation waits for
another connection's lock before raising
:class:`~etl_manifests.errors.TransientStorageError`.

What a caller may rely on:

* **Atomic objects.** Each key is one row ``(key, data, version, modified)``; a row is
  changed only inside an SQLite transaction, so ``read`` sees the old bytes or the new
  ones, never a mix, in this process or any other.
* **Conditional writes across threads and processes.** A write runs in one
  ``BEGIN IMMEDIATE`` transaction: it takes the database's write lock, compares the stored
  version with the expected one, then inserts or replaces the row. Two writers holding the
  same token cannot both succeed, wherever they run, as long as they open the same file
  on a filesystem with working POSIX locks (a local disk, not a network share).
* **Version tokens** are decimal strings of one counter per table that only ever grows,
  so a token is never reused for a key, even after the key is deleted and created again.
  Tokens are meaningful only for the database file that issued them.
* **Durability.** The database runs in WAL mode with ``synchronous=FULL``: a write that
  returned survives a crash of the process or the machine.

No staged objects are needed: a write lands whole or not at all.

**Fork.** In a child made by ``os.fork()`` the backend opens its own connections (SQLite
forbids carrying one across a fork) and leaves the parent's alone.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs

from etl_manifests import register_after_fork
from etl_manifests.errors import (
    AlreadyExistsError,
    BackendConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from etl_manifests.storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend

__all__ = ["DEFAULT_TABLE", "DEFAULT_TIMEOUT", "SQLiteBackend", "parse_root"]

#: Table holding the rows when the root URL names none.
DEFAULT_TABLE: Final = "manifests"
#: Seconds an operation waits for another connection's lock.
DEFAULT_TIMEOUT: Final = 30.0

_SCHEME: Final = "sqlite://"
_TABLE_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_OPTIONS: Final = frozenset({"timeout"})

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_AUTH = 3, 5, 6, 8, 23


def parse_root(root: str) -> tuple[Path, str]:
    """Split a ``sqlite://`` root URL into the absolute database path and the table name.

    :raises BackendConfigurationError: the URL is not ``sqlite://PATH[?table=NAME]``
        with a valid name.
    """
    if root[: len(_SCHEME)].lower() != _SCHEME:
        raise BackendConfigurationError(
            f"{root!r} is not a sqlite:// URL; use sqlite:///abs/path/state.db"
        )
    location, _, query = root[len(_SCHEME) :].partition("?")
    if not location:
        raise BackendConfigurationError(
            f"{root!r} names no database file; use sqlite:///abs/path/state.db"
        )
    params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    unknown = sorted(set(params) - {"table"})
    if unknown:
        raise BackendConfigurationError(
            f"{root!r}: unknown query parameter(s) {unknown}; only 'table' is read"
        )
    tables = params.get("table", [DEFAULT_TABLE])
    if len(tables) != 1 or not _TABLE_RE.fullmatch(tables[0]):
        raise BackendConfigurationError(
            f"{root!r}: table must be one name of letters, digits and underscores, "
            "not starting with a digit"
        )
    return Path(location).expanduser().absolute(), tables[0]


class SQLiteBackend(StorageBackend):
    """Stores each key as a row of one table in one SQLite database file.

    Safe to share between threads (each operation borrows a connection from a small pool)
    and to use from several processes at once. After :meth:`close`, the next operation
    opens a fresh connection, so a closed backend stays usable.
    """

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Open the store at ``root``; nothing touches the disk until the first operation.

        :raises BackendConfigurationError: ``root`` is not a valid ``sqlite://`` URL, or
            ``storage_options`` holds an option other than ``timeout``.
        """
        options = dict(storage_options or {})
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise BackendConfigurationError(
                f"unknown storage option(s) {unknown} for the sqlite:// backend; "
                f"it accepts: {', '.join(sorted(_OPTIONS))}"
            )
        #: Seconds an operation waits for a lock held by another connection.
        self.timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        #: The database file.
        self.path: Path
        #: The table holding the rows.
        self.table: str
        self.path, self.table = parse_root(root)
        suffix = "" if self.table == DEFAULT_TABLE else f"?table={self.table}"
        self.root = f"{_SCHEME}{self.path.as_posix()}{suffix}"
        self._rows = f'"{self.table}"'
        self._counter = f'"{self.table}__version_counter"'
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._schema_ready = False
        register_after_fork(self, SQLiteBackend._after_fork)

    def _after_fork(self) -> None:
        # In a forked child. SQLite connections must never be used on both sides of a
        # fork: keep the parent's referenced (closing one here could checkpoint and remove
        # the WAL file the parent is using) and open new ones. A thread that did not
        # survive the fork may have held the pool's lock.
        self._lock = threading.Lock()
        self._inherited.extend(self._idle)
        self._idle = []

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.root!r})"

    # --- the contract --------------------------------------------------------------------

    def read(self, key: str) -> Blob:
        """Return the bytes under ``key`` and their version token, read in one statement.

        :raises NotFoundError: no row for ``key``.
        """
        with self._errors("read", key), self._connection() as conn:
            row = conn.execute(
                f"SELECT data, version FROM {self._rows} WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no manifest at {self.url(key)}")
        return Blob(bytes(row[0]), str(row[1]))

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        """Store ``data`` under ``key`` in one transaction and return the new token.

        :raises AlreadyExistsError: ``expect`` is ``ABSENT`` and a row exists.
        :raises ConflictError: ``expect`` is a token and the row's version differs or the
            row is gone.
        :raises TransientStorageError: the write lock stayed taken for ``timeout`` seconds.
        """
        modified = datetime.now(UTC).isoformat()
        with self._errors("write", key), self._connection() as conn:
            # IMMEDIATE takes the write lock now, so no other writer can slip in between
            # the version check and the update. Any exception rolls the transaction back.
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(f"SELECT version FROM {self._rows} WHERE key = ?", (key,)).fetchone()
            if expect is ABSENT and row is not None:
                raise AlreadyExistsError(f"{self.url(key)} already exists")
            if isinstance(expect, str) and (row is None or str(row[0]) != expect):
                raise ConflictError(f"{self.url(key)} changed since it was read")
            conn.execute(f"UPDATE {self._counter} SET last = last + 1 WHERE id = 0")
            (version,) = conn.execute(f"SELECT last FROM {self._counter} WHERE id = 0").fetchone()
            conn.execute(
                f"INSERT INTO {self._rows} (key, data, version, modified) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "data = excluded.data, version = excluded.version, modified = excluded.modified",
                (key, bytes(data), version, modified),
            )
            conn.execute("COMMIT")
        return str(version)

    def delete(self, key: str) -> None:
        """Remove the row for ``key``; a missing key is not an error."""
        with self._errors("delete", key), self._connection() as conn:
            conn.execute(f"DELETE FROM {self._rows} WHERE key = ?", (key,))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Return the rows whose key starts with ``prefix``, sorted by key, with sizes."""
        with self._errors("list", prefix), self._connection() as conn:
            rows = conn.execute(
                f"SELECT key, length(data), modified FROM {self._rows} "
                "WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
        return [ObjectInfo(key, size, datetime.fromisoformat(when)) for key, size, when in rows]

    def url(self, key: str) -> str:
        """``sqlite:///path/state.db#key`` (the root URL, then the key as a fragment)."""
        return f"{self.root}#{key}"

    def close(self) -> None:
        """Close the idle pooled connections; later operations open new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- connections ---------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled connection (opening one if none is idle) for one operation."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        reusable = True
        try:
            yield conn
        finally:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    reusable = False
            if reusable:
                with self._lock:
                    self._idle.append(conn)
            else:
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise PermissionDeniedError(f"cannot create the folder of {self.path}") from None
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {self.path}: {exc}") from None
        # isolation_level=None: no implicit transactions; every write says BEGIN itself.
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA synchronous = FULL")
            if not self._schema_ready:
                self._create_schema(conn)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # WAL lets readers proceed while a writer commits; the setting is stored in the file.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._rows} (key TEXT PRIMARY KEY, "
                "data BLOB NOT NULL, version INTEGER NOT NULL, modified TEXT NOT NULL)"
            )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._counter} "
                "(id INTEGER PRIMARY KEY CHECK (id = 0), last INTEGER NOT NULL)"
            )
            conn.execute(f"INSERT OR IGNORE INTO {self._counter} (id, last) VALUES (0, 0)")
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Translate ``sqlite3`` errors into the library's storage errors."""
        try:
            yield
        except sqlite3.Error as exc:
            self._raise_storage_error(action, key, exc)

    def _raise_storage_error(self, action: str, key: str, exc: sqlite3.Error) -> NoReturn:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        where = f"{action} {self.url(key)}"
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            raise TransientStorageError(
                f"{where}: the database stayed locked for {self.timeout:.0f}s; another "
                "writer may be stuck: retry, or raise the 'timeout' storage option"
            ) from None
        if code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_AUTH):
            raise PermissionDeniedError(
                f"{where}: {exc}; check the permissions of {self.path} and its folder"
            ) from None
        raise StorageError(f"{where} failed: {exc}") from None
