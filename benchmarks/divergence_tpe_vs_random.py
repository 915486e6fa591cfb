"""Does the sampler learn to avoid diverging learning rates? TPE against random sampling.

A sweep over circle and xor with learning rates drawn uniformly up to 50, relu, plain
SGD: with cross-entropy's bounded gradients these small networks diverge above a learning
rate of about 20, so about half of a random sweep diverges. Diverged trials are recorded as PRUNED (with
``diverged=True``), a state TPE ranks below every completed trial. Prints the share of
diverged trials in the second half of each study (by trial number), TPE against random,
medians over seeds. Target: TPE's share well below random's.

    python benchmarks/divergence_tpe_vs_random.py [--trials 60] [--seeds 3]
"""

from __future__ import annotations

import argparse

from _common import median, run

from sweeps.spec import spec_from_dict

SPEC = {
    "name": "diverge",
    "datasets": ["circle", "xor"],
    "jobs": 1,
    "objective": "val_cost",
    "train": {"epochs": 30, "batch_size": 10, "optimizer": "sgd", "activation": "relu"},
    "search": {
        "learning_rate": {"low": 1e-3, "high": 50.0},
        "hidden_layers": {"low": 1, "high": 2},
        "hidden_units": {"low": 2, "high": 8},
    },
    "pruner": {"name": "none"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    table: dict[str, list[float]] = {"tpe": [], "random": []}
    overall: dict[str, list[float]] = {"tpe": [], "random": []}
    for seed in range(args.seeds):
        for sampler in ("tpe", "random"):
            config = spec_from_dict({**SPEC, "trials": args.trials, "seed": seed, "sampler": {"name": sampler}})
            r = run(config, track=False)
            by_dataset: dict[str, list] = {}
            for t in r.trials:
                by_dataset.setdefault(t.user_attrs.get("dataset", ""), []).append(t)
            half = [t for t in r.trials if t.number >= args.trials // 2 and t.state.is_finished()]
            share = sum(bool(t.user_attrs.get("diverged")) for t in half) / max(1, len(half))
            total = r.outcomes.get("diverged", 0) / max(1, r.finished)
            table[sampler].append(share)
            overall[sampler].append(total)
            print(
                f"  seed {seed} {sampler:>6}: diverged {total:5.1%} overall, {share:5.1%} in the second half",
                flush=True,
            )
    print(
        f"\nlearning rate uniform in [1e-3, 50], {args.trials} trials per dataset (circle, xor), medians of "
        f"{args.seeds} seeds"
    )
    for sampler in ("tpe", "random"):
        print(
            f"{sampler:>6}: diverged share in the second half {median(table[sampler]):5.1%} "
            f"(overall {median(overall[sampler]):5.1%})"
        )


if __name__ == "__main__":
    main()
