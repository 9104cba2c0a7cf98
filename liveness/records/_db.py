"""The one SQLite database that holds records, attempt counters and family state.

WAL mode (readers never block the writer), ``synchronous=FULL`` (a commit is on disk before it
returns, even across power loss), and every write in ``BEGIN IMMEDIATE`` so that concurrent
writers, threads or processes, are serialised by SQLite itself rather than by luck.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from liveness.config import RecordConfig
from liveness.errors import RecordError

__all__ = ["Database"]


class Database:
    """A thread-safe handle on one SQLite file (one connection, serialised by a lock)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.parent.is_dir():
            raise RecordError(
                f"the folder for the record database does not exist: {self.path.parent}",
                hint="Create the folder or point records.db_path somewhere else.",
            )
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(path),
                timeout=busy_timeout_s,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise RecordError(
                f"cannot open the record database {self.path}: {exc}",
                hint="Check the path is a writable SQLite file (not another kind of file).",
            ) from None
        if str(mode).lower() != "wal" and str(path) != ":memory:":
            raise RecordError(f"the record database {self.path} cannot use WAL mode ({mode})")
        self._schemas: set[str] = set()

    @classmethod
    def open(cls, path: str | Path, cfg: RecordConfig | None = None) -> Database:
        """The database at ``path`` with ``cfg``'s busy timeout (the default ``[records]`` one)."""
        return cls(path, busy_timeout_s=(cfg or RecordConfig()).busy_timeout_s)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed durably on success, else rolled back."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _wrap(exc, self.path) from None
            try:
                yield conn
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise _wrap(exc, self.path) from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise _wrap(exc, self.path) from None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot (BEGIN DEFERRED ... COMMIT)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _wrap(exc, self.path) from None
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def ensure_schema(self, name: str, statements: Sequence[str]) -> None:
        """Create the tables of one component (idempotent, safe against concurrent openers)."""
        if name in self._schemas:
            return
        with self.write() as conn:
            for stmt in statements:
                conn.execute(stmt)
        self._schemas.add(name)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _wrap(exc: sqlite3.Error, path: Path) -> RecordError:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return RecordError(
            f"the record database {path} stayed locked by another writer: {msg}",
            hint="Another process holds a long write transaction; retry, or raise "
            "records.busy_timeout_s.",
        )
    if "not a database" in msg or "malformed" in msg:
        return RecordError(
            f"{path} is not a usable SQLite database: {msg}",
            hint="Restore the store from a verified backup.",
        )
    return RecordError(f"record database error in {path}: {msg}")
