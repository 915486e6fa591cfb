"""A process's view of the Optuna storage: the trials it runs kept in memory and written in
batches, the other trials read incrementally.

Optuna's ask-and-tell writes every parameter, pruning report and attribute of a trial as
it happens; on PostgreSQL each is a transaction, and each pruning decision re-reads every
unfinished trial of the study. :class:`SweepStorage` sits between Optuna and the storage
(it is an ``optuna.storages.BaseStorage``, so studies, trials, samplers and pruners use it
unchanged):

- **Trials of this process** (created through it) live in memory while they run. Their
  parameters, reports, attributes and final state are queued and written by :meth:`flush`:
  one transaction (RDB) or one append (journal) for every trial at once. The caller
  flushes after sampling a batch (so that other workers see the new trials' parameters),
  after each stack step in which trials ended, and every few seconds while trials run.
- **Other trials** come from a snapshot, refreshed incrementally (only unfinished and new
  trials are read again) when it is older than ``refresh_seconds`` or on demand
  (:meth:`refresh`). Finished trials never change, so the cost of a refresh does not grow
  with the study.

What Optuna's pruners and samplers decide is unchanged: they see exactly the trials a
direct storage would show, except that other processes' progress arrives up to
``refresh_seconds`` late (as it would from a slower network), and this process's own
trials at once.

Durability: a trial's creation is written at once (with its worker's identity, also when it
takes an enqueued trial, and on an RDB its first heartbeat), its final state together with
everything it recorded. A process
killed in between loses only its running trials' queued records; those trials stay
RUNNING and are failed and retried like any trial of a dead worker.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import threading
import time
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.exceptions import UpdateFinishedTrialError
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from studies import _optuna_compat as compat
from studies.errors import SweepsError
from studies.storage.snapshot import Snapshot

__all__ = ["SweepStorage", "FlushResult", "StorageError"]


class StorageError(SweepsError):
    """The storage cannot be written or read (a read-only or full disk, a database away):
    one line naming the storage and what to do. Nothing that finished is lost."""


_ALL = None


@dataclass
class _Owned:
    """A trial this process created and has not yet written as finished."""

    study_id: int
    trial: FrozenTrial
    pending: compat.TrialWrites
    written_keys: set[str] = field(default_factory=set)  # attribute keys already in the storage


@dataclass(frozen=True)
class FlushResult:
    """What a flush wrote: trials finished, and trials dropped (another process had already
    finished them, e.g. failed after a stale heartbeat; their records were not written)."""

    finished: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()


def _copy(trial: FrozenTrial) -> FrozenTrial:
    """A copy whose dicts the caller may change (values inside are shared, never mutated)."""
    t = copy.copy(trial)
    t.params, t.distributions = dict(trial.params), dict(trial.distributions)
    t.user_attrs, t.system_attrs = dict(trial.user_attrs), dict(trial.system_attrs)
    t.intermediate_values = dict(trial.intermediate_values)
    return t


class SweepStorage(optuna.storages.BaseStorage):
    """Batched writes for this process's trials, incremental reads for the others.

    Args:
        backend: the storage (``RDBStorage``, ``JournalStorage`` or any other BaseStorage).
        refresh_seconds: how old the snapshot of other processes' trials may get before a
            read refreshes it.
        identity: user attributes every trial of this process is created with (its
            worker's host and process), written in the creation's own record.
        clock: seconds, for the snapshot's age (tests pass their own).
        guard: a context manager entered around every write to the backend (a worker defers
            stop signals there, so that no record is cut in the middle).
        name: the storage as messages name it (a path, or a URL without its password).
        read_unfinished: read other processes' unfinished trials whole (their parameters,
            reports); ``False`` for a view that only counts them (progress, MLflow): on an RDB
            it then reads each trial whole once, when it has finished.

    Raises:
        StorageError: from any method, when the backend cannot be read or written.
    """

    def __init__(
        self,
        backend: optuna.storages.BaseStorage,
        *,
        refresh_seconds: float = 1.0,
        identity: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        name: str = "",
        read_unfinished: bool = True,
    ) -> None:
        self.backend = backend
        self.read_unfinished = read_unfinished
        self._guard = guard
        self.name = name or type(backend).__name__
        self.refresh_seconds = float(refresh_seconds)
        self.identity = dict(identity or {})
        self._clock = clock
        self._kind = compat.supports_bulk(backend)
        self._owned: dict[int, _Owned] = {}
        self._reserved: dict[int, list[int]] = {}  # study -> trials created ahead for the next asks
        self._views: dict[int, Snapshot] = {}
        self._directions: dict[int, list[StudyDirection]] = {}
        self._names: dict[int, str] = {}
        self._lock = threading.RLock()
        # Time spent in the backend, by kind ("first_read": a study's first, full read).
        self.stats = {
            "flushes": 0,
            "refreshes": 0,
            "created": 0,
            "flush_seconds": 0.0,
            "refresh_seconds": 0.0,
            "create_seconds": 0.0,
            "first_read_seconds": 0.0,
        }

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        """A call to the backend: guarded, and its I/O or database failure made one clear error."""
        with self._guard():
            try:
                yield
            except (OSError, optuna.exceptions.StorageInternalError) as exc:
                raise self._error(exc) from exc
            except Exception as exc:
                if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "pymysql", "MySQLdb", "redis")):
                    raise self._error(exc) from exc
                raise

    def _error(self, exc: BaseException) -> StorageError:
        from studies.storage.causes import plain_cause

        cause, todo = plain_cause(exc)
        todo = todo or "make it writable and reachable (free space, permissions, the database server)"
        return StorageError(
            f"cannot use the storage {self.name} ({cause}); {todo}, then run the same command again "
            f"to resume: nothing that finished is lost."
        )

    # -- studies: written and read through -----------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        return self.backend.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        with self._call():
            self.backend.delete_study(study_id)
        self._views.pop(study_id, None)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        with self._call():
            self.backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        with self._call():
            self.backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        with self._call():
            return self.backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        if study_id not in self._names:
            self._names[study_id] = self.backend.get_study_name_from_id(study_id)
        return self._names[study_id]

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        if study_id not in self._directions:
            self._directions[study_id] = self.backend.get_study_directions(study_id)
        return self._directions[study_id]

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        with self._call():
            return self.backend.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        with self._call():
            return self.backend.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[compat.FrozenStudy]:
        with self._call():
            return self.backend.get_all_studies()

    # -- trials: creation ----------------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is not None:  # an enqueued or added trial: another's to run, written now
            with self._call():
                trial_id = self.backend.create_new_trial(study_id, template_trial)
            self._stale(study_id)
            return trial_id
        reserved = self._reserved.get(study_id)
        if reserved:
            return reserved.pop(0)
        return self.create_trials(study_id, 1)[0]

    def reserve(self, study_id: int, n: int) -> None:
        """Create the trials of the next ``n`` asks of the study now, in one transaction: each
        ``study.ask()`` that creates a trial takes the next one. :meth:`release` gives back
        what no ask took."""
        if n > 0:
            self._reserved.setdefault(study_id, []).extend(self.create_trials(study_id, n))

    def release(self, study_id: int) -> list[int]:
        """The reserved trials no ask took (they are RUNNING: the caller withdraws them)."""
        return self._reserved.pop(study_id, [])

    def create_trials(self, study_id: int, n: int) -> list[int]:
        """Create ``n`` RUNNING trials of this process (one transaction on an RDB, with their
        first heartbeat); returns their ids."""
        t0 = time.perf_counter()
        with self._lock, self._call():
            if isinstance(self.backend, optuna.storages.RDBStorage):  # self._kind == "rdb"
                trials = compat.rdb_create_trials(self.backend, study_id, n, user_attrs=self.identity)
            else:
                now = datetime.datetime.now()
                template = FrozenTrial(
                    number=-1,
                    state=TrialState.RUNNING,
                    value=None,
                    values=None,
                    datetime_start=now,
                    datetime_complete=None,
                    params={},
                    distributions={},
                    user_attrs=dict(self.identity),
                    system_attrs={},
                    intermediate_values={},
                    trial_id=-1,
                )
                ids = [self.backend.create_new_trial(study_id, template) for _ in range(n)]
                trials = [self.backend.get_trial(i) for i in ids]
            for t in trials:
                self._owned[compat.trial_id(t)] = _Owned(
                    study_id,
                    _copy(t),
                    compat.TrialWrites(compat.trial_id(t)),
                    written_keys=set(t.user_attrs) | set(t.system_attrs),
                )
            self.stats["created"] += n
            self.stats["create_seconds"] += time.perf_counter() - t0
            return [compat.trial_id(t) for t in trials]

    def owns(self, trial_id: int) -> bool:
        return trial_id in self._owned

    def owned(self) -> list[int]:
        """Ids of this process's trials not yet written as finished (any thread may ask)."""
        with self._lock:
            return list(self._owned)

    # -- trials: writes ------------------------------------------------------------------------

    def _mine(self, trial_id: int) -> _Owned | None:
        own = self._owned.get(trial_id)
        if own is not None and own.trial.state.is_finished():
            raise UpdateFinishedTrialError(f"Trial#{own.trial.number} has already finished and can not be updated.")
        return own

    def set_trial_param(
        self, trial_id: int, param_name: str, param_value_internal: float, distribution: BaseDistribution
    ) -> None:
        with self._lock:
            own = self._mine(trial_id)
            if own is None:
                with self._call():
                    self.backend.set_trial_param(trial_id, param_name, param_value_internal, distribution)
                return
            view = self._view(own.study_id)
            known = view.distributions.get(param_name)
            if known is not None:
                check_distribution_compatibility(known, distribution)
            else:
                view.distributions[param_name] = distribution
            t = own.trial
            t.params = {**t.params, param_name: distribution.to_external_repr(param_value_internal)}
            t.distributions = {**t.distributions, param_name: distribution}
            own.pending.params.append((param_name, param_value_internal, distribution))

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        with self._lock:
            own = self._mine(trial_id)
            if own is None:
                with self._call():
                    self.backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
                return
            own.trial.intermediate_values = {**own.trial.intermediate_values, step: intermediate_value}
            own.pending.intermediate[step] = intermediate_value

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=False)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=True)

    def _set_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        with self._lock:
            own = self._mine(trial_id)
            if own is None:
                setter = self.backend.set_trial_system_attr if system else self.backend.set_trial_user_attr
                with self._call():
                    setter(trial_id, key, value)
                return
            t = own.trial
            if system:
                t.system_attrs = {**t.system_attrs, key: value}
                own.pending.system_attrs[key] = value
            else:
                t.user_attrs = {**t.user_attrs, key: value}
                own.pending.user_attrs[key] = value
            if key in own.written_keys:
                own.pending.updated_keys.add(key)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        with self._lock:
            own = self._mine(trial_id)
            if own is None:
                with self._call():
                    ok = self.backend.set_trial_state_values(trial_id, state, values)
                study_id = self._study_of(trial_id)
                if study_id is not None:
                    self._stale(study_id)
                if ok and state == TrialState.RUNNING:  # popped an enqueued trial: now ours
                    # Its worker's identity at once, as a created trial has it: a process stopped
                    # before its next flush leaves a trial whose launcher sees its worker gone.
                    with self._call():
                        for key, value in self.identity.items():
                            self.backend.set_trial_user_attr(trial_id, key, value)
                        t = self.backend.get_trial(trial_id)
                    study_id = study_id if study_id is not None else self._find_study(trial_id)
                    self._owned[trial_id] = _Owned(
                        study_id,
                        _copy(t),
                        compat.TrialWrites(trial_id),
                        written_keys=set(t.user_attrs) | set(t.system_attrs),
                    )
                    view = self._view(study_id)
                    view.trials.pop(trial_id, None)
                    view.unfinished.discard(trial_id)
                    view.changed()
                return ok
            if not state.is_finished():
                return False
            t = own.trial
            t.state = state
            t.values = None if values is None else [float(v) for v in values]
            t.datetime_complete = datetime.datetime.now()
            own.pending.state, own.pending.values = state, t.values
            own.pending.datetime_complete = t.datetime_complete
            return True

    # -- flushing ------------------------------------------------------------------------------

    def pending(self) -> bool:
        """Whether any write of this process's trials waits for a flush."""
        return any(not own.pending.empty() for own in self._owned.values())

    def flush(self) -> FlushResult:
        """Write every queued record of this process's trials: one transaction (RDB) or one
        append (journal). Finished trials join the snapshot; trials that another process
        finished meanwhile are dropped (and returned)."""
        with self._lock:
            owned = [own for own in self._owned.values() if not own.pending.empty()]
            if not owned:
                return FlushResult()
            t0 = time.perf_counter()
            writes = [own.pending for own in owned]
            with self._call():
                if isinstance(self.backend, optuna.storages.RDBStorage):  # self._kind == "rdb"
                    dropped = compat.rdb_write(self.backend, writes)
                elif isinstance(self.backend, optuna.storages.JournalStorage):  # self._kind == "journal"
                    dropped = compat.journal_write(self.backend, writes)
                else:
                    dropped = self._write_one_by_one(writes)
            finished, lost = [], []
            for own in owned:
                trial_id = compat.trial_id(own.trial)
                if trial_id in dropped:
                    del self._owned[trial_id]
                    self._stale(own.study_id)
                    self._view(own.study_id).unfinished.add(trial_id)  # read its end from the storage
                    lost.append(trial_id)
                    continue
                w = own.pending
                own.written_keys |= set(w.user_attrs) | set(w.system_attrs)
                own.pending = compat.TrialWrites(trial_id)
                if w.state is not None:
                    del self._owned[trial_id]
                    self._view(own.study_id).add_finished(own.trial)
                    finished.append(trial_id)
            self.stats["flushes"] += 1
            self.stats["flush_seconds"] += time.perf_counter() - t0
            return FlushResult(tuple(finished), tuple(lost))

    def _write_one_by_one(self, writes: list[compat.TrialWrites]) -> set[int]:
        """Any other storage: its public calls, one record each."""
        dropped: set[int] = set()
        b = self.backend
        for w in writes:
            try:
                for name, value, dist in w.params:
                    b.set_trial_param(w.trial_id, name, value, dist)
                for step, value in sorted(w.intermediate.items()):
                    b.set_trial_intermediate_value(w.trial_id, step, value)
                for key, value in w.user_attrs.items():
                    b.set_trial_user_attr(w.trial_id, key, value)
                for key, value in w.system_attrs.items():
                    b.set_trial_system_attr(w.trial_id, key, value)
                if w.state is not None:
                    b.set_trial_state_values(w.trial_id, w.state, w.values)
            except UpdateFinishedTrialError:
                dropped.add(w.trial_id)
        return dropped

    # -- reads ---------------------------------------------------------------------------------

    def _view(self, study_id: int) -> Snapshot:
        view = self._views.get(study_id)
        if view is None:
            view = self._views[study_id] = Snapshot()
        return view

    def _stale(self, study_id: int) -> None:
        self._view(study_id).read_at = -1e18

    def _study_of(self, trial_id: int) -> int | None:
        own = self._owned.get(trial_id)
        if own is not None:
            return own.study_id
        for study_id, view in self._views.items():
            if trial_id in view.trials:
                return study_id
        return None

    def _find_study(self, trial_id: int) -> int:
        number = self.backend.get_trial(trial_id).number
        for study in self.backend.get_all_studies():
            try:
                if self.backend.get_trial_id_from_study_id_trial_number(compat.study_id(study), number) == trial_id:
                    return compat.study_id(study)
            except KeyError:
                continue
        raise KeyError(f"trial {trial_id} belongs to no study")

    def refresh(self, study_id: int, *, force: bool = True) -> None:
        """Read other processes' new and unfinished trials of the study now (``force``), or
        only if the snapshot is older than ``refresh_seconds``."""
        with self._lock:
            view = self._view(study_id)
            now = self._clock()
            if not force and now - view.read_at < self.refresh_seconds:
                return
            t0 = time.perf_counter()
            first = view.empty
            with self._call():
                fresh, top = view.read(
                    self.backend, study_id, kind=self._kind, skip=self._owned, whole_unfinished=self.read_unfinished
                )
            view.apply(fresh, top, kind=self._kind, skip=self._owned)
            view.read_at = now
            self.stats["refreshes"] += 1
            self.stats["first_read_seconds" if first and fresh else "refresh_seconds"] += time.perf_counter() - t0

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        with self._lock:
            self.refresh(study_id, force=False)
            view = self._view(study_id)
            others = view.select(states, self._owned)
            mine = [
                own.trial
                for own in self._owned.values()
                if own.study_id == study_id and (states is None or own.trial.state in states)
            ]
            if mine:
                trials = sorted(others + mine, key=lambda t: t.number)
            else:
                trials = others
            return copy.deepcopy(trials) if deepcopy else list(trials)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            own = self._owned.get(trial_id)
            if own is not None:
                return _copy(own.trial)
            for view in self._views.values():
                t = view.trials.get(trial_id)
                if t is not None and t.state.is_finished():
                    return t
        with self._call():
            return self.backend.get_trial(trial_id)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        with self._lock:
            tid = self._view(study_id).by_number.get(trial_number)
            if tid is not None:
                return tid
            for own in self._owned.values():
                if own.study_id == study_id and own.trial.number == trial_number:
                    return compat.trial_id(own.trial)
        return self.backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def remove_session(self) -> None:
        self.backend.remove_session()
