"""A validated sweep, as the search floor needs it (the ``sweeps`` package builds it from a file)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from studies.space import SearchSpace

__all__ = ["DatasetRef", "PluginSpec", "SweepConfig", "OBJECTIVES"]

# Objective name -> Optuna direction.
OBJECTIVES: dict[str, str] = {"val_accuracy": "maximize", "val_cost": "minimize"}


@dataclass(frozen=True)
class DatasetRef:
    """A dataset of the sweep: a built-in name or a file path, with loader options."""

    source: str
    name: str
    options: tuple[tuple[str, object], ...] = ()

    def load(self, *, seed: int):
        from engine import load_dataset

        return load_dataset(self.source, seed=seed, **dict(self.options))

    def to_dict(self) -> dict[str, object] | str:
        if not self.options:
            return self.source
        return {"name": self.source, **dict(self.options)}


@dataclass(frozen=True)
class PluginSpec:
    """A sampler or pruner: its name in the table and its options."""

    name: str
    options: tuple[tuple[str, object], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, **dict(self.options)}


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs; stored in each study so that any worker can rebuild it."""

    name: str
    datasets: tuple[DatasetRef, ...]
    space: SearchSpace
    trials: int = 40
    jobs: int = 0  # 0: all cores
    seed: int = 0
    objective: str = "val_cost"
    sampler: PluginSpec = field(default_factory=lambda: PluginSpec("tpe"))
    pruner: PluginSpec = field(default_factory=lambda: PluginSpec("median"))
    report_every: int = 1
    divergence_factor: float = 100.0

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    def study_name(self, dataset: DatasetRef) -> str:
        return f"{self.name}/{dataset.name}"

    def to_dict(self) -> dict[str, object]:
        """The sweep file's content, normalized; ``sweeps.spec`` reads it back."""
        d: dict[str, object] = {
            "name": self.name,
            "datasets": [ds.to_dict() for ds in self.datasets],
            "trials": self.trials,
            "jobs": self.jobs,
            "seed": self.seed,
            "objective": self.objective,
            "report_every": self.report_every,
            "divergence_factor": self.divergence_factor,
            **self.space.to_dict(),
            "sampler": self.sampler.to_dict(),
            "pruner": self.pruner.to_dict(),
        }
        if not d["jobs"]:
            del d["jobs"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def identity(self) -> dict[str, object]:
        """What must not change when a sweep is resumed (trials and jobs may)."""
        d = self.to_dict()
        d.pop("trials", None)
        d.pop("jobs", None)
        return d
