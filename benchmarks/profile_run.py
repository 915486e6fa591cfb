"""A sampling profile of a whole `sweep run` (every process: launcher, workers, MLflow's
writer), with py-spy, summarized: where each process spends its samples, by area.

    python benchmarks/profile_run.py [-- sweep run arguments]   # default: playground --trials 100 --jobs 1
    python benchmarks/profile_run.py --storage postgresql://postgres@127.0.0.1:5432/db -- playground --trials 50

Needs py-spy (``pip install py-spy``, in the ``bench`` extra). The raw profile (one line per
stack) is kept as ``profile.txt`` in the run's folder, printed at the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Areas, tried in this order on each sampled stack (the first that matches takes the sample).
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("MLflow", ("mlflow/", "studies/tracking/tracker.py", "studies/mlflow_")),
    ("start-up (imports)", ("<frozen importlib._bootstrap",)),
    ("training (engine)", ("engine/",)),
    ("sampling (TPE)", ("optuna/samplers", "studies/search/samplers.py", "studies/sweep/space.py")),
    ("pruning", ("optuna/pruners", "Reporter")),
    (
        "storage",
        (
            "studies/storage/adaptor.py",
            "studies/_optuna_compat/",
            "optuna/storages",
            "studies/storage/journal.py",
            "sqlalchemy/",
            "psycopg/",
            "studies/execution/heartbeat.py",
        ),
    ),
    ("progress and polling", ("studies/execution/runner.py", "studies/sweep/summary.py", "sweeps/display.py")),
]


def _process(frame: str) -> str:
    m = re.match(r'process (\d+):"(.*)"', frame)
    if not m:
        return frame
    cmd = m.group(2)
    for name, key in (
        ("worker", "LokyProcess"),
        ("MLflow writer", "spawn_main"),
        ("loky resource tracker", "resource_tracker"),
    ):
        if key in cmd:
            return f"{name} (pid {m.group(1)})"
    return f"launcher (pid {m.group(1)})"


def summarize(path: str) -> str:
    per: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    totals: collections.Counter = collections.Counter()
    for line in open(path):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        procs = [i for i, f in enumerate(frames) if f.startswith("process ")]
        proc = _process(frames[procs[-1]]) if procs else "?"
        frames = frames[procs[-1] + 1 :] if procs else frames
        area = next((a for a, keys in AREAS if any(k in f for f in frames for k in keys)), "other")
        per[proc][area] += int(n)
        totals[proc] += int(n)
    grand = sum(totals.values())
    out = [f"{grand} samples in all"]
    for proc, n in totals.most_common():
        out.append(f"\n{proc}: {n} samples ({n / grand:.0%} of all)")
        for area, k in per[proc].most_common():
            out.append(f"  {k / n:6.1%}  {area}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--storage", default=None, help="the run's --storage")
    parser.add_argument("args", nargs="*", help="arguments of `sweep run` (after --)")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is needed: pip install py-spy")
    run_args = args.args or ["playground", "--trials", "100", "--jobs", "1"]
    if args.storage:
        run_args += ["--storage", args.storage]
    folder = tempfile.mkdtemp(prefix="sweeps-profile-")
    raw = os.path.join(folder, "profile.txt")
    cmd = [
        spy,
        "record",
        "--subprocesses",
        "-r",
        str(args.rate),
        "-f",
        "raw",
        "-o",
        raw,
        "--",
        sys.executable,
        "-m",
        "sweeps",
        "run",
        *run_args,
    ]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(raw):
        raise SystemExit(done.stderr[-3000:])
    print(f"sweep run {' '.join(run_args)}  (folder {folder})\n")
    print(summarize(raw))
    print(f"\nraw profile: {raw}")


if __name__ == "__main__":
    main()
