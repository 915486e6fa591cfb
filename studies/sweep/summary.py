"""What a sweep has done so far, read from the storage alone."""

from __future__ import annotations

import functools
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from studies import _optuna_compat as compat
from studies.errors import SweepsError
from studies.sweep.config import SweepConfig
from studies.sweep.constraints import feasible
from studies.sweep.objectives import Direction
from studies.sweep.outcomes import FINISHED, OUTCOMES, outcome_of
from studies.sweep.pareto import pareto_front

__all__ = [
    "FrontTrial",
    "StudySummary",
    "SweepStudy",
    "check_same_sweep",
    "find_sweep",
    "last_accuracy",
    "require_sweep",
    "summarize",
    "summarize_study",
]

T = TypeVar("T")


@dataclass(frozen=True)
class SweepStudy:
    """One study of a sweep, as the storage lists it: ``config`` is the sweep as stored (the
    sweep file's content, normalized), :attr:`sweep` the same as a :class:`SweepConfig`."""

    name: str
    dataset: str
    study_id: int
    direction: str  # with several objectives, their directions joined: "minimize, minimize"
    total: int
    config: dict[str, object]
    index: int = 0
    directions: tuple[Direction, ...] = ()
    budget: dict[str, Any] | None = (
        None  # the sweep's time budget as the storage keeps it (JSON: studies.sweep.stopping)
    )
    stopped: dict[str, object] | None = None  # the study's stop on convergence: which trial, when

    @functools.cached_property
    def sweep(self) -> SweepConfig:
        return SweepConfig.from_dict(self.config)

    @property
    def objectives(self) -> tuple[str, ...]:
        """The objectives' names, as the sweep file gave them."""
        objective = self.config.get("objective", "val_cost")
        return (objective,) if isinstance(objective, str) else tuple(objective)  # type: ignore[arg-type]  # a list of names

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


@dataclass(frozen=True)
class FrontTrial:
    """A trial on a study's Pareto front: its number, values (one per objective) and parameters."""

    number: int
    values: tuple[float, ...]
    params: dict[str, object]


