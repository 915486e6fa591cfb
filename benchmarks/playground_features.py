"""Input features searched against raw inputs: the `playground` preset's held-out test accuracy.

Runs the `playground` preset as it ships (its [search] includes ``features``: one yes/no
parameter per family) and the same preset with ``features`` left out (the networks see the
raw X1, X2 only: the alternative), each for ``--seeds`` seeds at the preset's trials (50
per set). For every set and seed it prints the test accuracy of the best configuration,
retrained from scratch on its seed and scored on the test split as ``sweep report`` does,
for both side by side, and whether the target holds: test accuracy >= 0.95 on all four sets
at every seed.

    python benchmarks/playground_features.py [--seeds 3] [--trials 50] [--jobs 2]
"""

from __future__ import annotations

import argparse
import time

from _common import scratch

from studies.execution.runner import run_sweep
from studies.reports.data import gather
from studies.storage.opening import open_storage
from sweeps.spec import load_spec, spec_from_dict

TARGET = 0.95


def _variant(features: bool, *, seed: int, trials: int | None, jobs: int | None):
    data = load_spec("playground").to_dict()
    if not features:
        data["search"] = {k: v for k, v in data["search"].items() if k != "features"}
    data["seed"] = seed
    if trials is not None:
        data["trials"] = trials
    if jobs is not None:
        data["jobs"] = jobs
    return spec_from_dict(data, origin="benchmark")


def _run(config) -> tuple[dict[str, float], dict[str, str], float]:
    """Test accuracy and the best trial's inputs per set, and the sweep's wall time."""
    with scratch():
        t0 = time.perf_counter()
        run_sweep(config, track=False)
        wall = time.perf_counter() - t0
        report = gather(open_storage(None), config.name)
    accuracy, inputs = {}, {}
    for d in report.datasets:
        accuracy[d.summary.dataset] = d.test_score.get("test_accuracy", float("nan"))
        inputs[d.summary.dataset] = "+".join(d.retrained.dataset.features) if d.retrained else "-"
    return accuracy, inputs, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=None, help="per set (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: the preset's, all cores)")
    args = parser.parse_args()
    sets = [d.name for d in load_spec("playground").datasets]
    ours: dict[tuple[str, int], float] = {}
    alt: dict[tuple[str, int], float] = {}
    print(f"{'seed':>4}  {'set':<7}  {'features searched':>17}  {'raw inputs':>10}  best trial's inputs", flush=True)
    for seed in range(args.seeds):
        acc, inputs, wall = _run(_variant(True, seed=seed, trials=args.trials, jobs=args.jobs))
        acc_alt, _, wall_alt = _run(_variant(False, seed=seed, trials=args.trials, jobs=args.jobs))
        for s in sets:
            ours[s, seed], alt[s, seed] = acc[s], acc_alt[s]
            print(f"{seed:>4}  {s:<7}  {acc[s]:>17.4f}  {acc_alt[s]:>10.4f}  {inputs[s]}", flush=True)
        print(f"      sweep wall time: {wall:.1f} s with features searched, {wall_alt:.1f} s on raw inputs", flush=True)
    trials = args.trials or load_spec("playground").trials
    print(
        f"\nplayground preset, {trials} trials per set, {args.seeds} seed(s): test accuracy of the best "
        f"configuration (retrained), lowest over seeds"
    )
    print(f"{'set':<7}  {'features searched':>17}  {'raw inputs':>10}")
    for s in sets:
        print(
            f"{s:<7}  {min(ours[s, k] for k in range(args.seeds)):>17.4f}  "
            f"{min(alt[s, k] for k in range(args.seeds)):>10.4f}"
        )
    met = all(v >= TARGET for v in ours.values())
    print(
        f"target (test accuracy >= {TARGET} on all four sets at every seed): "
        f"{'met' if met else 'NOT met'} with features searched; "
        f"{'met' if all(v >= TARGET for v in alt.values()) else 'not met'} on raw inputs"
    )


if __name__ == "__main__":
    main()
