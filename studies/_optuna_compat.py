"""Every use of Optuna's private names, in one place.

Optuna's public storage API writes one value per call, and on an RDB each call is a
transaction (a few round trips). A stack of K trials reporting every epoch would make K
transactions per epoch. The functions here write what the public calls would write, but
many at once: one transaction (RDB) or one append (journal) for a whole flush. They use
Optuna's own models, stored representations and record format, so that what they store is
what Optuna's public calls store (tests/studies/test_optuna_compat.py checks it against
Optuna itself, and fails loudly when a name here changes upstream).

The sampler side (studies/samplers.py) is here too: TPE's one sampling step, run with more
candidates for a batch of trials; the vectorized log Phi of TPE's truncated normal; the
percentile pruner's helpers. Each is checked against Optuna's own behaviour by the same tests.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages.journal._storage import JournalOperation
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "JournalOperation",
    "TPESamplerHooks",
    "TrialWrites",
    "journal_worker_id",
    "journal_write",
    "optuna_log_ndtr",
    "percentile_at_step",
    "percentile_best_so_far",
    "percentile_first_in_interval",
    "preload_rdb",
    "rdb_create_trials",
    "rdb_probe_states",
    "rdb_read_trials",
    "rdb_record_heartbeats",
    "rdb_write",
    "set_tpe_search_space_group",
    "supports_bulk",
    "tpe_candidates",
    "tpe_search_space_group",
    "vectorized_log_ndtr",
]


@dataclass
class TrialWrites:
    """What a flush writes for one trial (of this process): each field what the public calls
    ``set_trial_param``, ``set_trial_intermediate_value``, ``set_trial_user_attr``,
    ``set_trial_system_attr`` and ``set_trial_state_values`` would have written."""

    trial_id: int
    params: list[tuple[str, float, BaseDistribution]] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    updated_keys: set[str] = field(default_factory=set)  # attrs written before: update, not insert
    state: TrialState | None = None  # a finished state, or None (the trial keeps running)
    values: Sequence[float] | None = None
    datetime_complete: datetime.datetime | None = None

    def empty(self) -> bool:
        return not (self.params or self.intermediate or self.user_attrs or self.system_attrs or self.state)


def supports_bulk(storage: optuna.storages.BaseStorage) -> str | None:
    """``"rdb"`` or ``"journal"`` when the storage can take a flush at once, else ``None``."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return "rdb"
    if isinstance(storage, optuna.storages.JournalStorage):
        return "journal"
    return None


# -- RDB ---------------------------------------------------------------------------------------

def _models():
    from optuna.storages._rdb import models

    return models


def preload_rdb() -> None:
    """Import what opening an RDB storage imports (Optuna's models, alembic), ahead of time."""
    _models()
    import alembic.migration  # noqa: F401
    import alembic.script  # noqa: F401


@contextmanager
def _session(storage: optuna.storages.RDBStorage, *, durable: bool = True) -> Iterator[Any]:
    """Optuna's own transaction scope: commit on success, rollback (and Optuna's errors) on failure.

    ``durable=False`` (PostgreSQL): the commit does not wait for the write-ahead log to reach
    the disk. The records are written and visible at once, and a crash of a worker loses
    nothing; only a crash of the database server itself may lose the last fraction of a
    second of them, as a power loss does the journal's records between two fsyncs. A trial's
    end is always written durably.
    """
    import sqlalchemy
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        if not durable and storage.engine.dialect.name == "postgresql":
            session.execute(sqlalchemy.text("SET LOCAL synchronous_commit TO OFF"))
        yield session


def _utc(dt: datetime.datetime) -> datetime.datetime:
    """What ``TrialModel.datetime_*`` setters store: naive UTC from naive local time."""
    return dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def rdb_read_trials(storage: optuna.storages.RDBStorage, study_id: int, *, include: set[int],
                    after: int | None) -> list[FrozenTrial]:
    """The trials whose id is in ``include`` or greater than ``after`` (``after=None``: exactly
    ``include``), as Optuna's cached storage reads them to stay current."""
    return storage._get_trials(study_id, None, set(include), _NO_MORE if after is None else after)


_NO_MORE = 2**31 - 1  # a trial id above every other (INTEGER columns): "no trial beyond those included"


def rdb_probe_states(storage: optuna.storages.RDBStorage, study_id: int, *, include: set[int],
                     after: int) -> dict[int, tuple[TrialState, int]]:
    """Id -> (state, number) of the trials whose id is in ``include`` or greater than
    ``after``: one small query, to learn which trials changed before reading them whole."""
    import sqlalchemy

    T = _models().TrialModel
    where = T.trial_id > after
    if include:
        where = sqlalchemy.or_(where, T.trial_id.in_(sorted(include)))
    with _session(storage) as session:
        rows = session.query(T.trial_id, T.state, T.number).filter(T.study_id == study_id, where).all()
    return {trial_id: (state, number) for trial_id, state, number in rows}