@dataclass(frozen=True)
class StudySummary:
    """Counts by outcome and the best trial of one study; with several objectives, the Pareto
    front (``front``, by trial number) instead of a best trial."""

    study: str
    dataset: str
    total: int
    direction: str
    counts: dict[str, int] = field(default_factory=dict)
    best_value: float | None = None
    best_trial: int | None = None
    best_params: dict[str, object] = field(default_factory=dict)
    objectives: tuple[str, ...] = ()
    directions: tuple[Direction, ...] = ()
    front: tuple[FrontTrial, ...] | None = None  # None: one objective
    best_accuracy: float | None = None  # classification: the best trial's last validation accuracy
    infeasible: int | None = None  # finished trials that broke the sweep's constraints (None: no constraints)
    best_std: tuple[float, ...] | None = None  # the best trial's values' std over its seeds (``repeats``)
    budget: dict[str, Any] | None = None  # the sweep's time budget (JSON): seconds, deadline (Unix time), set
    stopped: dict[str, object] | None = None  # stopped on convergence: trial, at, patience, min_delta
    cuts: dict[str, int] = field(default_factory=dict)  # trials cut short, by why (studies.sweep.CUTS)

    @property
    def finished(self) -> int:
        return sum(self.counts.get(o, 0) for o in FINISHED)

    def done(self, now: float | None = None) -> bool:
        """Whether the study asks for no more trials: its total reached, stopped on convergence,
        or the sweep's deadline passed."""
        deadline = None if self.budget is None else self.budget.get("deadline")
        expired = isinstance(deadline, (int, float)) and (time.time() if now is None else now) >= deadline
        return self.finished >= self.total or self.stopped is not None or expired

    def _limits(self) -> dict[str, object]:
        pairs = (("budget", self.budget), ("stopped", self.stopped), ("cuts", self.cuts or None))
        return {k: v for k, v in pairs if v is not None}

    @property
    def multi(self) -> bool:
        return self.front is not None

    def best_of(self, objective: str) -> FrontTrial | None:
        """The front's trial best in ``objective`` (the lowest number among equals); every
        objective's best value among the complete trials is on the front."""
        if not self.front:
            return None
        i = self.objectives.index(objective)
        sign = -1.0 if self.directions[i] == "maximize" else 1.0
        return min(self.front, key=lambda f: (sign * f.values[i], f.number))

    def to_dict(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.infeasible is not None:
            extra["infeasible"] = self.infeasible
        if self.best_std is not None:
            extra["best_std"] = list(self.best_std)
        return {**self._to_dict(), **extra}

    def _to_dict(self) -> dict[str, object]:
        if self.front is None:
            return {
                "study": self.study,
                "dataset": self.dataset,
                "total": self.total,
                "finished": self.finished,
                "direction": self.direction,
                "counts": self.counts,
                "best_value": self.best_value,
                "best_trial": self.best_trial,
                "best_params": self.best_params,
                **({} if self.best_accuracy is None else {"best_val_accuracy": self.best_accuracy}),
                **self._limits(),
            }
        best = {}
        for name in self.objectives:
            f = self.best_of(name)
            best[name] = None if f is None else {"trial": f.number, "value": f.values[self.objectives.index(name)]}
        return {
            "study": self.study,
            "dataset": self.dataset,
            "total": self.total,
            "finished": self.finished,
            "objectives": list(self.objectives),
            "directions": list(self.directions),
            "counts": self.counts,
            "front": [
                {"trial": f.number, "values": dict(zip(self.objectives, f.values)), "params": f.params}
                for f in self.front
            ],
            "best": best,
            **self._limits(),
        }


def find_sweep(storage: optuna.storages.BaseStorage, name: str) -> list[SweepStudy]:
    """The studies of sweep ``name``, in the sweep file's dataset order; ``[]`` if none."""
    found = []
    for s in storage.get_all_studies():
        raw = s.user_attrs.get("sweep")
        if not s.study_name.startswith(f"{name}/") or raw is None:
            continue
        config = _attr(
            s,
            "sweep",
            raw,
            lambda v: json.loads(v) if isinstance(v, str) else None,
            dict,
            "the sweep file as JSON text",
        )
        if config.get("name") != name:
            continue
        directions: tuple[Direction, ...] = tuple(
            "maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in s.directions
        )
        direction = ", ".join(directions)
        dataset = _attr(s, "dataset", s.user_attrs.get("dataset", s.study_name[len(name) + 1 :]), None, str, "a name")
        total = _attr(s, "trials", s.user_attrs.get("trials", config.get("trials", 0)), None, int, "an integer")
        index = _attr(s, "index", s.user_attrs.get("index", 0), None, int, "an integer")
        budget, stopped = (v if isinstance(v := s.user_attrs.get(k), dict) else None for k in ("budget", "stopped"))
        found.append(
            SweepStudy(
                s.study_name, dataset, compat.study_id(s), direction, total, config, index, directions, budget, stopped
            )
        )
    return sorted(found, key=lambda s: (s.index, s.dataset))


def check_same_sweep(config: SweepConfig, found: list[SweepStudy]) -> None:
    """Raise :class:`SweepsError` if the storage holds sweep ``config.name`` (its studies
    ``found``) with another spec: only the keys in ``RESUMABLE`` may change."""
    identity = config.identity()
    for s in found:
        stored = SweepConfig.identity_of(dict(s.config))
        if stored != identity:
            diff = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
            raise SweepsError(
                f"sweep {config.name!r} already exists in this storage with a different spec "
                f"(key {diff[0]!r} differs); give the new sweep another 'name', or restore the file."
            )


def _attr(
    study: compat.FrozenStudy,
    key: str,
    value: object,
    parse: Callable[[object], object] | None,
    kind: type[T],
    what: str,
) -> T:
    """A study attribute this project wrote, checked: one clear error if it was changed by hand."""
    try:
        parsed = parse(value) if parse is not None else value
    except ValueError:
        parsed = None
    if not isinstance(parsed, kind) or isinstance(parsed, bool):
        raise SweepsError(
            f"study {study.study_name!r} in the storage: its attribute {key!r} must be {what}, but got "
            f"{type(value).__name__} {str(value)[:60]!r}; was the storage changed by hand?"
        )
    return parsed


def require_sweep(storage: optuna.storages.BaseStorage, name: str) -> list[SweepStudy]:
    """The studies of sweep ``name``; a ``ValueError`` naming the sweeps the storage holds if none."""
    studies = find_sweep(storage, name)
    if not studies:
        names = sorted({s.study_name.split("/", 1)[0] for s in storage.get_all_studies() if "/" in s.study_name})
        held = f"it holds {names}" if names else "it holds no sweep yet"
        shown = repr(name) if len(name) <= 100 else f"{name[:40]!r}... ({len(name)} characters)"
        raise SweepsError(f"no sweep named {shown} in this storage; {held}.")
    return studies


def summarize_study(study: SweepStudy, trials: list[FrozenTrial]) -> StudySummary:
    counts = Counter(o for o in map(outcome_of, trials) if o is not None)
    counted = {o: counts[o] for o in OUTCOMES if counts[o]}
    cuts = dict(sorted(Counter(str(t.user_attrs.get("cut")) for t in trials if outcome_of(t) == "cut").items()))
    infeasible = None
    if study.config.get("constraints"):  # the best and the front are the feasible trials'
        infeasible = sum(1 for t in trials if not feasible(t) and outcome_of(t) in ("complete", "pruned", "diverged"))
        trials = [t for t in trials if feasible(t)]
    if study.multi:
        front = pareto_front(trials, study.directions)
        return StudySummary(
            study=study.name,
            dataset=study.dataset,
            total=study.total,
            direction=study.direction,
            counts=counted,
            objectives=study.objectives,
            directions=study.directions,
            front=tuple(FrontTrial(t.number, tuple(float(v) for v in t.values), dict(t.params)) for t in front),
            infeasible=infeasible,
            budget=study.budget,
            stopped=study.stopped,
            cuts=cuts,
        )
    best: FrozenTrial | None = None
    best_value = math.nan  # the value of best
    sign = -1.0 if study.direction == "maximize" else 1.0
    for t in trials:
        value = t.value
        if outcome_of(t) == "complete" and value is not None and math.isfinite(value):
            if best is None or sign * value < sign * best_value:
                best, best_value = t, value
    return StudySummary(
        study=study.name,
        dataset=study.dataset,
        total=study.total,
        direction=study.direction,
        counts=counted,
        objectives=study.objectives,
        directions=study.directions,
        best_value=None if best is None else float(best_value),
        best_trial=None if best is None else best.number,
        best_params={} if best is None else dict(best.params),
        best_accuracy=None if best is None else last_accuracy(best),
        infeasible=infeasible,
        best_std=None if best is None else _std(best),
        budget=study.budget,
        stopped=study.stopped,
        cuts=cuts,
    )


def last_accuracy(trial: FrozenTrial) -> float | None:
    """A classification trial's last validation accuracy, as its curves recorded it (``None``:
    not classification, or no curve)."""
    run = trial.user_attrs.get("run")
    curve = run.get("curves", {}).get("val_accuracy") if isinstance(run, dict) else None
    if not curve:
        return None
    value = float(curve[-1])
    return value if math.isfinite(value) else None


def _std(trial: FrozenTrial) -> tuple[float, ...] | None:
    """A trial's values' standard deviation over its seeds, when it trained several."""
    std = (trial.user_attrs.get("repeats") or {}).get("std")
    return None if std is None else tuple(float(x) for x in std)


def summarize(storage: optuna.storages.BaseStorage, name: str) -> list[StudySummary]:
    """One summary per study of sweep ``name``, read from the storage."""
    return [summarize_study(s, storage.get_all_trials(s.study_id, deepcopy=False)) for s in find_sweep(storage, name)]
