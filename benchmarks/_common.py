"""Helpers shared by the sweep benchmarks: run a sweep in a scratch folder and read it back."""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import optuna

from studies.execution.runner import run_sweep
from studies.storage.opening import open_storage
from studies.sweep.config import SweepConfig
from studies.sweep.outcomes import outcome_of


@contextmanager
def scratch() -> Iterator[str]:
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
        os.chdir(d)
        try:
            yield d
        finally:
            os.chdir(old)


@dataclasses.dataclass
class SweepRun:
    wall: float
    finished: int
    train_seconds: float
    report_seconds: float
    outcomes: dict[str, int]
    best: dict[str, float]
    trials: list[optuna.trial.FrozenTrial]

    @property
    def per_minute(self) -> float:
        return 60.0 * self.finished / self.wall


def run(config: SweepConfig, *, track: bool = True) -> SweepRun:
    """Run ``config`` from scratch in a temporary folder (journal storage, MLflow's sqlite default)."""
    with scratch():
        t0 = time.perf_counter()
        # An explicit URI: another library in this process (MLflowCallback) may have set MLflow's global one.
        summaries = run_sweep(config, track=track, tracking_uri=f"sqlite:///{os.path.abspath('mlflow.db')}").summaries
        wall = time.perf_counter() - t0
        storage = open_storage(None)
        trials = [
            t
            for s in storage.get_all_studies()
            for t in storage.get_all_trials(storage.get_study_id_from_name(s.study_name))
        ]
    outcomes: dict[str, int] = {}
    for t in trials:
        o = outcome_of(t)
        if o:
            outcomes[o] = outcomes.get(o, 0) + 1
    runs = [t.user_attrs["run"] for t in trials if "run" in t.user_attrs]
    return SweepRun(
        wall=wall,
        finished=sum(s.finished for s in summaries),
        train_seconds=sum(r["train_seconds"] for r in runs),
        report_seconds=sum(r.get("report_seconds", 0.0) for r in runs),
        outcomes=outcomes,
        best={s.dataset: s.best_value for s in summaries},
        trials=trials,
    )


def median(xs: list[float]) -> float:
    return statistics.median(xs)
