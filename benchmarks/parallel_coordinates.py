"""The report's parallel coordinates at 2,000 trials: our figure against Optuna's own
matplotlib one (``optuna.visualization.matplotlib.plot_parallel_coordinate``), both saved as
PNG at the same resolution, in this process; medians of ``--repeats``.

Made-up trials of a playground-like space (a log learning rate, two integers, a choice, and a
conditional parameter), 70% complete, 20% pruned, 10% diverged, all in one in-memory study.

    python benchmarks/parallel_coordinates.py [--trials 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from studies.reports import figures


def make(trials: int) -> optuna.Study:
    rng = np.random.default_rng(0)
    dists = {
        "learning_rate": FloatDistribution(1e-3, 10.0, log=True),
        "hidden_layers": IntDistribution(1, 3),
        "hidden_units_1": IntDistribution(2, 8),
        "activation": CategoricalDistribution(["sigmoid", "tanh", "relu"]),
        "regularization": CategoricalDistribution(["none", "l2"]),
        "regularization_rate": FloatDistribution(1e-5, 1e-2, log=True),
    }
    study = optuna.create_study()
    batch = []
    for _ in range(trials):
        params = {
            "learning_rate": float(np.exp(rng.uniform(np.log(1e-3), np.log(10.0)))),
            "hidden_layers": int(rng.integers(1, 4)),
            "hidden_units_1": int(rng.integers(2, 9)),
            "activation": str(rng.choice(["sigmoid", "tanh", "relu"])),
            "regularization": str(rng.choice(["none", "l2"])),
        }
        if params["regularization"] == "l2":
            params["regularization_rate"] = float(np.exp(rng.uniform(np.log(1e-5), np.log(1e-2))))
        kind = rng.choice(["complete", "pruned", "diverged"], p=[0.7, 0.2, 0.1])
        state = optuna.trial.TrialState.COMPLETE if kind == "complete" else optuna.trial.TrialState.PRUNED
        batch.append(
            optuna.trial.create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                value=float(rng.uniform(0.02, 0.7)) if kind == "complete" else None,
                state=state,
                user_attrs={"diverged": True} if kind == "diverged" else {},
            )
        )
    study.add_trials(batch)
    return study


def ours(study: optuna.Study) -> float:
    trials = study.get_trials(deepcopy=False)
    params = sorted({p for t in trials for p in t.params})
    t0 = time.perf_counter()
    figures.parallel_coordinates(trials, params, "val_cost", "minimize")
    return time.perf_counter() - t0


def optunas(study: optuna.Study) -> float:
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental"
        ax = plot_parallel_coordinate(study)
    ax.figure.savefig(io.BytesIO(), format="png", dpi=90)
    elapsed = time.perf_counter() - t0
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    study = make(args.trials)
    rows = {"ours (figures.parallel_coordinates)": [], "optuna plot_parallel_coordinate (matplotlib)": []}
    for _ in range(args.repeats):
        rows["ours (figures.parallel_coordinates)"].append(ours(study))
        rows["optuna plot_parallel_coordinate (matplotlib)"].append(optunas(study))
    print(f"{args.trials} trials, PNG at 90 dpi, medians of {args.repeats}")
    base = statistics.median(rows["ours (figures.parallel_coordinates)"])
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:46} {median:6.2f} s  ({median / base:.1f}x ours)")


if __name__ == "__main__":
    main()
