"""One sweep, one data: each study records its dataset's signature (content hash, shapes,
split) when it is created, and a ``sweep run`` or ``sweep worker`` whose copy of the data
differs (another ``data.csv`` on another host, a file edited since) refuses before any
trial is asked, instead of silently feeding the study other data.
"""

from __future__ import annotations

from collections.abc import Iterable

import optuna

from studies.errors import SweepsError
from studies.sweep.config import SweepConfig

__all__ = ["DATA_ATTR", "check_data", "data_signatures"]

DATA_ATTR = "data"  # the study user attribute holding its dataset's signature


def data_signatures(config: SweepConfig) -> dict[str, dict[str, object]]:
    """Each dataset's signature (``engine.Dataset.signature``), by dataset name: the one the sweep
    file's validation computed (:attr:`DatasetRef.signature`), else the dataset loaded now."""
    return {
        ref.name: ref.signature if ref.signature is not None else ref.load(seed=config.seed).signature
        for ref in config.datasets
    }


def _difference(here: dict[str, object], stored: dict[str, object]) -> str:
    for what, key in (("task", "task"), ("features", "features"), ("train/validation/test rows", "rows")):
        if here.get(key) != stored.get(key):
            return f"{what} {here.get(key)} here, {stored.get(key)} in the storage"
    return (
        f"the same shapes, other values: sha256 {str(here.get('sha256'))[:12]} here, "
        f"{str(stored.get('sha256'))[:12]} in the storage"
    )


def check_data(
    storage: optuna.storages.BaseStorage,
    config: SweepConfig,
    study_ids: Iterable[tuple[str, int]],
    here: dict[str, dict[str, object]],
) -> None:
    """Raise ``ValueError`` naming the first dataset whose data differ from what its study
    (``(dataset name, study id)``) recorded; a study without a record (older sweeps) passes."""
    for name, study_id in study_ids:
        stored = storage.get_study_user_attrs(study_id).get(DATA_ATTR)
        if isinstance(stored, dict) and name in here and stored != here[name]:
            raise SweepsError(
                f"dataset {name!r} is not the data sweep {config.name!r} was started with "
                f"({_difference(here[name], stored)}); give every host the same file, or start a new sweep "
                f"under another 'name'."
            )
