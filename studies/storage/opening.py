"""Opening the Optuna storage that holds a sweep, and keeping its URL's password out of sight."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import optuna
import optuna.storages.journal

from studies.errors import ParameterError, SweepsError
from studies.storage.causes import plain_cause, storage_failure
from studies.storage.journal import FlockLock, JournalWarning, SweepJournalBackend
from studies.storage.redaction import redact, scrub
from studies.storage.urls import DEFAULT_STORAGE, storage_file, storage_kind

__all__ = [
    "DEFAULT_STORAGE",
    "FlockLock",
    "JournalWarning",
    "SweepJournalBackend",
    "open_storage",
    "redact",
    "scrub",
    "storage_file",
    "storage_kind",
]

# Missing module -> the package that brings it.
_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "redis": "redis",
    "mariadb": "mariadb",
}


def _journal_lock(path: str) -> optuna.storages.journal.JournalFileOpenLock | None:
    try:
        import fcntl  # noqa: F401 - POSIX only
    except ImportError:  # pragma: no cover - Windows: Optuna's default lock
        return None
    # One lock per file, whatever path names it (a symbolic link, another spelling): the
    # torn-tail repair relies on every appender holding the same lock.
    return FlockLock(os.path.realpath(path))


# Any fixed 64-bit number, the same in every process: PostgreSQL's advisory lock key for
# "Optuna's tables are being created".
_SCHEMA_LOCK_KEY = 0x5357_4545_5053  # "SWEEPS"


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold a database-wide lock while Optuna creates (or checks) its tables.

    RDBStorage creates its tables when they are missing; two processes doing it at once on
    a fresh PostgreSQL database collide (``UniqueViolation ... pg_type_typname_nsp_index``).
    On PostgreSQL they queue on an advisory lock instead (released with the connection).
    """
    if not url.split("://", 1)[0].startswith("postgresql"):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = 30,
    max_retry: int = 2,
    checked: bool = False,
) -> optuna.storages.BaseStorage:
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
            path = url[len("file://") :] if url.startswith("file://") else url
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise ParameterError("storage", f": the folder of {path!r} does not exist.")
            if os.path.exists(path) and not os.path.isfile(path):  # /dev/zero would be read for ever
                raise ParameterError("storage", f": {path!r} is not a journal file (a folder, a device or a pipe).")
            backend = SweepJournalBackend(path, lock_obj=_journal_lock(path))
            return optuna.storages.JournalStorage(backend)
        if kind == "redis":
            with warnings.catch_warnings():  # "JournalRedisBackend is experimental": two lines on every command
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.JournalStorage(optuna.storages.journal.JournalRedisBackend(url))
        callback = None
        if heartbeat_interval:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        with warnings.catch_warnings(), contextlib.nullcontext() if checked else _schema_lock(url):
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval or None,
                grace_period=grace_period if heartbeat_interval else None,
                heartbeat_stale_trial_callback=callback,
                engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
                skip_compatibility_check=checked,
                skip_table_creation=checked,
            )
    except ImportError as exc:
        missing = exc.name or getattr(exc.__cause__, "name", None) or ("redis" if kind == "redis" else "")
        package = _PACKAGES.get(str(missing).split(".")[0], str(missing))
        hint = " (or write mysql+pymysql://... for PyMySQL)" if package == "mysqlclient" else ""
        raise SweepsError(
            f"storage {redact(url)!r} needs the Python package {package!r}: pip install '{package}'{hint}"
        ) from None
    except ValueError as exc:
        if kind == "journal" or isinstance(exc, ParameterError):  # already names the file or parameter
            raise
        # a URL its driver can't parse (e.g. an unescaped password: "invalid literal for int()")
        raise SweepsError(f"cannot open storage {redact(url)!r}: {scrub(str(exc).splitlines()[0], url)}") from None
    except OSError as exc:  # a journal's lock file on a read-only or full disk, ...
        raise SweepsError(storage_failure(url, exc, doing="open")) from None
    except Exception as exc:  # connection refused, unknown database, read-only, ...
        cause, todo = plain_cause(exc, url)
        raise SweepsError(f"cannot open storage {redact(url)!r}: {cause}" + (f"; {todo}." if todo else "")) from None
