"""`sweep run playground` with 2 jobs against 1, and where the wall time goes.

(a) throughput: finished trials per minute with 2 worker processes over 1 (target >= 1.8x);
(b) the share of the workers' time spent outside training -- Optuna (sampling, storage,
    pruning reports), MLflow, process start-up (target <= 10%):
    1 - (time inside the engine's training) / (wall time x jobs).

Runs alternate (1, 2, 1, 2, ...) in one process; medians of ``--repeats`` runs.

    python benchmarks/sweep_throughput.py [--repeats 3] [--trials 50] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import dataclasses

from _common import median, run

from sweeps.spec import apply_overrides, load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--preset", default="playground")
    parser.add_argument("--mlflow", choices=("on", "off", "both"), default="both")
    args = parser.parse_args()
    base = apply_overrides(load_spec(args.preset), trials=args.trials)
    modes = {"on": [True], "off": [False], "both": [False, True]}[args.mlflow]
    results: dict[tuple[bool, int], list] = {(m, j): [] for m in modes for j in (1, 2)}
    for _ in range(args.repeats):
        for track in modes:
            for jobs in (1, 2):
                r = run(dataclasses.replace(base, jobs=jobs), track=track)
                results[track, jobs].append(r)
                print(
                    f"  MLflow {'on ' if track else 'off'} jobs={jobs}: {r.finished} trials in {r.wall:6.2f} s "
                    f"= {r.per_minute:6.0f}/min; training {r.train_seconds:6.2f} s, "
                    f"pruning reports {r.report_seconds:5.2f} s",
                    flush=True,
                )
    print(f"\n{args.preset}: {len(base.datasets)} datasets x {args.trials} trials, medians of {args.repeats}")
    print(
        f"{'MLflow':>6} {'jobs':>4} {'wall s':>8} {'trials/min':>11} {'outside training':>17} {'of which reports':>17}"
    )
    for track in modes:
        per_min = {}
        for jobs in (1, 2):
            rs = results[track, jobs]
            wall = median([r.wall for r in rs])
            per_min[jobs] = median([r.per_minute for r in rs])
            outside = median([1 - r.train_seconds / (r.wall * jobs) for r in rs])
            reports = median([r.report_seconds / (r.wall * jobs) for r in rs])
            print(
                f"{'on' if track else 'off':>6} {jobs:>4} {wall:8.2f} {per_min[jobs]:11.0f} {outside:16.1%} "
                f"{reports:16.1%}"
            )
        print(f"{'':>6} throughput 2 jobs / 1 job: {per_min[2] / per_min[1]:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
