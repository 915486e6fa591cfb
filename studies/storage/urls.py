"""What a storage URL names, without opening it (nothing here imports Optuna): its kind and the
local file it keeps its records in."""

from __future__ import annotations

from studies.errors import ParameterError
from studies.storage.redaction import redact

__all__ = ["DEFAULT_STORAGE", "storage_file", "storage_kind"]

# A journal file in the working directory: safe for several processes on one machine
# (Optuna advises against SQLite there).
DEFAULT_STORAGE = "sweeps.journal"

_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


def storage_kind(url: str) -> str:
    """``journal``, ``rdb`` or ``redis``."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in _RDB_SCHEMES:
        return "rdb"
    if scheme in ("", "file"):
        return "journal"
    raise ParameterError(
        "storage",
        f" must be a journal file path or a URL with a scheme in "
        f"{sorted(('file', 'redis', 'rediss', *_RDB_SCHEMES))}, but got {redact(url)!r}.",
    )


def storage_file(url: str) -> str | None:
    """The local file a storage keeps its records in: a journal's path (``file://`` or plain)
    or an SQLite database's; ``None`` for a server (or SQLite in memory). Opening either
    creates the file, so looking for a sweep checks it exists first.

    Example:
        >>> storage_file("file:///tmp/s.journal"), storage_file("sqlite:///x.db?timeout=5")
        ('/tmp/s.journal', 'x.db')
    """
    if storage_kind(url) == "journal":
        return url[len("file://") :] if url.startswith("file://") else url
    if url.lower().startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        return path if path and path != ":memory:" else None
    return None
