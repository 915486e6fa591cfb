"""A validated sweep, as the search floor needs it (the ``sweeps`` package builds it from a file)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from studies.errors import SweepsError
from studies.storage import redact
from studies.sweep.constraints import Constraint
from studies.sweep.curves import ALL, DEFAULT_CURVE_POINTS
from studies.sweep.objectives import OBJECTIVES, Direction, directions_of
from studies.sweep.space import INT_SETTINGS, Choice, Range, SearchSpace, Subsets
from studies.sweep.stopping import Stop, format_duration, parse_duration

__all__ = [
    "DatasetRef",
    "PluginSpec",
    "SweepConfig",
    "StackShape",
    "WarmStart",
    "Stop",
    "OBJECTIVES",
    "DEFAULT_STACK",
    "RESUMABLE",
    "ALL",
    "DEFAULT_CURVE_POINTS",
]

# Trials a worker keeps training at once as one stack (see benchmarks/stacked_trials.py).
DEFAULT_STACK = 8


@dataclass(frozen=True)
class DatasetRef:
    """A dataset of the sweep: a built-in name or a file path, with loader options."""

    source: str
    name: str
    options: tuple[tuple[str, object], ...] = ()
    # The data's signature (engine.Dataset.signature) at the sweep's seed, when the sweep file's
    # validation loaded it: the studies check it without loading the data again.
    signature: dict[str, object] | None = field(default=None, compare=False, hash=False, repr=False)
    # What the validation found, in words (rows, feature columns, label, task), for 'sweep run --check'.
    described: str = field(default="", compare=False, hash=False, repr=False)

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


# Keys a resumed sweep may change: its totals and parallelism, its warm start (which only
# decides what a study's first trials are, once; see studies.search.warming), and what MLflow
# shows of it (runs already written keep their points); its time budgets and its stop on
# convergence (a study already stopped stays stopped).
RESUMABLE = ("trials", "jobs", "stack", "batch", "warm_start", "mlflow", "budget", "trial_budget", "stop")
# ("batch": the old name of "stack")


@dataclass(frozen=True)
class WarmStart:
    """Start each study from the best configurations of another sweep's study of its dataset.

    Attributes:
        sweep: the other sweep's name.
        top: how many of its best distinct configurations to enqueue per study.
        storage: the other sweep's storage (a journal path or URL); ``None``: this sweep's.
    """

    sweep: str
    top: int = 5
    storage: str | None = None

    def to_dict(self, *, redacted: bool = False) -> dict[str, object]:
        d: dict[str, object] = {"sweep": self.sweep, "top": self.top}
        if self.storage is not None:
            d["storage"] = redact(self.storage) if redacted else self.storage
        return d


@dataclass(frozen=True)
class StackShape:
    """The shape of every stack the sweep's workers train (``stack_shape`` in the sweep file):
    hidden widths per layer and input columns, at least what the search space needs. Unset, a
    stack is as wide as the space's widest network; set, a trial of another sweep, trained in a
    stack of this shape, is trained again bit for bit (``sweep best`` writes it)."""

    widths: tuple[int, ...]
    inputs: int

    def to_dict(self) -> dict[str, object]:
        return {"widths": list(self.widths), "inputs": self.inputs}


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs; stored in each study so that any worker can rebuild it."""

    name: str
    datasets: tuple[DatasetRef, ...]
    space: SearchSpace
    trials: int = 40
    jobs: int = 0  # 0: all cores
    seed: int = 0
    objective: str | tuple[str, ...] = "val_cost"  # one name, or several (a multi-objective study)
    sampler: PluginSpec = field(default_factory=lambda: PluginSpec("tpe"))
    pruner: PluginSpec = field(default_factory=lambda: PluginSpec("median"))
    report_every: int = 1
    divergence_factor: float = 100.0
    stack: int = DEFAULT_STACK  # trials a worker keeps training at once as one stack (see studies.search.pool)
    warm_start: WarmStart | None = None
    curve_points: int | str = DEFAULT_CURVE_POINTS  # points per curve in MLflow, or "all" (studies.sweep.curves)
    stack_shape: StackShape | None = None  # every stack's widths and inputs; None: the space's widest
    repeats: int = 1  # seeds per configuration, trained as members of one stack (studies.sweep.constraints)
    constraints: tuple[Constraint, ...] = ()  # bounds a feasible trial meets (studies.sweep.constraints)
    budget: float | None = None  # wall-clock seconds for the whole sweep from each run's start (sweep.stopping)
    trial_budget: float | None = None  # seconds of wall clock per trial
    stop: Stop | None = None  # stop each study on convergence

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objectives' names: one, or several for a multi-objective sweep."""
        return (self.objective,) if isinstance(self.objective, str) else tuple(self.objective)

    @property
    def multi(self) -> bool:
        """Whether the sweep has several objectives (its studies keep a Pareto front)."""
        return len(self.objectives) > 1

    @property
    def direction(self) -> str:
        """The single objective's Optuna direction (see :attr:`directions` for several)."""
        if self.multi:
            raise SweepsError(f"sweep {self.name!r} has several objectives {list(self.objectives)}; use 'directions'.")
        return OBJECTIVES[self.objectives[0]].direction

    @property
    def directions(self) -> list[Direction]:
        """One Optuna direction per objective."""
        return directions_of(self.objectives)

    def study_name(self, dataset: DatasetRef) -> str:
        return f"{self.name}/{dataset.name}"

    def to_dict(self, *, redacted: bool = False) -> dict[str, object]:
        """The sweep file's content, normalized; ``sweeps.spec`` reads it back. ``redacted``:
        without the password of a warm start's storage URL (what the storage keeps)."""
        d: dict[str, object] = {
            "name": self.name,
            "datasets": [ds.to_dict() for ds in self.datasets],
            "trials": self.trials,
            "jobs": self.jobs,
            "seed": self.seed,
            "objective": self.objective if isinstance(self.objective, str) else list(self.objective),
            "report_every": self.report_every,
            "divergence_factor": self.divergence_factor,
            "stack": self.stack,
            **self.space.to_dict(),
            "sampler": self.sampler.to_dict(),
            "pruner": self.pruner.to_dict(),
            "mlflow": {"curve_points": self.curve_points},
        }
        if not d["jobs"]:
            del d["jobs"]
        if self.warm_start is not None:
            d["warm_start"] = self.warm_start.to_dict(redacted=redacted)
        if self.stack_shape is not None:
            d["stack_shape"] = self.stack_shape.to_dict()
        # Written only when used: the identity of sweeps stored before these keys is unchanged.
        if self.repeats != 1:
            d["repeats"] = self.repeats
        if self.constraints:
            d["constraints"] = {c.name: c.to_dict() for c in self.constraints}
        for key in ("budget", "trial_budget"):
            if getattr(self, key) is not None:
                d[key] = format_duration(getattr(self, key))
        if self.stop is not None:
            d["stop"] = self.stop.to_dict()
        return d

    def to_json(self) -> str:
        """What each study keeps (a warm start's storage password left out)."""
        return json.dumps(self.to_dict(redacted=True), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepConfig:
        """The inverse of :meth:`to_dict`, for a sweep read back from the storage (already valid;
        a file from a user goes through ``sweeps.spec`` instead)."""
        refs = []
        for entry in d["datasets"]:
            source = entry if isinstance(entry, str) else entry["name"]
            options = () if isinstance(entry, str) else tuple(sorted((k, v) for k, v in entry.items() if k != "name"))
            from engine import dataset_name

            refs.append(DatasetRef(source=source, name=dataset_name(source), options=options))
        searched: dict[str, Range | Choice | Subsets] = {}
        for key, value in dict(d.get("search", {})).items():
            if key == "features":
                searched[key] = Subsets(tuple(value["subsets"]))
            elif isinstance(value, list):
                searched[key] = Choice(tuple(value))
            else:
                searched[key] = Range(
                    low=value["low"],
                    high=value["high"],
                    log=value.get("log", False),
                    step=value.get("step"),
                    integer=key in INT_SETTINGS,
                )

        def plugin(v: dict) -> PluginSpec:
            return PluginSpec(v["name"], tuple(sorted((k, x) for k, x in v.items() if k != "name")))

        return cls(
            name=d["name"],
            datasets=tuple(refs),
            space=SearchSpace(fixed=dict(d.get("train", {})), searched=searched),
            trials=int(d.get("trials", 40)),
            jobs=int(d.get("jobs", 0)),
            seed=int(d.get("seed", 0)),
            objective=_objective(d.get("objective", "val_cost")),
            sampler=plugin(d.get("sampler", {"name": "tpe"})),
            pruner=plugin(d.get("pruner", {"name": "median"})),
            report_every=int(d.get("report_every", 1)),
            divergence_factor=float(d.get("divergence_factor", 100.0)),
            stack=int(d.get("stack", d.get("batch", DEFAULT_STACK))),  # "batch": stored before its rename
            warm_start=None if d.get("warm_start") is None else WarmStart(**d["warm_start"]),
            curve_points=_curve_points(dict(d.get("mlflow") or {}).get("curve_points", DEFAULT_CURVE_POINTS)),
            stack_shape=_stack_shape(d.get("stack_shape")),
            repeats=int(d.get("repeats", 1)),
            constraints=tuple(
                Constraint(name, low=b.get("min"), high=b.get("max"))
                for name, b in sorted(dict(d.get("constraints") or {}).items())
            ),
            budget=None if d.get("budget") is None else parse_duration("budget", d["budget"]),
            trial_budget=None if d.get("trial_budget") is None else parse_duration("trial_budget", d["trial_budget"]),
            stop=None if d.get("stop") is None else Stop(int(d["stop"]["patience"]), float(d["stop"]["min_delta"])),
        )

    def identity(self) -> dict[str, object]:
        """What must not change when a sweep is resumed (the :data:`RESUMABLE` keys may)."""
        return self.identity_of(self.to_dict(redacted=True))

    @staticmethod
    def identity_of(stored: dict[str, object]) -> dict[str, object]:
        """The identity of a sweep as the storage keeps it (:meth:`to_json`'s content)."""
        return {k: v for k, v in stored.items() if k not in RESUMABLE}


def _curve_points(value: int | str) -> int | str:
    """A stored ``mlflow.curve_points``: a number of points, or ``"all"``."""
    return ALL if value == ALL else int(value)


def _objective(value: str | list[str]) -> str | tuple[str, ...]:
    """A stored objective: a name, or a list of names (several objectives)."""
    return value if isinstance(value, str) else tuple(value)


def _stack_shape(value: object) -> StackShape | None:
    """A stored ``stack_shape``, or ``None``."""
    if not isinstance(value, dict):
        return None
    return StackShape(widths=tuple(int(w) for w in value["widths"]), inputs=int(value["inputs"]))
