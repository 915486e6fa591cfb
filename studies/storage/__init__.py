"""Where a sweep is kept: opening any Optuna storage (journal file, SQLite, PostgreSQL,
MySQL, Redis) with a clear error, the batched adaptor the workers and writers read and write
through, the journal file's lock and repair, leases between processes, and passwords kept out
of every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.errors import JournalWarning
    from studies.storage.adaptor import StorageError, SweepStorage
    from studies.storage.causes import plain_cause, storage_errors
    from studies.storage.lease import Lease
    from studies.storage.opening import open_storage
    from studies.storage.redaction import redact, scrub
    from studies.storage.urls import DEFAULT_STORAGE, storage_file, storage_kind

__all__ = [
    "DEFAULT_STORAGE",
    "JournalWarning",
    "Lease",
    "StorageError",
    "SweepStorage",
    "open_storage",
    "plain_cause",
    "redact",
    "scrub",
    "storage_errors",
    "storage_file",
    "storage_kind",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
