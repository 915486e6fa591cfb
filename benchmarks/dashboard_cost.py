"""What the MLflow dashboard costs: descriptions, the best trial's tag, figures and shared views.

One journal of finished trials (fabricated: curves of ``--epochs`` points, a few diverged) is
written to MLflow, in this process, by:

  ours, dashboard on   studies.tracking.tracker.Tracker as 'sweep run' uses it
  ours, dashboard off  the same without the dashboard (Tracker(dashboard=False))
  peer                 optuna-integration's MLflowCallback, called for each trial (a run per
                       trial with its value and parameters: no description, figures or views)

Each study is revealed in ``--syncs`` steps and the tracker syncs after each, its parents
updated and its figures drawn at every step (the most the schedule allows: in a sweep, parents
are updated every 5 s and figures at most every 120 s). The alternatives run interleaved, in
the same run, each into a fresh MLflow SQLite file; medians of ``--repeats``; CPU seconds of
this process (MLflow's SQLite store runs in it) and wall seconds, per trial.

    python benchmarks/dashboard_cost.py [--quick] [--studies 4] [--trials 250] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SPEC = """
name = "cost"
datasets = {datasets!r}
trials = {trials}
seed = 0
[train]
epochs = {epochs}
activation = "relu"
[search]
learning_rate = {{ low = 0.001, high = 50.0, log = true }}
hidden_layers = {{ low = 1, high = 2 }}
hidden_units = {{ low = 2, high = 8 }}
regularization = ["none", "l2"]
[sampler]
name = "random"
[pruner]
name = "none"
"""
DATASETS = ["circle", "xor", "gauss", "spiral", "plane", "multigauss"]


def _journal(folder: str, studies: int, trials: int, epochs: int) -> str:
    """A sweep's journal with ``trials`` finished trials in each of ``studies`` studies."""
    import numpy as np
    from optuna.trial import TrialState

    from studies.execution.runner import open_sweep
    from studies.storage.opening import open_storage
    from sweeps.spec import load_spec

    path = os.path.join(folder, "cost.toml")
    with open(path, "w") as f:
        f.write(SPEC.format(datasets=DATASETS[:studies], trials=trials, epochs=epochs))
    url = os.path.join(folder, "sweeps.journal")
    rng = np.random.default_rng(0)
    for study in open_sweep(load_spec(path), open_storage(url)):
        for _ in range(trials):
            t = study.ask()
            lr = t.suggest_float("learning_rate", 0.001, 50.0, log=True)
            layers = t.suggest_int("hidden_layers", 1, 2)
            for i in range(layers):
                t.suggest_int(f"hidden_units_{i + 1}", 2, 8)
            t.suggest_categorical("regularization", ["none", "l2"])
            curve = list(np.exp(-np.linspace(0, 3, epochs)) * (0.3 + rng.random()))
            t.set_user_attr(
                "run",
                {
                    "curves": {"train_cost": curve, "val_cost": curve, "val_accuracy": curve},
                    "label": f"t{t.number}",
                    "train_seconds": 0.01,
                },
            )
            if lr > 20:
                t.set_user_attr("diverged", True)
                t.set_user_attr("divergence", {"epoch": 2, "cause": "exploded"})
                study.tell(t, state=TrialState.PRUNED)
            else:
                study.tell(t, curve[-1])
    return url


class _Prefix:
    """The storage as it was when each study had its first ``k`` trials."""

    def __init__(self, storage, k: int) -> None:  # noqa: ANN001
        self._storage, self._k = storage, k

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states=None):  # noqa: ANN001, ANN201
        return [
            t for t in self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states) if t.number < self._k
        ]

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._storage, name)


def _ours(url: str, trials: int, syncs: int, dashboard: bool) -> tuple[float, float, float, int]:
    """(CPU, wall, CPU drawing and logging figures, figure sets drawn)."""
    from studies.storage.adaptor import SweepStorage
    from studies.storage.opening import open_storage
    from studies.tracking import tracker as tracking

    tracking._PARENT_SECONDS = 0.0  # parents at every step
    view = SweepStorage(open_storage(url), refresh_seconds=0.0)
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-mlflow-") as d:
        tracker = tracking.Tracker("cost", f"sqlite:///{d}/mlflow.db", dashboard=dashboard)
        tracker.mlflow.connect()  # MLflow's tables are created outside the timing
        tracker.parents._figures.seconds = 0.0  # figures at every step too
        drawing = [0.0, 0]
        draw = tracker.parents._draw

        def timed(study, parent, trials_, summary, *, final):  # noqa: ANN001, ANN202
            t0, before = time.process_time(), tracker.parents._figures._drawn.get(study.name)
            draw(study, parent, trials_, summary, final=final)
            if tracker.parents._figures._drawn.get(study.name) != before:
                drawing[0] += time.process_time() - t0
                drawing[1] += 1

        tracker.parents._draw = timed
        cpu, wall = time.process_time(), time.perf_counter()
        steps = sorted({max(1, round(trials * (i + 1) / syncs)) for i in range(syncs)})
        for k in steps:
            tracker.sync(_Prefix(view, k), final=k == trials)
        return time.process_time() - cpu, time.perf_counter() - wall, drawing[0], drawing[1]


