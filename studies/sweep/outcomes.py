"""A trial's outcome (complete, pruned, diverged, failed, ...) from what the storage holds."""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

__all__ = ["OUTCOMES", "FINISHED", "outcome_of"]

OUTCOMES = ("complete", "pruned", "diverged", "failed", "running", "waiting")
# Outcomes that count toward a study's total.
FINISHED = ("complete", "pruned", "diverged")


def outcome_of(trial: FrozenTrial) -> str | None:
    """The outcome, or ``None`` for a surplus trial that withdrew before training (it never ran)."""
    state = trial.state
    if state == TrialState.COMPLETE:
        return "complete"
    if state == TrialState.PRUNED:
        return "diverged" if trial.user_attrs.get("diverged") else "pruned"
    if state == TrialState.FAIL:
        return None if trial.user_attrs.get("surplus") else "failed"
    if state == TrialState.RUNNING:
        return "running"
    return "waiting"
