"""Opening the Optuna storage that holds a sweep, and keeping its URL's password out of sight."""

from __future__ import annotations

import os
import re
import warnings
from urllib.parse import urlsplit, urlunsplit

import optuna

__all__ = ["DEFAULT_STORAGE", "FlockLock", "SweepJournalBackend", "open_storage", "redact", "scrub", "storage_kind"]

# A journal file in the working directory: safe for several processes on one machine
# (Optuna advises against SQLite there).
DEFAULT_STORAGE = "sweeps.journal"

_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
# Missing module -> the package that brings it.
_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient",
             "pymysql": "pymysql", "redis": "redis", "mariadb": "mariadb"}


class FlockLock(optuna.storages.journal.JournalFileOpenLock):
    """A journal lock held with ``fcntl.flock``: waiters queue in the kernel instead of polling.

    Optuna's default symlink lock retries with a sleep that doubles up to one second, so
    workers that write often (pruning reports) wait far longer than the write takes; and a
    worker killed while holding it blocks the others for the grace period. A flock is
    granted as soon as it is free and vanishes with the process that held it.
    """

    def __init__(self, filepath: str) -> None:  # noqa: D107 - the base class's lock file is not used
        self._path = filepath + ".lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# Journal operations after which the file is fsync'ed: a study's creation and attributes, and
# every trial's end (SET_TRIAL_STATE_VALUES): a finished trial survives even a power loss.
_DURABLE_OPS = frozenset({0, 1, 2, 6, 10})


class SweepJournalBackend(optuna.storages.journal.JournalFileBackend):
    """Optuna's journal file, in the same format, fsync'ed only when it matters.

    Optuna fsyncs every record; a sweep writes dozens per trial (parameters, pruning
    reports, attributes), and the fsyncs cost more than the writes. Records are still
    written at once (a killed process loses nothing: the kernel keeps the pages); the file
    is forced to disk when a trial ends or a study changes.
    """

    def append_logs(self, logs: list[dict]) -> None:
        import json

        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        self._lock.acquire()
        try:
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                if any(log.get("op_code") in _DURABLE_OPS for log in logs):
                    os.fsync(f.fileno())
        finally:
            self._lock.release()


def _journal_lock(path: str) -> optuna.storages.journal.JournalFileOpenLock | None:
    try:
        import fcntl  # noqa: F401 - POSIX only
    except ImportError:  # pragma: no cover - Windows: Optuna's default lock
        return None
    return FlockLock(path)


def storage_kind(url: str) -> str:
    """``journal``, ``rdb`` or ``redis``."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in _RDB_SCHEMES:
        return "rdb"
    if scheme in ("", "file"):
        return "journal"
    raise ValueError(
        f"'--storage' must be a journal file path or a URL with a scheme in "
        f"{sorted(('file', 'redis', 'rediss', *_RDB_SCHEMES))}, but got {redact(url)!r}."
    )


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``: safe to print or log."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message, say) with the password of ``url`` and of any URL in it hidden."""
    parts = urlsplit(url) if url and "://" in url else None
    if parts is not None and parts.password:
        text = text.replace(parts.password, "***")
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)


def open_storage(url: str | None = None, *, heartbeat_interval: int | None = 10,
                 grace_period: int | None = 30, max_retry: int = 2,
                 checked: bool = False) -> optuna.storages.BaseStorage:
    """Open a storage: a journal file path (default ``sweeps.journal``), ``redis://`` or an RDB URL.

    RDB storages get Optuna's heartbeat: a worker records one every ``heartbeat_interval``
    seconds while it trains, and a trial whose heartbeat is older than ``grace_period``
    seconds (its worker died, on any host) is failed and retried with the same parameters
    (``RetryHeartbeatStaleTrialCallback``, up to ``max_retry`` times). ``checked``: the
    launcher has created and checked the database's tables already (its workers skip
    Optuna's table creation and schema check, half a second each).
    """
    url = url or DEFAULT_STORAGE
    kind = storage_kind(url)
    try:
        if kind == "journal":
            path = url[len("file://"):] if url.startswith("file://") else url
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise ValueError(f"'--storage': the folder of {path!r} does not exist.")
            backend = SweepJournalBackend(path, lock_obj=_journal_lock(path))
            return optuna.storages.JournalStorage(backend)
        if kind == "redis":
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalRedisBackend(url))
        callback = None
        if heartbeat_interval:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=heartbeat_interval or None,
                grace_period=grace_period if heartbeat_interval else None,
                heartbeat_stale_trial_callback=callback,
                engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
                skip_compatibility_check=checked, skip_table_creation=checked,
            )
    except ImportError as exc:
        missing = exc.name or getattr(exc.__cause__, "name", None) or ("redis" if kind == "redis" else "")
        package = _PACKAGES.get(str(missing).split(".")[0], str(missing))
        hint = " (or write mysql+pymysql://... for PyMySQL)" if package == "mysqlclient" else ""
        raise ValueError(f"storage {redact(url)!r} needs the Python package {package!r}: "
                         f"pip install '{package}'{hint}") from None
    except ValueError:
        raise
    except Exception as exc:  # connection refused, unknown database, ...
        raise ValueError(f"cannot open storage {redact(url)!r}: {scrub(str(exc).splitlines()[0], url)}") from None
