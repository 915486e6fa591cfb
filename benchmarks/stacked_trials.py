"""Trials trained as stacks (``stack = K``): the playground preset with K = 1, 8, 32, 64.

First the engine alone: K networks of the preset's space (1-3 layers of 2-8 units, sigmoid,
tanh or relu) in one stack against one at a time (per-network time). Then the whole
pipeline: `sweep run playground` with 2 jobs and each K, trials per minute and the best
value per dataset, side by side in one run (medians of ``--repeats``). With ``--peer``,
the pipeline at K = 32 with MLflow on against the hand-written peer (Optuna +
``MLflowCallback`` + scikit-learn's ``MLPClassifier``, as in sweep_vs_handwritten.py).

    python benchmarks/stacked_trials.py [--trials 200] [--repeats 3] [--ks 1,8,32,64] [--mlflow] [--peer]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from _common import median, run, scratch

from engine import MLP, Member, load_dataset, train, train_stacked
from sweeps.spec import apply_overrides, load_spec


def engine_only(ks: list[int]) -> None:
    ds = load_dataset("circle")
    rng = np.random.default_rng(0)
    acts = ["sigmoid", "tanh", "relu"]
    print("engine: circle, 1-3 hidden layers of 2-8 units, sigmoid/tanh/relu mixed, batch 10, 20 epochs (per network)")
    for k in ks:
        members = [
            Member(
                tuple(int(rng.integers(2, 9)) for _ in range(int(rng.integers(1, 4)))),
                float(10 ** rng.uniform(-3, 0)),
                activation=acts[int(rng.integers(0, 3))],
            )
            for _ in range(k)
        ]
        t0 = time.perf_counter()
        for m in members:
            train(
                MLP(2, m.hidden, 1, activation=m.activation),
                ds,
                learning_rate=m.learning_rate,
                epochs=20,
                batch_size=10,
            )
        one = (time.perf_counter() - t0) / k
        t0 = time.perf_counter()
        train_stacked(members, ds, epochs=20, batch_size=10)
        stacked = (time.perf_counter() - t0) / k
        print(f"  K={k:3}: one at a time {one * 1e3:6.2f} ms, stacked {stacked * 1e3:6.2f} ms  ({one / stacked:4.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ks", default="1,8,32,64", help="the stack sizes K to compare (comma-separated)")
    parser.add_argument("--mlflow", action="store_true", help="log to MLflow too (default: storage only)")
    parser.add_argument("--peer", action="store_true", help="also K=32 with MLflow against the hand-written peer")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    engine_only(ks)
    base = apply_overrides(load_spec("playground"), trials=args.trials, jobs=2)
    rows: dict[int, list] = {k: [] for k in ks}
    for rep in range(args.repeats):
        for k in ks:  # interleaved, so that the host's noise falls on every K alike
            r = run(dataclasses.replace(base, stack=k), track=args.mlflow)
            rows[k].append(r)
            print(
                f"  run {rep + 1} K={k:3}: {r.finished} trials in {r.wall:6.1f} s = {r.per_minute:6.0f}/min "
                f"{r.outcomes}",
                flush=True,
            )
    per_min = {k: median([r.per_minute for r in rs]) for k, rs in rows.items()}
    print(
        f"\nplayground, {args.trials} trials per dataset, 2 jobs, MLflow {'on' if args.mlflow else 'off'}, "
        f"medians of {args.repeats}"
    )
    names = [d.name for d in base.datasets]
    print(f"{'K':>4} {'trials/min':>11} {'vs K=1':>7}  " + "  ".join(f"{n:>9}" for n in names))
    for k, rs in rows.items():
        best = {n: median([r.best[n] for r in rs]) for n in names}
        ratio = f"{per_min[k] / per_min[1]:6.1f}x" if 1 in per_min else "      -"
        print(f"{k:>4} {per_min[k]:11.0f} {ratio}  " + "  ".join(f"{best[n]:9.4f}" for n in names))
    print(
        "columns after the ratio: median best validation cost per dataset (target: >= 8x at K=32, equal within noise)"
    )
    if args.peer:
        from sweep_vs_handwritten import handwritten

        ours, theirs = [], []
        for _ in range(args.repeats):
            r = run(dataclasses.replace(base, stack=32), track=True)
            with scratch():
                wall, n, _ = handwritten(base, jobs=2)
            ours.append(r.per_minute)
            theirs.append(60.0 * n / wall)
            print(
                f"  sweeps K=32 + MLflow {r.per_minute:7.0f} trials/min; hand-written {theirs[-1]:7.0f} trials/min",
                flush=True,
            )
        o, t = median(ours), median(theirs)
        print(
            f"pipeline against the hand-written peer (MLflow on both): {o:.0f} vs {t:.0f} trials/min = {o / t:.1f}x "
            "(aim: 20x)"
        )


if __name__ == "__main__":
    main()
