"""A storage's failure in plain words: what went wrong, and what to do about it.

Drivers word the same trouble many ways (an ``OSError``'s errno, SQLite's "attempt to write a
readonly database", PostgreSQL's "cannot execute INSERT in a read-only transaction", MySQL's
"--read-only option", Optuna's "exceeding max length" around any of them). The first cause
that matches, looked for through the whole chain of exceptions, names it; anything else is
quoted (its first line, passwords hidden).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

import optuna

from studies.errors import SweepsError
from studies.storage.adaptor import StorageError
from studies.storage.redaction import redact, scrub

__all__ = ["plain_cause", "storage_failure", "storage_errors"]

_DRIVERS = ("sqlalchemy", "sqlite3", "psycopg", "pymysql", "MySQLdb", "redis")

# (errno, words in a message) -> (the cause, what to do), the first match wins.
_CAUSES: tuple[tuple[int | None, tuple[str, ...], str, str], ...] = (
    (
        errno.ENOSPC,
        ("no space left", "database or disk is full", "disk full", "could not extend file"),
        "the disk is full",
        "free some space",
    ),
    (errno.EDQUOT, ("quota exceeded",), "the disk quota is used up", "free some space or raise the quota"),
    (
        errno.EROFS,
        ("read-only file system",),
        "it is on a read-only file system",
        "remount it writable or choose another --storage",
    ),
    (
        None,
        ("read-only transaction", "read_only_sql_transaction"),
        "the database is read-only (default_transaction_read_only, or a standby server)",
        "make it writable (ALTER DATABASE ... SET default_transaction_read_only = off) or choose another --storage",
    ),
    (
        None,
        ("--read-only option", "--super-read-only option"),
        "the database server runs read-only (--read-only)",
        "make it writable (SET GLOBAL read_only = OFF) or choose another --storage",
    ),
    (
        None,
        ("attempt to write a readonly database", "readonly database"),
        "the database file, or its folder, is read-only",
        "make both writable or choose another --storage",
    ),
    (
        None,
        ("unable to open database file",),
        "SQLite can't open or create the file (its folder missing, read-only or not permitted)",
        "check that its folder exists and is writable, or choose another --storage",
    ),
    (
        errno.EACCES,
        ("permission denied",),
        "permission denied",
        "make it writable for this user or choose another --storage",
    ),
    (
        errno.EPERM,
        ("operation not permitted",),
        "the operation is not permitted (the file may be immutable: lsattr shows it)",
        "make it writable or choose another --storage",
    ),
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (``__cause__``, ``__context__``, SQLAlchemy's ``orig``)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
    return seen


def plain_cause(exc: BaseException, url: str | None = None) -> tuple[str, str | None]:
    """(the cause in plain words, what to do or ``None`` when the cause is not known).

    Example:
        >>> plain_cause(OSError(28, "No space left on device"))
        ('the disk is full', 'free some space')
    """
    chain = _chain(exc)
    codes = {e.errno for e in chain if isinstance(e, OSError)}
    text = " ".join(str(e) for e in chain).lower()
    for code, words, cause, todo in _CAUSES:
        if (code is not None and code in codes) or any(w in text for w in words):
            return cause, todo
    first = next((e for e in reversed(chain) if str(e).strip()), exc)
    line = scrub((str(first).strip().splitlines() or [type(first).__name__])[0][:300], url)
    return f"{type(first).__name__}: {line}", None


def storage_failure(url: str, exc: BaseException, *, doing: str = "write") -> str:
    """One line: the storage (password masked), the cause in plain words, and what to do."""
    cause, todo = plain_cause(exc, url)
    todo = todo or "make it writable and reachable (free space, permissions, the database server)"
    return (
        f"cannot {doing} the storage {redact(url)!r}: {cause}; {todo}, then run the same command again "
        f"(nothing that finished is lost)."
    )


@contextlib.contextmanager
def storage_errors(url: str, *, doing: str = "write") -> Iterator[None]:
    """Turn a storage's I/O or database failure inside the block into one :class:`StorageError`
    line (:func:`storage_failure`); the library's own errors and anything else pass through."""
    try:
        yield
    except SweepsError:
        raise
    except (OSError, optuna.exceptions.StorageInternalError) as exc:
        raise StorageError(storage_failure(url, exc, doing=doing)) from None
    except Exception as exc:
        if type(exc).__module__.startswith(_DRIVERS):
            raise StorageError(storage_failure(url, exc, doing=doing)) from None
        raise
