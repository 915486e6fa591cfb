"""`sweep run playground` against what a user writes by hand today: ``study.optimize(n_jobs=2)``
with optuna-integration's ``MLflowCallback`` around scikit-learn's ``MLPClassifier``, on the
same datasets, splits, epochs, batch size and search space (the preset's, without its input
features: the hand-written objective trains on the raw inputs). Prints trials per minute of
each, the ratio (target >= 3x), and the best validation cost per dataset.

scikit-learn's MLP has no L1 penalty: the hand-written objective maps 'l1' to its L2
``alpha`` (the closest it can do). A trial whose fit blows up is returned as NaN (Optuna
marks it failed), which is what the hand-written version gets without divergence handling.

    python benchmarks/sweep_vs_handwritten.py [--trials 50] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import optuna
from _common import median, run, scratch

from sweeps.spec import apply_overrides, load_spec, spec_from_dict


def handwritten(config, *, jobs: int) -> tuple[float, int, dict[str, float]]:
    from optuna_integration.mlflow import MLflowCallback
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    space = config.space
    lr_range = space.searched["learning_rate"]
    epochs = int(space.fixed.get("epochs", 100))
    batch = int(space.fixed.get("batch_size", 10))
    act = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu", "linear": "identity"}
    best, finished = {}, 0
    t0 = time.perf_counter()
    for ref in config.datasets:
        ds = ref.load(seed=config.seed)

        def objective(trial: optuna.Trial, ds=ds) -> float:  # noqa: ANN001 - this loop's dataset, bound
            lr = trial.suggest_float("learning_rate", lr_range.low, lr_range.high, log=True)
            layers = trial.suggest_int("hidden_layers", 1, 3)
            units = tuple(trial.suggest_int(f"hidden_units_{i + 1}", 2, 8) for i in range(layers))
            activation = trial.suggest_categorical("activation", ["sigmoid", "tanh", "relu"])
            reg = trial.suggest_categorical("regularization", ["none", "l1", "l2"])
            alpha = trial.suggest_float("regularization_rate", 1e-5, 0.1, log=True) if reg != "none" else 0.0
            clf = MLPClassifier(
                hidden_layer_sizes=units,
                activation=act[activation],
                solver="sgd",
                learning_rate_init=lr,
                batch_size=batch,
                max_iter=epochs,
                alpha=alpha,
                momentum=0.0,
                nesterovs_momentum=False,
                tol=0.0,
                n_iter_no_change=epochs + 1,
                random_state=config.seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    clf.fit(ds.X_train, ds.y_train)
                    return float(log_loss(ds.y_val, clf.predict_proba(ds.X_val), labels=[0, 1]))
                except (ValueError, FloatingPointError):
                    return float("nan")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated in Optuna 4.9, still what users write
            callback = MLflowCallback(
                tracking_uri=f"sqlite:///{os.path.abspath('handwritten.db')}", metric_name="val_cost"
            )
        study = optuna.create_study(
            study_name=f"hand/{ref.name}", direction="minimize", sampler=optuna.samplers.TPESampler(seed=config.seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(objective, n_trials=config.trials, n_jobs=jobs, callbacks=[callback])
        finished += len(study.trials)
        done = [t.value for t in study.trials if t.value is not None and np.isfinite(t.value)]
        best[ref.name] = min(done) if done else float("nan")
    return time.perf_counter() - t0, finished, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--only-peer",
        action="store_true",
        help="run only the hand-written peer, here (for timing it as a whole process)",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = apply_overrides(load_spec("playground"), trials=args.trials, jobs=2).to_dict()
    data["search"].pop("features", None)  # MLPClassifier sees the raw inputs: so do ours here
    config = spec_from_dict(data, origin="benchmark")
    if args.only_peer:
        wall, n, _ = handwritten(config, jobs=2)
        print(f"hand-written: {n} trials in {wall:.2f} s")
        return
    ours, theirs = [], []
    for _ in range(args.repeats):
        r = run(config)
        ours.append((r.per_minute, r.best))
        with scratch():
            wall, n, best = handwritten(config, jobs=2)
        theirs.append((60.0 * n / wall, best))
        print(f"  sweeps {r.per_minute:7.0f} trials/min; hand-written {60.0 * n / wall:7.0f} trials/min", flush=True)
    o, t = median([x for x, _ in ours]), median([x for x, _ in theirs])
    print(f"\nplayground, {args.trials} trials per dataset, 2 jobs, MLflow on both sides; medians of {args.repeats}")
    print(f"{'':14} {'trials/min':>10}  " + "  ".join(f"{d.name:>9}" for d in config.datasets))
    print(f"{'sweeps':14} {o:10.0f}  " + "  ".join(f"{ours[0][1][d.name]:9.4f}" for d in config.datasets))
    print(f"{'hand-written':14} {t:10.0f}  " + "  ".join(f"{theirs[0][1][d.name]:9.4f}" for d in config.datasets))
    print(f"speed-up: {o / t:.1f}x (target >= 3x); columns: best validation cost per dataset")


if __name__ == "__main__":
    main()
