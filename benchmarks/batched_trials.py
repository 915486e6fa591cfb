"""Trials trained as stacks (``batch = K``): the playground preset with K = 1, 8, 32, 64.

First the engine alone: K networks of one depth and activation, stacked against one at a
time (per-network time). Then the whole pipeline: `sweep run playground` with 2 jobs and
each K, trials per minute and the best value per dataset, side by side in one run.

    python benchmarks/batched_trials.py [--trials 200] [--mlflow]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from _common import run
from engine import MLP, Member, load_dataset, train, train_batched
from sweeps.spec import apply_overrides, load_spec


def engine_only(ks: list[int]) -> None:
    ds = load_dataset("circle")
    rng = np.random.default_rng(0)
    print("engine: circle, tanh, 2 hidden layers of 2-8 units, batch 10, 20 epochs (per network)")
    for k in ks:
        members = [Member((int(rng.integers(2, 9)), int(rng.integers(2, 9))), float(rng.uniform(0.01, 1.0)))
                   for _ in range(k)]
        t0 = time.perf_counter()
        for m in members:
            train(MLP(2, m.hidden, 1, activation="tanh"), ds, learning_rate=m.learning_rate, epochs=20, batch_size=10)
        one = (time.perf_counter() - t0) / k
        t0 = time.perf_counter()
        train_batched(members, ds, activation="tanh", epochs=20, batch_size=10)
        stacked = (time.perf_counter() - t0) / k
        print(f"  K={k:3}: one at a time {one * 1e3:6.2f} ms, stacked {stacked * 1e3:6.2f} ms  ({one / stacked:4.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--mlflow", action="store_true", help="log to MLflow too (default: storage only)")
    args = parser.parse_args()
    ks = [1, 8, 32, 64]
    engine_only(ks)
    base = apply_overrides(load_spec("playground"), trials=args.trials, jobs=2)
    rows = {}
    for k in ks:
        r = run(dataclasses.replace(base, batch=k), track=args.mlflow)
        rows[k] = r
        print(f"  sweep K={k:3}: {r.finished} trials in {r.wall:6.1f} s = {r.per_minute:6.0f}/min", flush=True)
    print(f"\nplayground, {args.trials} trials per dataset, 2 jobs, MLflow {'on' if args.mlflow else 'off'}")
    names = [d.name for d in base.datasets]
    print(f"{'K':>4} {'trials/min':>11} {'vs K=1':>7}  " + "  ".join(f"{n:>9}" for n in names))
    for k, r in rows.items():
        print(f"{k:>4} {r.per_minute:11.0f} {r.per_minute / rows[1].per_minute:6.1f}x  "
              + "  ".join(f"{r.best[n]:9.4f}" for n in names))
    print("columns after the ratio: best validation cost per dataset (target: >= 8x at K=32, equal within noise)")


if __name__ == "__main__":
    main()