def rdb_create_trials(storage: optuna.storages.RDBStorage, study_id: int, n: int, *,
                      user_attrs: dict[str, Any] | None = None) -> list[FrozenTrial]:
    """Create ``n`` RUNNING trials in one transaction, as ``create_new_trial`` does each (under
    the study's row lock that numbers them), with ``user_attrs`` and, when the storage has a
    heartbeat, a first heartbeat: no trial is ever RUNNING without one. Returns them."""
    import sqlalchemy

    models = _models()
    attrs = dict(user_attrs or {})
    now = datetime.datetime.now()
    with _session(storage, durable=False) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        rows = [models.TrialModel(study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=now)
                for _ in range(n)]
        session.add_all(rows)
        session.flush()
        rows.sort(key=lambda r: r.trial_id)
        first = rows[0].count_past_trials(session)
        extra: list[Any] = []
        beat = session.execute(sqlalchemy.func.now()).scalar() if storage.heartbeat_interval else None
        for i, row in enumerate(rows):
            row.number = first + i
            extra += [models.TrialUserAttributeModel(trial_id=row.trial_id, key=k, value_json=json.dumps(v))
                      for k, v in attrs.items()]
            if beat is not None:
                extra.append(models.TrialHeartbeatModel(trial_id=row.trial_id, heartbeat=beat))
        session.add_all(extra)
        out = [FrozenTrial(number=r.number, state=TrialState.RUNNING, value=None, values=None,
                           datetime_start=now, datetime_complete=None, params={}, distributions={},
                           user_attrs=dict(attrs), system_attrs={}, intermediate_values={}, trial_id=r.trial_id)
               for r in rows]
    return out


def rdb_record_heartbeats(storage: optuna.storages.RDBStorage, trial_ids: Iterable[int]) -> None:
    """``record_heartbeat`` for several trials in one transaction (the database's clock)."""
    import sqlalchemy

    ids = sorted(set(trial_ids))
    if not ids:
        return
    models = _models()
    H = models.TrialHeartbeatModel
    with _session(storage, durable=False) as session:
        now = session.execute(sqlalchemy.func.now()).scalar()
        have = {row.trial_id: row for row in session.query(H).filter(H.trial_id.in_(ids)).with_for_update()}
        for trial_id in ids:
            if trial_id in have:
                have[trial_id].heartbeat = now
            else:
                session.add(H(trial_id=trial_id, heartbeat=now))