def _peer(url: str) -> tuple[float, float]:
    import mlflow
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    from studies.storage.opening import open_storage
    from studies.sweep.summary import find_sweep

    storage = open_storage(url)
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-mlflow-") as d:
        uri = f"sqlite:///{d}/mlflow.db"
        mlflow.tracking.MlflowClient(uri).search_experiments()  # tables created outside the timing
        callback = MLflowCallback(tracking_uri=uri, metric_name="val_cost")
        studies = []
        for s in find_sweep(storage, "cost"):
            study = optuna.create_study(study_name=s.name.replace("/", "-"), direction="minimize")
            study.add_trials(storage.get_all_trials(s.study_id))
            studies.append(study)
        cpu, wall = time.process_time(), time.perf_counter()
        for study in studies:
            for t in study.get_trials(deepcopy=False):
                callback(study, t)
        return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--trials", type=int, default=250, help="per study")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--syncs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 studies x 100 trials, 20 epochs, 5 syncs")
    a = parser.parse_args()
    if a.quick:
        a.studies, a.trials, a.epochs, a.syncs = 2, 100, 20, 5
    import optuna

    from studies.tracking.dashboard import FIGURE_SECONDS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    n = a.studies * a.trials
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as folder:
        url = _journal(folder, a.studies, a.trials, a.epochs)
        got: dict[str, list[tuple]] = {"on": [], "off": [], "peer": []}
        for _ in range(a.repeats):  # interleaved: the host's noise falls on each alike
            got["on"].append(_ours(url, a.trials, a.syncs, True))
            got["off"].append(_ours(url, a.trials, a.syncs, False))
            got["peer"].append(_peer(url))
    med = {
        k: (statistics.median(r[0] for r in v) / n * 1e3, statistics.median(r[1] for r in v) / n * 1e3)
        for k, v in got.items()
    }
    dash = (med["on"][0] - med["off"][0], med["on"][1] - med["off"][1])
    figures = statistics.median(r[2] for r in got["on"]) / n * 1e3
    per_draw = statistics.median(r[2] / max(1, r[3]) for r in got["on"])
    print(
        f"{a.studies} studies x {a.trials} trials, {a.epochs} epochs, {a.syncs} syncs (parents and figures at "
        f"each), medians of {a.repeats}; per trial, ms:"
    )
    print(f"  {'':36} {'CPU':>8} {'wall':>8}")
    print(f"  {'ours, dashboard on (whole tracker)':36} {med['on'][0]:8.2f} {med['on'][1]:8.2f}")
    print(f"  {'ours, dashboard off':36} {med['off'][0]:8.2f} {med['off'][1]:8.2f}")
    print(f"  {'ours, the dashboard alone (on - off)':36} {dash[0]:8.2f} {dash[1]:8.2f}")
    print(f"  {'  of which figures (drawn, logged)':36} {figures:8.2f}")
    print(f"  {'  of which the rest (notes, tags, views)':36} {dash[0] - figures:8.2f}")
    print(f"  {'peer: MLflowCallback (whole)':36} {med['peer'][0]:8.2f} {med['peer'][1]:8.2f}")
    print(
        f"the dashboard alone / MLflowCallback: CPU {dash[0] / med['peer'][0]:.2f}x, wall "
        f"{dash[1] / med['peer'][1]:.2f}x; the dashboard's share of our tracker: CPU "
        f"{dash[0] / med['on'][0]:.0%}, wall {dash[1] / med['on'][1]:.0%}"
    )
    print(
        f"one study's figures cost {per_draw:.2f} s of CPU per drawing; in a sweep they are drawn at most every "
        f"{FIGURE_SECONDS:.0f} s per study (and once when it finishes): at most "
        f"{per_draw / FIGURE_SECONDS:.1%} of a core per running study."
    )


if __name__ == "__main__":
    main()
