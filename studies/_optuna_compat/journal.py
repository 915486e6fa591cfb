"""Batched appends of Optuna's journal records."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages.journal._storage import JournalOperation

from studies._optuna_compat.writes import TrialWrites

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
                add(
                    Op.SET_TRIAL_PARAM,
                    trial_id=w.trial_id,
                    param_name=name,
                    param_value_internal=value,
                    distribution=distribution_to_json(dist),
                )
            for step, value in sorted(w.intermediate.items()):
                add(Op.SET_TRIAL_INTERMEDIATE_VALUE, trial_id=w.trial_id, step=step, intermediate_value=value)
            for key, value in w.user_attrs.items():
                add(Op.SET_TRIAL_USER_ATTR, trial_id=w.trial_id, user_attr={key: value})
            for key, value in w.system_attrs.items():
                add(Op.SET_TRIAL_SYSTEM_ATTR, trial_id=w.trial_id, system_attr={key: value})
            if w.state is not None:
                done = (w.datetime_complete or datetime.datetime.now()).astimezone(datetime.UTC)
                add(
                    Op.SET_TRIAL_STATE_VALUES,
                    trial_id=w.trial_id,
                    state=w.state,
                    values=None if w.values is None else [float(v) for v in w.values],
                    datetime_complete=done.isoformat(timespec="microseconds"),
                )
        if logs:
            storage._backend.append_logs(logs)
            storage._sync_with_backend()
    return dropped
