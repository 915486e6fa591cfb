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
- A store that can't be written is told at once (:func:`unwritable`), not after MLflow's
  engine has retried for 100 seconds; one whose set-up was cut off (a full disk during
  MLflow's migrations) is recognised (:func:`half_migrated`): no migration can finish it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import tempfile
from collections.abc import Iterator

__all__ = ["sqlite_path", "tune", "creating", "unwritable", "half_migrated", "stop_unless_creating"]

# While MLflow creates or migrates a store's tables: a stop signal then would leave the store
# half-migrated for good (each later run and sync refused), so it waits for the tables.
_CREATING = {"depth": 0, "deferred": 0}

_WHY = {
    errno.EROFS: "is on a read-only file system",
    errno.ENOSPC: "is on a full disk",
    errno.EDQUOT: "is over its disk quota",
    errno.EACCES: "is not writable (permission denied)",
    errno.EPERM: "is not writable (not permitted: immutable?)",
    errno.ENOTDIR: "has a file where a folder should be",
}

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
    _CREATING["depth"] += 1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
        _CREATING["depth"] -= 1
        if not _CREATING["depth"] and _CREATING["deferred"]:
            _die(_CREATING["deferred"])


def stop_unless_creating(signum: int, frame: object = None) -> None:
    """A stop signal's handler for a process that writes MLflow (its writer): it dies by the
    signal at once, or, while MLflow creates a store's tables, as soon as they are made."""
    if _CREATING["depth"]:
        _CREATING["deferred"] = signum
        return
    _die(signum)


def creating_now() -> bool:
    """Whether MLflow is creating a store's tables in this process (see :func:`creating`)."""
    return bool(_CREATING["depth"])


def _die(signum: int) -> None:
    import signal

    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _why(exc: OSError) -> str:
    return _WHY.get(exc.errno or 0) or f"can't be written ({exc.strerror or type(exc).__name__})"


def unwritable(path: str) -> str | None:
    """Why MLflow could not write its SQLite store ``path`` (the file, or its folder, where
    SQLite keeps its write-ahead log and MLflow creates the file), in plain words; ``None``: it can.
    Tried, not guessed from permission bits (which say nothing of a read-only mount to root)."""
    folder = os.path.dirname(path)
    existing = folder
    while existing and not os.path.exists(existing):  # MLflow creates the missing folders
        existing = os.path.dirname(existing)
    if existing and not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:
        if os.path.exists(path):
            os.close(os.open(path, os.O_RDWR))
        fd, probe = tempfile.mkstemp(prefix=".mlflow-probe-", dir=existing or None)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = path if exc.filename == path else f"its folder {existing}"
        return f"{where} {_why(exc)}"
    return None


def half_migrated(path: str) -> bool:
    """Whether the SQLite file ``path`` holds some of MLflow's tables but no record of its schema's
    version (``alembic_version``): its set-up was cut off, and MLflow's next migration fails on the
    tables it finds ("table ... already exists", "duplicate column name")."""
    import sqlite3

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return False
    try:
        # as a URI, the path escaped: a '?' or '#' in a file name is part of the name
        db = sqlite3.connect(pathlib.Path(path).absolute().as_uri() + "?mode=ro", uri=True, timeout=1.0)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "experiments" not in tables and "runs" not in tables:
                return False  # not (yet) MLflow's
            return "alembic_version" not in tables or not db.execute("SELECT 1 FROM alembic_version").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
