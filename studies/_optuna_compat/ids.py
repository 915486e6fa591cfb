"""The ids a storage knows studies and trials by, which Optuna's objects keep in private
attributes (its own storages read them the same way)."""

from __future__ import annotations

import optuna
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial

__all__ = ["FrozenStudy", "study_id", "study_storage", "trial_id"]


def trial_id(trial: FrozenTrial | optuna.Trial) -> int:
    """The storage's id of a trial (not its number)."""
    return trial._trial_id


def study_id(study: optuna.Study | FrozenStudy) -> int:
    """The storage's id of a study."""
    return study._study_id


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes."""
    return study._storage
