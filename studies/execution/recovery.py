"""Making a study consistent again after an interrupt or a crash, before more trials run."""

from __future__ import annotations

import datetime

import optuna
from optuna.trial import TrialState

from studies import _optuna_compat as compat
from studies.execution.processes import process_alive
from studies.sweep import outcome_of

__all__ = ["MAX_RETRIES", "fail_orphans", "requeue", "requeue_failed", "recover"]

MAX_RETRIES = 2


def requeue(study: optuna.Study, failed: optuna.trial.FrozenTrial) -> bool:
    """Enqueue a failed trial's parameters again (up to MAX_RETRIES times); True if enqueued."""
    retries = int(failed.user_attrs.get("retry", 0))
    if retries >= MAX_RETRIES or not failed.params:
        return False
    study.enqueue_trial(dict(failed.params), user_attrs={"retry_of": failed.number, "retry": retries + 1})
    return True


def fail_orphans(study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker process on this host is gone; returns how many.

    The journal storage has no heartbeat, so each trial records its worker's host, pid and
    start time. Trials of other hosts are left to the RDB heartbeat (or their own worker).
    """
    storage = compat.study_storage(study)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker is None:
            # Asked but never started: its process died between ask and the first record.
            # Only safe to fail when it is old (a live worker writes "worker" at once).
            age = datetime.datetime.now() - (t.datetime_start or datetime.datetime.now())
            if age.total_seconds() < 60:
                continue
        elif process_alive(worker) is not False:
            continue
        try:
            storage.set_trial_user_attr(compat.trial_id(t), "error", "worker process gone")
            storage.set_trial_state_values(compat.trial_id(t), TrialState.FAIL)
            n += 1
        except RuntimeError:  # finished meanwhile
            pass
    return n


def requeue_failed(study: optuna.Study) -> int:
    """Enqueue the parameters of each failed trial that has no retry yet; returns how many."""
    trials = study.get_trials(deepcopy=False)
    # Ours (user attr retry_of) and Optuna's heartbeat retries (system attr failed_trial).
    retried = {t.user_attrs.get("retry_of") for t in trials}
    retried |= {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    n = 0
    for t in trials:
        if outcome_of(t) == "failed" and t.number not in retried:
            n += requeue(study, t)
    return n


def recover(study: optuna.Study) -> tuple[int, int]:
    """Fail orphaned trials, then requeue what failed: ``(failed_now, requeued)``."""
    return fail_orphans(study), requeue_failed(study)
