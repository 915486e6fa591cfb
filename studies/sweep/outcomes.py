"""A trial's outcome (complete, pruned, diverged, cut, failed, ...) from what the storage holds.

A trial ``cut`` short by a time budget or by its study's stop on convergence is PRUNED for
Optuna (its samplers then see its last reported value, never a best one) and keeps the reason
in its user attribute ``cut``.
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

__all__ = ["OUTCOMES", "FINISHED", "outcome_of"]

OUTCOMES = ("complete", "pruned", "diverged", "cut", "failed", "running", "waiting")
# Outcomes that count toward a study's total.
FINISHED = ("complete", "pruned", "diverged", "cut")


def outcome_of(trial: FrozenTrial) -> str | None:
    """The outcome, or ``None`` for a surplus trial that withdrew before training (it never ran)."""
    state = trial.state
    if state == TrialState.COMPLETE:
        return "complete"
    if state == TrialState.PRUNED:
        if trial.user_attrs.get("diverged"):
            return "diverged"
        return "cut" if trial.user_attrs.get("cut") else "pruned"
    if state == TrialState.FAIL:
        return None if trial.user_attrs.get("surplus") else "failed"
    if state == TrialState.RUNNING:
        return "running"
    return "waiting"
