"""MLflow's local SQLite store (``mlflow.db``), tuned and created safely.

- Write-ahead-log mode (kept by the file): a commit costs one sync instead of a rollback
  journal's several, and ``sweep ui`` reads while a sweep writes.
- ``synchronous=NORMAL`` on this process's connections to it: no fsync per commit (MLflow
  commits about five times per run). In WAL mode a power loss may lose the last commits but
  never corrupts the file, and MLflow is a view of the storage: ``sweep sync`` rewrites
  whatever a crash lost. Both are set through SQLAlchemy's public connect event, when
  MLflow's engine opens a connection, so that creating the tables (dozens of migrations)
  is fast too.
- Creating the file (MLflow's migrations) is serialized between processes with a lock on
  its folder: two processes creating it at once would race ("duplicate column name").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["sqlite_path", "tune", "creating"]

_paths: set[str] = set()
_listening = False


def sqlite_path(uri: str | None) -> str | None:
    """The file of a ``sqlite:///`` URI (absolute), else ``None``."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return os.path.realpath(path)


def _on_connect(dbapi_connection, record) -> None:  # noqa: ANN001
    import sqlite3

    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    try:
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main"]
        if files and files[0] and os.path.realpath(files[0]) in _paths:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.Error:  # locked or read-only: MLflow works as it is
        pass


def tune(uri: str | None) -> None:
    """WAL and ``synchronous=NORMAL`` for this process's connections to MLflow's SQLite file."""
    global _listening
    path = sqlite_path(uri)
    if path is None:
        return
    _paths.add(path)
    if not _listening:
        import sqlalchemy

        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _on_connect)
        _listening = True


@contextlib.contextmanager
def creating(uri: str | None) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite file's folder while MLflow creates (or migrates) it."""
    path = sqlite_path(uri)
    folder = os.path.dirname(path) if path else None
    if folder is None or not os.path.isdir(folder):
        yield
        return
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
