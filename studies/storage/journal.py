"""The journal file: Optuna's format, a kernel lock, fsyncs where they matter, and damage
reported or repaired instead of made worse.

A journal is one JSON record per line, appended under a lock. Two kinds of damage:

- a *torn tail*: the last record lacks its newline because the writer died during the
  write (a crash, ``kill -9`` or power loss at the wrong moment). Readers skip it (as
  Optuna's do), but Optuna's writer would append after it and glue the next record to
  it, making the file unreadable from then on. Here it is cut off, under the lock (so it
  is never a record still being written), with one :class:`JournalWarning` naming the file
  and the byte offset; every record before it is kept.
- a *corrupt record* (a complete line that is not JSON): reading stops with one
  ``ValueError`` naming the file, the line and the byte offset. Every process reads the
  whole file when it opens the storage, so nothing is appended after it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Generator
from typing import Any

import optuna
import optuna.storages.journal

from studies._optuna_compat import JournalOperation
from studies.errors import JournalWarning, SweepsError

__all__ = ["DURABLE_OPS", "FlockLock", "JournalWarning", "SweepJournalBackend"]

# Journal operations after which the file is fsync'ed: a study's creation and attributes, and
# every trial's end (SET_TRIAL_STATE_VALUES): a finished trial survives even a power loss.
DURABLE_OPS = frozenset(
    int(op)
    for op in (
        JournalOperation.CREATE_STUDY,
        JournalOperation.DELETE_STUDY,
        JournalOperation.SET_STUDY_USER_ATTR,
        JournalOperation.SET_TRIAL_STATE_VALUES,
        JournalOperation.DISCARD_TRIALS,
    )
)
_CHUNK = 1 << 16
# The keys Optuna's replay reads from each kind of record without a default: a record without
# them (or with another op_code) is not a journal record, and is reported as damage.
_RECORD_KEYS = {
    int(op): ("worker_id", *keys)
    for op, keys in (
        (JournalOperation.CREATE_STUDY, ("study_name", "directions")),
        (JournalOperation.DELETE_STUDY, ("study_id",)),
        (JournalOperation.SET_STUDY_USER_ATTR, ("study_id", "user_attr")),
        (JournalOperation.SET_STUDY_SYSTEM_ATTR, ("study_id", "system_attr")),
        (JournalOperation.CREATE_TRIAL, ("study_id", "datetime_start")),
        (JournalOperation.SET_TRIAL_PARAM, ("trial_id", "param_name", "param_value_internal", "distribution")),
        (JournalOperation.SET_TRIAL_STATE_VALUES, ("trial_id", "state", "values")),
        (JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE, ("trial_id", "step", "intermediate_value")),
        (JournalOperation.SET_TRIAL_USER_ATTR, ("trial_id", "user_attr")),
        (JournalOperation.SET_TRIAL_SYSTEM_ATTR, ("trial_id", "system_attr")),
    )
}
_RECORD_KEYS[int(JournalOperation.DISCARD_TRIALS)] = ()  # Rustuna's; Optuna's replay skips it, reading nothing


def _not_a_record(log: object) -> str | None:
    """Why ``log`` is not a journal record Optuna can replay, or ``None``."""
    if not isinstance(log, dict) or "op_code" not in log:
        return "not a journal record"
    op = log["op_code"]
    if isinstance(op, bool) or not isinstance(op, int) or op not in _RECORD_KEYS:
        return f"not a journal record (unknown op_code {op!r})"
    missing = [key for key in _RECORD_KEYS[op] if key not in log]
    if missing:
        return f"not a journal record (op_code {op} without {missing[0]!r})"
    return None


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


def _torn(fd: int) -> int | None:
    """The file's size if its last byte is not a newline (a torn tail), else ``None``."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        return size
    return None


def _after_last_newline(fd: int, size: int) -> int:
    """The offset just after the file's last newline (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        at = os.pread(fd, end - start, start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _damaged(path: str, line: int, offset: int, reason: str) -> ValueError:
    return SweepsError(
        f"journal {path!r} is damaged at line {line} (byte {offset}): {reason}. Nothing was written; keep a "
        f"copy of the file, then restore it from a backup or cut it before that line to resume from there."
    )


class SweepJournalBackend(optuna.storages.journal.JournalFileBackend):
    """Optuna's journal file, in the same format, fsync'ed only when it matters, and never
    made worse by a crash (see the module's docstring).

    Optuna fsyncs every record; a sweep writes dozens per trial (parameters, pruning
    reports, attributes), and the fsyncs cost more than the writes. Records are still
    written at once (a killed process loses nothing: the kernel keeps the pages); the file
    is forced to disk when a trial ends or a study changes.

    Every writer of the file must use this class (through ``studies.storage.opening.open_storage``):
    the torn-tail repair relies on all appends holding the same lock.
    """

    def __init__(self, file_path: str, lock_obj: optuna.storages.journal.JournalFileOpenLock | None = None) -> None:
        lock = lock_obj if lock_obj is not None else optuna.storages.journal.JournalFileSymlinkLock(file_path)
        super().__init__(file_path, lock)
        # Our own names for the path and lock (the base class keeps them in private attributes).
        self.path, self.lock = file_path, lock
        self._cursor = (0, 0)  # (records read, byte offset after them)
        self._repair_at_open()

    def _repair_at_open(self) -> None:
        with open(self.path, "rb") as f:
            size = _torn(f.fileno())
        if size is None:
            return
        try:
            self.lock.acquire()
        except OSError as exc:  # a read-only folder: readers skip the tail anyway
            warnings.warn(
                f"journal {self.path!r}: its last record, from byte {size}, is cut off and skipped "
                f"(it can't be repaired here: {exc.strerror}).",
                JournalWarning,
                stacklevel=3,
            )
            return
        try:
            with open(self.path, "rb+") as f:
                self._cut_torn_tail(f.fileno())
        finally:
            self.lock.release()

    def _cut_torn_tail(self, fd: int) -> None:
        """Under the lock: cut a last record that lacks its newline (its writer died mid-write)."""
        size = _torn(fd)
        if size is None:
            return
        end = _after_last_newline(fd, size)
        os.ftruncate(fd, end)
        os.fsync(fd)
        warnings.warn(
            f"journal {self.path!r}: its last record was cut off by a crash (at byte {end}); removed its "
            f"{size - end} byte(s), every record before it is kept.",
            JournalWarning,
            stacklevel=4,
        )

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        number, offset = self._cursor if self._cursor[0] <= log_number_from else (0, 0)
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # what others append while we read waits for the next call
            f.seek(offset)
            for line in f:
                end = offset + len(line)
                if end > size or not line.endswith(b"\n"):
                    break  # being written, or torn: not a record (yet)
                log = None
                if number >= log_number_from:
                    try:
                        log = json.loads(line)
                    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                        raise _damaged(self.path, number + 1, offset, getattr(exc, "msg", str(exc))) from None
                    reason = _not_a_record(log)
                    if reason is not None:
                        raise _damaged(self.path, number + 1, offset, reason)
                number, offset = number + 1, end
                self._cursor = (number, offset)
                if log is not None:
                    yield log

    def append_logs(self, logs: list[dict]) -> None:
        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        self.lock.acquire()
        try:
            with open(self.path, "ab+") as f:
                self._cut_torn_tail(f.fileno())
                f.write(text.encode("utf-8"))
                f.flush()
                if any(log.get("op_code") in DURABLE_OPS for log in logs):
                    os.fsync(f.fileno())
        finally:
            self.lock.release()