def rdb_write(storage: optuna.storages.RDBStorage, writes: Sequence[TrialWrites]) -> set[int]:
    """Write every trial's pending writes in one transaction; returns the ids of trials that
    were no longer RUNNING (finished by another process: their writes are dropped, as
    Optuna's own calls would refuse them)."""
    import sqlalchemy

    writes = [w for w in writes if not w.empty()]
    if not writes:
        return set()
    models = _models()
    T = models.TrialModel
    ids = [w.trial_id for w in writes]
    with _session(storage, durable=any(w.state is not None for w in writes)) as session:
        states = dict(session.query(T.trial_id, T.state).filter(T.trial_id.in_(ids)).with_for_update())
        dropped = {i for i in ids if states.get(i) != TrialState.RUNNING}
        live = [w for w in writes if w.trial_id not in dropped]
        inserts: dict[Any, list[dict[str, Any]]] = {}

        def insert(model: Any, **row: Any) -> None:
            inserts.setdefault(model, []).append(row)

        for w in live:
            for name, value, dist in w.params:
                insert(models.TrialParamModel, trial_id=w.trial_id, param_name=name, param_value=value,
                       distribution_json=distribution_to_json(dist))
            for step, value in sorted(w.intermediate.items()):
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                insert(models.TrialIntermediateValueModel, trial_id=w.trial_id, step=step,
                       intermediate_value=stored, intermediate_value_type=kind)
            for cls, attrs in ((models.TrialUserAttributeModel, w.user_attrs),
                               (models.TrialSystemAttributeModel, w.system_attrs)):
                for key, value in attrs.items():
                    if key in w.updated_keys:
                        session.query(cls).filter(cls.trial_id == w.trial_id, cls.key == key).update(
                            {cls.value_json: json.dumps(value)}, synchronize_session=False)
                    else:
                        insert(cls, trial_id=w.trial_id, key=key, value_json=json.dumps(value))
            for objective, value in enumerate(w.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(float(value))
                insert(models.TrialValueModel, trial_id=w.trial_id, objective=objective, value=stored,
                       value_type=kind)
        for model, rows in inserts.items():  # one multi-row INSERT per table
            session.execute(sqlalchemy.insert(model), rows)
        finishing = [w for w in live if w.state is not None]
        if finishing:  # one UPDATE, a row of parameters per trial
            session.execute(sqlalchemy.update(T), [
                {"trial_id": w.trial_id, "state": w.state,
                 "_datetime_complete_utc": _utc(w.datetime_complete or datetime.datetime.now())}
                for w in finishing])
    return dropped


# -- Journal -----------------------------------------------------------------------------------

def journal_worker_id(storage: optuna.storages.JournalStorage) -> str:
    """The id this process's journal records carry (replays raise only for their own records)."""
    return storage._replay_result.worker_id


def journal_write(storage: optuna.storages.JournalStorage, writes: Sequence[TrialWrites]) -> set[int]:
    """Append every trial's pending writes as one batch of Optuna's journal records, in the
    order the public calls would write them; returns the ids of trials that were already
    finished (their records are not written)."""
    Op = JournalOperation
    writes = [w for w in writes if not w.empty()]
    if not writes:
        return set()
    with storage._thread_lock:
        storage._sync_with_backend()
        dropped = set()
        for w in writes:
            try:
                if storage._replay_result.get_trial(w.trial_id).state.is_finished():
                    dropped.add(w.trial_id)
            except KeyError:
                dropped.add(w.trial_id)
        worker = journal_worker_id(storage)
        logs: list[dict[str, Any]] = []

        def add(op: int, **fields: Any) -> None:
            logs.append({"op_code": op, "worker_id": worker, **fields})

        for w in writes:
            if w.trial_id in dropped:
                continue
            for name, value, dist in w.params:
                add(Op.SET_TRIAL_PARAM, trial_id=w.trial_id, param_name=name, param_value_internal=value,
                    distribution=distribution_to_json(dist))
            for step, value in sorted(w.intermediate.items()):
                add(Op.SET_TRIAL_INTERMEDIATE_VALUE, trial_id=w.trial_id, step=step, intermediate_value=value)
            for key, value in w.user_attrs.items():
                add(Op.SET_TRIAL_USER_ATTR, trial_id=w.trial_id, user_attr={key: value})
            for key, value in w.system_attrs.items():
                add(Op.SET_TRIAL_SYSTEM_ATTR, trial_id=w.trial_id, system_attr={key: value})
            if w.state is not None:
                done = (w.datetime_complete or datetime.datetime.now()).astimezone(datetime.timezone.utc)
                add(Op.SET_TRIAL_STATE_VALUES, trial_id=w.trial_id, state=w.state,
                    values=None if w.values is None else [float(v) for v in w.values],
                    datetime_complete=done.isoformat(timespec="microseconds"))
        if logs:
            storage._backend.append_logs(logs)
            storage._sync_with_backend()
    return dropped


# -- TPE: one fit, many candidates (studies/samplers.py's BatchTPESampler) ------------------------
#
# Optuna has no public way to fit TPE's model once and draw candidates for several trials.
# Rather than re-implement ``TPESampler._sample`` (which trials act as constant liars, the
# split into below/above, the Parzen estimators, the random draws), these run Optuna's own,
# asking it for more candidates and keeping them all: what it decides is always the installed
# Optuna's. Every private name they touch is checked by tests/studies/test_optuna_compat.py,
# and a change that slips past the tests still fails here at once (never silently).

_tpe_lock = threading.RLock()


class TPESamplerHooks(optuna.samplers.TPESampler):
    """Optuna's TPE, whose one sampling step can be replaced by a subclass.

    ``TPESampler._sample`` is the step both ``sample_relative`` (per parameter group) and
    ``sample_independent`` go through: fit the below/above densities, draw
    ``n_ei_candidates`` from the below one, return the best. :meth:`sample_space` is that
    step; by default it is Optuna's.
    """

    def sample_space(self, study: optuna.Study, trial: FrozenTrial,
                     search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """Parameters for ``trial`` in ``search_space`` (external representation): Optuna's step."""
        return optuna.samplers.TPESampler._sample(self, study, trial, search_space)

    def _sample(self, study: optuna.Study, trial: FrozenTrial,
                search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.sample_space(study, trial, search_space)


def tpe_candidates(sampler: optuna.samplers.TPESampler, study: optuna.Study, trial: FrozenTrial,
                   search_space: dict[str, BaseDistribution], *,
                   sets: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``sets`` times ``n_ei_candidates`` candidates from one fit of Optuna's TPE, with their
    acquisition values (internal representation, in the order drawn).

    Optuna's own ``_sample`` step for ``trial`` (the same trials and liars, split, densities and
    random draws), asked for ``sets`` times as many candidates; with ``sets=1``, the best of
    them is exactly what ``TPESampler`` samples. Not reentrant for one sampler (nor is
    Optuna's TPE, which keeps the last search space group on the sampler).
    """
    n = sampler._n_ei_candidates * sets
    captured: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    upstream = type(sampler)._compute_acquisition_func  # the class's (a subclass may refine it)

    def capture(samples: dict[str, np.ndarray], mpe_below: Any, mpe_above: Any) -> np.ndarray:
        acquisition = upstream(sampler, samples, mpe_below, mpe_above)
        captured.append((samples, acquisition))
        return acquisition

    with _tpe_lock:
        saved = sampler._n_ei_candidates
        sampler._n_ei_candidates = n
        sampler._compute_acquisition_func = capture  # type: ignore[method-assign]
        try:
            optuna.samplers.TPESampler._sample(sampler, study, trial, search_space)
        finally:
            del sampler._compute_acquisition_func
            sampler._n_ei_candidates = saved
    if len(captured) != 1 or np.shape(captured[0][1]) != (n,):
        raise RuntimeError(
            f"optuna {optuna.__version__}: TPESampler._sample no longer draws its n_ei_candidates and scores them "
            f"with _compute_acquisition_func once; studies/_optuna_compat.py must follow it.")
    return captured[0]


def tpe_search_space_group(sampler: optuna.samplers.TPESampler) -> Any:
    """The parameter groups ``infer_relative_search_space`` left on the sampler (``group=True``)
    for ``sample_relative`` to iterate."""
    return sampler._search_space_group


def set_tpe_search_space_group(sampler: optuna.samplers.TPESampler, group: Any) -> None:
    """Put back the groups of a remembered ``infer_relative_search_space``."""
    sampler._search_space_group = group


# -- TPE's truncated normal: a vectorized log Phi ---------------------------------------------------

_ndtr_lock = threading.Lock()
_ndtr_depth = 0
_ndtr_original: Any = None


@contextmanager
def vectorized_log_ndtr() -> Iterator[None]:
    """Inside, TPE's truncated normal uses scipy's ``log_ndtr``.

    Optuna's ``_truncnorm._log_ndtr`` evaluates log Phi element by element in Python
    (``np.frompyfunc``); it is called for every kernel and candidate, and ~20 times per
    sample by the Newton iterations of the inverse CDF: most of TPE's time once candidates
    number in the hundreds. scipy's is the same function vectorized (equal to 1e-7, more
    accurate in the far tail). Module-wide while any thread is inside (reentrant, counted
    under a lock); Optuna's own is back when the last one leaves. docs/upstream.md has the gain.
    """
    global _ndtr_depth, _ndtr_original
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    with _ndtr_lock:
        if _ndtr_depth == 0:
            _ndtr_original = _truncnorm._log_ndtr
            _truncnorm._log_ndtr = log_ndtr
        _ndtr_depth += 1
    try:
        yield
    finally:
        with _ndtr_lock:
            _ndtr_depth -= 1
            if _ndtr_depth == 0:
                _truncnorm._log_ndtr = _ndtr_original
                _ndtr_original = None


def optuna_log_ndtr(x: np.ndarray) -> np.ndarray:
    """Optuna's own log Phi (outside :func:`vectorized_log_ndtr`): the reference it must equal."""
    from optuna.samplers._tpe import _truncnorm

    with _ndtr_lock:
        f = _ndtr_original if _ndtr_depth else _truncnorm._log_ndtr
    return f(x)


# -- The percentile (and median) pruner's helpers ---------------------------------------------------
#
# studies/samplers.py's _PercentilePruner decides as Optuna's PercentilePruner.prune, with
# Optuna's own helpers, and remembers a step's percentile across the trials of a stack.

def percentile_first_in_interval(step: int, steps: Iterable[int], *, n_warmup_steps: int,
                                 interval_steps: int) -> bool:
    """Whether ``step`` is the first reported step of its pruning interval."""
    from optuna.pruners._percentile import _is_first_in_interval_step

    return _is_first_in_interval_step(step, steps, n_warmup_steps, interval_steps)


def percentile_best_so_far(trial: FrozenTrial, direction: optuna.study.StudyDirection) -> float:
    """The trial's best intermediate value over its steps (NaN if it has only NaN)."""
    from optuna.pruners._percentile import _get_best_intermediate_result_over_steps

    return float(_get_best_intermediate_result_over_steps(trial, direction))


def percentile_at_step(completed: list[FrozenTrial], direction: optuna.study.StudyDirection, step: int, *,
                       percentile: float, n_min_trials: int) -> float:
    """The ``percentile`` (from the best side) of the complete trials' values at ``step``; NaN
    when fewer than ``n_min_trials`` reported it."""
    from optuna.pruners._percentile import _get_percentile_intermediate_result_over_trials

    return _get_percentile_intermediate_result_over_trials(completed, direction, step, percentile, n_min_trials)
