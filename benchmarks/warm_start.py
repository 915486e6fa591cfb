"""Warm starts on the classics: trials needed to come close to the best, warm-started against cold.

A short classics sweep runs first (seed 0, ``--short-trials`` per dataset). Then, for each
seed 1..``--seeds``, the full classics sweep runs twice in the same storage, one cold and
one warm-started from the short sweep (``warm_start = { sweep = "short", top = --top }``),
interleaved. A different seed than the short sweep's means another split and other initial
weights: the warm start transfers configurations, it does not replay trials.

The measure, per dataset and seed: the number of finished trials (by trial number; pruned and
diverged ones count, they were spent) until a complete trial's value is within 5% of the
best value that either run of that seed reached (``value <= 1.05 * best``, val_cost). A run
that never gets there counts as its total plus one (shown as ``>N``). Printed: the medians
over the seeds, warm beside cold, and the short sweep's own cost (trials it spent per dataset).

    python benchmarks/warm_start.py [--seeds 5] [--trials 30] [--short-trials 20] [--top 5] [--quick]

The classics preset as it is (30 trials, 40 epochs, stack 8, TPE, median pruner); MLflow off.
About 2 minutes on 2 busy cores with the defaults (30 s on idle ones); ``--quick`` (iris and wine, fewer trials and
epochs, 2 seeds) is a smoke run of seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

from _common import scratch

from studies.execution.runner import run_sweep
from studies.storage.opening import open_storage
from studies.sweep.outcomes import FINISHED, outcome_of
from studies.sweep.summary import find_sweep
from sweeps.spec import load_spec, spec_from_dict

CLOSE = 1.05  # within 5% of the best (costs are positive)


def _config(base: dict, **changes: object):
    return spec_from_dict({**base, **changes}, origin="benchmark")


def _curves(storage, name: str) -> dict[str, list[tuple[int, float | None]]]:
    """Dataset -> its finished trials in order: (number, value if complete else None)."""
    out = {}
    for study in find_sweep(storage, name):
        trials = sorted(
            (t for t in storage.get_all_trials(study.study_id, deepcopy=False) if outcome_of(t) in FINISHED),
            key=lambda t: t.number,
        )
        out[study.dataset] = [(t.number, t.value if outcome_of(t) == "complete" else None) for t in trials]
    return out


def _needed(trials: list[tuple[int, float | None]], target: float) -> int:
    """Finished trials until one is within 5% of ``target``; len + 1 if none."""
    for i, (_, value) in enumerate(trials, start=1):
        if value is not None and value <= CLOSE * target:
            return i
    return len(trials) + 1


def _fmt(n: float, total: int) -> str:
    return f">{total}" if n > total else f"{n:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=30, help="trials per dataset of the full sweeps")
    parser.add_argument("--short-trials", type=int, default=20, help="trials per dataset of the short sweep")
    parser.add_argument("--top", type=int, default=5, help="configurations enqueued per dataset")
    parser.add_argument("--quick", action="store_true", help="iris and wine, 8 trials, 10 epochs, 2 seeds")
    args = parser.parse_args()
    base = load_spec("classics").to_dict()
    if args.quick:
        base["datasets"], base["train"] = ["iris", "wine"], {**base["train"], "epochs": 10}
        args.seeds, args.trials, args.short_trials, args.top = 2, 8, 6, 3
    datasets = [d if isinstance(d, str) else d["name"] for d in base["datasets"]]
    kinds = ("cold", "warm")
    # dataset -> measure -> kind -> one number per seed
    table: dict[str, dict[str, dict[str, list[float]]]] = {
        d: {m: {k: [] for k in kinds} for m in ("both", "own", "best", "head", "complete")} for d in datasets
    }
    seconds = {"cold": 0.0, "warm": 0.0}
    t_start = time.perf_counter()
    with scratch():
        t0 = time.perf_counter()
        run_sweep(_config(base, name="short", seed=0, trials=args.short_trials), track=False)
        short_seconds = time.perf_counter() - t0
        print(f"short sweep: {args.short_trials} trials per dataset, seed 0, {short_seconds:.0f} s", flush=True)
        for seed in range(1, args.seeds + 1):
            runs = {}
            for kind in kinds:  # interleaved: the machine's load falls on both alike
                extra = {"warm_start": {"sweep": "short", "top": args.top}} if kind == "warm" else {}
                config = _config(base, name=f"{kind}{seed}", seed=seed, trials=args.trials, **extra)
                t0 = time.perf_counter()
                run_sweep(config, track=False)
                seconds[kind] += time.perf_counter() - t0
                runs[kind] = _curves(open_storage(os.path.abspath("sweeps.journal")), config.name)
            line = []
            for d in datasets:
                both = min(v for kind in kinds for _, v in runs[kind][d] if v is not None)
                for kind in kinds:
                    trials = runs[kind][d]
                    values = [v for _, v in trials if v is not None]
                    row = table[d]
                    row["both"][kind].append(_needed(trials, both))
                    row["own"][kind].append(_needed(trials, min(values)))
                    row["best"][kind].append(min(values))
                    row["head"][kind].append(min((v for _, v in trials[: args.top] if v is not None), default=math.inf))
                    row["complete"][kind].append(len(values))
                line.append(
                    f"{d} cold {_fmt(table[d]['both']['cold'][-1], args.trials)} "
                    f"warm {_fmt(table[d]['both']['warm'][-1], args.trials)}"
                )
            print(f"  seed {seed}: " + "; ".join(line), flush=True)
    med = statistics.median
    print(
        f"\nclassics preset ({base['train']['epochs']} epochs, stack {base.get('stack')}, {base['sampler']['name']}, "
        f"{base['pruner']['name']} pruner): a short sweep of {args.short_trials} trials per dataset (seed 0), then "
        f"per seed 1-{args.seeds} the full sweep of {args.trials} trials cold and warm-started from it (top "
        f"{args.top}). Medians of {args.seeds} seeds."
    )
    print(
        f"Trials until a complete trial's val_cost is within 5% of a target (finished trials by number; "
        f"'>{args.trials}': never): the target 'both' is the best value either run of the seed reached (the "
        f"measure), 'own' the run's own final best.\n"
    )
    print(
        f"{'':<14} {'within 5% of both':>18} {'within 5% of own':>17} {'best val_cost':>21} "
        f"{f'best of first {args.top}':>21} {'complete trials':>16}"
    )
    print(
        f"{'dataset':<14} {'cold':>8} {'warm':>8} {'cold':>8} {'warm':>8} {'cold':>10} {'warm':>10} "
        f"{'cold':>10} {'warm':>10} {'cold':>7} {'warm':>7}"
    )
    for d in datasets:
        r = table[d]
        print(
            f"{d:<14} {_fmt(med(r['both']['cold']), args.trials):>8} {_fmt(med(r['both']['warm']), args.trials):>8} "
            f"{_fmt(med(r['own']['cold']), args.trials):>8} {_fmt(med(r['own']['warm']), args.trials):>8} "
            f"{med(r['best']['cold']):>10.4g} {med(r['best']['warm']):>10.4g} "
            f"{med(r['head']['cold']):>10.4g} {med(r['head']['warm']):>10.4g} "
            f"{med(r['complete']['cold']):>7g} {med(r['complete']['warm']):>7g}"
        )
    print(
        f"\nThe warm runs' trials do not count the short sweep's {args.short_trials} per dataset "
        f"({short_seconds:.0f} s "
        f"once, for every warm run). Time in the full sweeps: cold {seconds['cold']:.0f} s, warm "
        f"{seconds['warm']:.0f} s; in all {time.perf_counter() - t_start:.0f} s."
    )


if __name__ == "__main__":
    main()
