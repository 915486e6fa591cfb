"""A study's quota: exact totals of finished trials, kept by workers that coordinate only
through the storage.

A study needs work while its finished, running and waiting trials fall short of its total;
when several workers ask for the last slots at once, the trials numbered beyond the total
withdraw before training (:func:`is_surplus`). While a study has fewer complete trials
than its pruner needs to prune at all, only that many trials start (the scouts).

A worker's :class:`Limits` stop it short of the totals: the sweep's deadline (from the storage),
each trial's own limit, and the studies stopped on convergence.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from studies.sweep import FINISHED, outcome_of

__all__ = ["Limits", "is_surplus", "live_counts", "needs_work", "scouting"]


class Limits:
    """What stops a worker's trials short, as the worker knows it: the sweep's deadline (Unix
    time, refreshed from the storage), each trial's wall-clock limit, the studies (by index)
    stopped on convergence. Checking costs a clock read: it is done after every epoch."""

    def __init__(self, *, trial_budget: float | None = None, deadline: float | None = None) -> None:
        self.trial_budget, self.deadline = trial_budget, deadline
        self.stopped: set[int] = set()

    def expired(self, now: float | None = None) -> bool:
        """Whether the sweep's deadline passed: no trial starts any more."""
        return self.deadline is not None and (time.time() if now is None else now) >= self.deadline

    def cutter(self, study: int) -> Callable[[], str | None]:
        """For a trial of study ``study`` starting now: why it must stop, or ``None``."""
        started = time.time()

        def cut() -> str | None:
            now = time.time()
            if self.expired(now):
                return "budget"
            if self.trial_budget is not None and now - started >= self.trial_budget:
                return "trial_budget"
            return "stop" if study in self.stopped else None

        return cut


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
