"""Repeated seeds: ``repeats = 4`` against ``repeats = 1``, in time and in what the choice is worth.

Time: the `playground` preset (four sets) at ``--trials`` configurations per set, once with
``repeats = 1`` and once with ``repeats = 4`` (each configuration's four seeds as members of
its stack), ``--runs`` times each in turn; prints the median wall times and their ratio
(target: <= 1.6x). With ``--pruner none`` every configuration trains all its epochs in both,
so the ratio is the seeds' cost alone; with the preset's pruner the pruner judges the mean
curve, and the two sweeps may prune differently.

Choice: in the ``repeats = 4`` sweep, the configuration with the best mean validation cost
(what the sweep reports) against the one a single-seed sweep would have picked from the same
trials (the best by its first seed's validation cost alone). Each is retrained on its four
recorded seeds and scored on the test split (the mean over the seeds: the configuration's
worth, not one draw's); printed per set, with the ``repeats = 1`` sweep's own best for
reference (one seed, scored as ``sweep report`` does). One sweep seed is one draw of the
search: ``--choice-seeds N`` runs the ``repeats = 4`` sweep again for the N-1 sweep seeds after
``--seed`` (the
choice only; it does not depend on the machine's load) and prints the two choices' test
accuracy per set averaged over the N sweeps, with how often each scored higher.

    python benchmarks/repeats.py [--trials 20] [--runs 3] [--jobs 1] [--pruner preset|none] [--choice-seeds 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import scratch

from studies.execution.runner import run_sweep
from studies.reports.data import _test_score
from studies.search import retrain_seeds
from studies.storage.opening import open_storage
from studies.sweep import require_sweep, summarize
from sweeps.spec import load_spec, spec_from_dict

TARGET = 1.6


def _config(repeats: int, *, trials: int, jobs: int, pruner: str, seed: int):
    data = load_spec("playground").to_dict()
    data.update(trials=trials, jobs=jobs, seed=seed, repeats=repeats, name=f"rep{repeats}")
    if pruner == "none":
        data["pruner"] = {"name": "none"}
    return spec_from_dict(data, origin="benchmark")


def _choices(name: str) -> dict[str, dict[str, float]]:
    """Per set: the test accuracy (mean over the recorded seeds) of the best by mean and of the
    best by the first seed alone."""
    storage = open_storage(None)
    out: dict[str, dict[str, float]] = {}
    for study in require_sweep(storage, name):
        trials = [t for t in storage.get_all_trials(study.study_id) if t.state.name == "COMPLETE"]
        repeated = [t for t in trials if "values" in t.user_attrs.get("repeats", {})]
        picks = {"mean": min(trials, key=lambda t: t.value)}
        if repeated:
            picks["one seed"] = min(repeated, key=lambda t: t.user_attrs["repeats"]["values"][0][0])
        row = {}
        for label, trial in picks.items():
            scores = [_test_score(r).get("test_accuracy", float("nan")) for r in retrain_seeds(study, trial)]
            row[label] = float(np.mean(scores))
            row[f"{label} trial"] = trial.number
        out[study.dataset] = row
    return out


def _run(config) -> tuple[float, float, dict[str, dict[str, float]], str]:
    """Wall time, the trials' training time (their shares of their stacks' time), choices, and
    the trials and epochs trained (the pruner may cut the two sweeps differently)."""
    with scratch():
        t0 = time.perf_counter()
        run_sweep(config, track=False)
        wall = time.perf_counter() - t0
        choices = _choices(config.name)
        storage = open_storage(None)
        finished = sum(s.finished for s in summarize(storage, config.name))
        runs = [
            t.user_attrs["run"]
            for s in require_sweep(storage, config.name)
            for t in storage.get_all_trials(s.study_id)
            if "run" in t.user_attrs
        ]
    train = sum(r["train_seconds"] for r in runs)
    epochs = sum(len(r["curves"]["train_cost"]) for r in runs)
    return wall, train, choices, f"{finished} trials, {epochs} configuration-epochs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="configurations per set")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pruner", choices=["preset", "none"], default="preset")
    parser.add_argument("--choice-seeds", type=int, default=1, help="sweep seeds for the choice comparison")
    args = parser.parse_args()
    if args.choice_seeds < 1 or args.runs < 1 or args.trials < 1:
        parser.error("--trials, --runs and --choice-seeds must be at least 1")
    walls: dict[int, list[float]] = {1: [], 4: []}
    trains: dict[int, list[float]] = {1: [], 4: []}
    choices: dict[int, dict] = {}
    for run in range(args.runs):
        for repeats in (1, 4):
            config = _config(repeats, trials=args.trials, jobs=args.jobs, pruner=args.pruner, seed=args.seed)
            wall, train, chosen, finished = _run(config)
            walls[repeats].append(wall)
            trains[repeats].append(train)
            choices[repeats] = chosen
            print(
                f"run {run + 1}: repeats = {repeats}: {wall:.1f} s wall, {train:.1f} s training, {finished}",
                flush=True,
            )
    one, four = statistics.median(walls[1]), statistics.median(walls[4])
    ratio = four / one
    print(f"\nmedian wall: repeats = 1 {one:.1f} s, repeats = 4 {four:.1f} s: {ratio:.2f}x (target <= {TARGET}x)")
    t1, t4 = statistics.median(trains[1]), statistics.median(trains[4])
    print(f"median training time (the trials' shares of their stacks): {t1:.1f} s vs {t4:.1f} s: {t4 / t1:.2f}x")
    print("test accuracy of the best configuration (mean over its 4 seeds retrained):")
    print(f"{'set':8} {'by mean':>8} {'by seed 0':>10} {'repeats=1 best (1 seed)':>25}")
    for dataset, row in choices[4].items():
        single = choices[1][dataset]["mean"]
        print(f"{dataset:8} {row['mean']:8.4f} {row.get('one seed', float('nan')):10.4f} {single:25.4f}")
    print(f"target {'met' if ratio <= TARGET else 'missed'}")
    if args.choice_seeds > 1:
        _more_choices(choices[4], args)


def _more_choices(first: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    """The choice by mean against by seed 0, over sweep seeds 0..N-1 (seed 0: the timed run's)."""
    table = {dataset: [row] for dataset, row in first.items()}
    for seed in range(args.seed + 1, args.seed + args.choice_seeds):
        config = _config(4, trials=args.trials, jobs=args.jobs, pruner=args.pruner, seed=seed)
        *_, chosen, _ = _run(config)
        for dataset, row in chosen.items():
            table[dataset].append(row)
        print(f"choice: sweep seed {seed} done", flush=True)
    print(f"\ntest accuracy over {args.choice_seeds} sweep seeds (mean over each choice's 4 seeds retrained):")
    print(f"{'set':8} {'by mean':>8} {'by seed 0':>10} {'mean higher':>12} {'equal':>6} {'seed 0 higher':>14}")
    for dataset, rows in table.items():
        pairs = [(r["mean"], r["one seed"]) for r in rows if "one seed" in r]
        if not pairs:  # no trial of the set completed all its seeds
            print(f"{dataset:8} no choice to compare")
            continue
        up = sum(a > b + 1e-12 for a, b in pairs)
        down = sum(b > a + 1e-12 for a, b in pairs)
        m, o = statistics.mean(a for a, _ in pairs), statistics.mean(b for _, b in pairs)
        print(f"{dataset:8} {m:8.4f} {o:10.4f} {up:12d} {len(pairs) - up - down:6d} {down:14d}")


if __name__ == "__main__":
    main()
