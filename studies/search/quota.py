"""A study's quota: exact totals of finished trials, kept by workers that coordinate only
through the storage.

A study needs work while its finished, running and waiting trials fall short of its total;
when several workers ask for the last slots at once, the trials numbered beyond the total
withdraw before training (:func:`is_surplus`). While a study has fewer complete trials
than its pruner needs to prune at all, only that many trials start (the scouts).
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from studies.sweep import FINISHED, outcome_of

__all__ = ["is_surplus", "live_counts", "needs_work", "scouting"]


def live_counts(study: optuna.Study) -> tuple[int, list[int], int]:
    """(finished, numbers of running trials, waiting) of a study."""
    finished, running, waiting = 0, [], 0
    for t in study.get_trials(deepcopy=False):
        o = outcome_of(t)
        if o in FINISHED:
            finished += 1
        elif o == "running":
            running.append(t.number)
        elif o == "waiting":
            waiting += 1
    return finished, running, waiting


def needs_work(study: optuna.Study, total: int) -> bool:
    finished, running, waiting = live_counts(study)
    return waiting > 0 or finished + len(running) < total


def scouting(study: optuna.Study, startup: int) -> int | None:
    """While a study has fewer complete trials than its pruner needs: how many more trials
    may start (its first ones, the scouts, minus those running); ``None`` once it has them."""
    complete = running = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.state == TrialState.COMPLETE:
            complete += 1
        else:
            running += 1
    if complete >= startup:
        return None
    return max(0, startup - complete - running)


def is_surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    finished, running, waiting = live_counts(study)
    excess = finished + len(running) + waiting - total
    return excess > 0 and trial.number in sorted(running)[-excess:]
