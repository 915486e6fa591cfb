"""`sweep status` and `sweep report` on a study of 5,000 trials (target: each under 30 s).

Makes a sweep whose one study holds ``--trials`` finished trials with 100-epoch curves
(complete, pruned and diverged, like a real sweep's) in a journal file, then times, in
new processes, ``sweep status`` and ``sweep report``; Optuna's own ``trials_dataframe()``
on the same storage is printed beside them as a reference. Medians of ``--repeats``.

    python benchmarks/report_scale.py [--trials 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np
import optuna
from _common import scratch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from studies.execution.runner import open_sweep
from studies.storage.opening import open_storage
from sweeps.spec import load_spec, spec_from_dict


def make(trials: int) -> None:
    base = load_spec("playground").to_dict()
    base.update(name="scale", datasets=["circle"], trials=trials)
    base["search"].pop("features", None)  # the made-up trials below have no feature parameters
    config = spec_from_dict(base)
    storage = open_storage(None)
    study = open_sweep(config, storage)[0]
    rng = np.random.default_rng(0)
    dists = {
        "learning_rate": FloatDistribution(1e-3, 10.0, log=True),
        "hidden_layers": IntDistribution(1, 3),
        "hidden_units_1": IntDistribution(2, 8),
        "activation": CategoricalDistribution(["sigmoid", "tanh", "relu"]),
        "regularization": CategoricalDistribution(["none", "l1", "l2"]),
    }
    batch = []
    for n in range(trials):
        lr = float(np.exp(rng.uniform(np.log(1e-3), np.log(10.0))))
        params = {
            "learning_rate": lr,
            "hidden_layers": 1,
            "hidden_units_1": int(rng.integers(2, 9)),
            "activation": str(rng.choice(["sigmoid", "tanh", "relu"])),
            "regularization": "none",
        }
        kind = rng.choice(["complete", "pruned", "diverged"], p=[0.7, 0.2, 0.1])
        epochs = 100 if kind == "complete" else int(rng.integers(5, 60))
        curve = (0.7 * np.exp(-np.arange(1, epochs + 1) * lr / 5) + 0.05).round(6).tolist()
        attrs = {
            "run": {
                "curves": {"train_cost": curve, "val_cost": curve, "val_accuracy": [0.9] * epochs},
                "label": f"t{n}",
                "seed": 0,
                "train_seconds": 0.05,
                "initial_cost": 0.7,
            }
        }
        if kind == "diverged":
            attrs.update(
                diverged=True,
                divergence={"epoch": epochs + 1, "cause": "nan", "learning_rate": lr, "last_finite_cost": curve[-1]},
            )
        state = optuna.trial.TrialState.COMPLETE if kind == "complete" else optuna.trial.TrialState.PRUNED
        batch.append(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=curve[-1] if kind == "complete" else None,
                state=state,
                user_attrs=attrs,
                intermediate_values={e: curve[e - 1] for e in range(10, epochs + 1, 10)},
            )
        )
    study.add_trials(batch)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with scratch():
        t0 = time.perf_counter()
        make(args.trials)
        print(f"made a study of {args.trials} trials in {time.perf_counter() - t0:.1f} s")
        sweep = [sys.executable, "-m", "sweeps"]
        peer = [
            sys.executable,
            "-c",
            "import optuna; from studies.storage import open_storage; "
            "optuna.load_study(study_name='scale/circle', storage=open_storage(None)).trials_dataframe()",
        ]
        rows = {"sweep status": [], "sweep report": [], "optuna trials_dataframe (reference)": []}
        for _ in range(args.repeats):
            rows["sweep status"].append(timed([*sweep, "status", "scale"]))
            rows["sweep report"].append(timed([*sweep, "report", "scale", "--no-mlflow"]))
            rows["optuna trials_dataframe (reference)"].append(timed(peer))
    print(f"\n{args.trials} trials, new process each time, medians of {args.repeats} (target: under 30 s)")
    for name, times in rows.items():
        print(f"{name:38} {statistics.median(times):6.2f} s")


if __name__ == "__main__":
    main()
