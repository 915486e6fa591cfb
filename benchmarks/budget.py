"""A time budget ends a sweep on time (issue 21): `sweep run playground --budget 60s --jobs 2`
with totals it cannot reach, in a fresh folder each run (default storage: the journal; MLflow's
default ./mlflow.db, or --no-mlflow), repeated ``--repeats`` times; medians.

For each run, from the storage and the clock: when the budget started (its deadline minus 60 s),
when the last trial finished and when the command exited, against the target: between 60 s and
60 s + one epoch of the slowest stack (the longest epoch any trial recorded), plus MLflow's tail
(the command's exit after the last trial). Every trial is accounted for: finished (complete,
pruned, diverged, cut) or failed, none running; with MLflow, one child run per finished trial.

    python benchmarks/budget.py [--budget 60] [--jobs 2] [--repeats 2] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

ENV = {**os.environ, "MLFLOW_TRACKING_URI": ""}


def one_run(budget: int, jobs: int, mlflow: bool) -> dict[str, float | int | str]:
    from studies.storage.opening import open_storage
    from studies.sweep import outcome_of

    with tempfile.TemporaryDirectory() as folder:
        args = ["run", "playground", "--budget", f"{budget}s", "--jobs", str(jobs), "--trials", "100000"]
        proc = subprocess.run(
            [sys.executable, "-m", "sweeps", *args, *([] if mlflow else ["--no-mlflow"])],
            cwd=folder,
            capture_output=True,
            text=True,
            env=ENV,
        )
        exited = time.time()
        if proc.returncode != 0:
            raise SystemExit(f"sweep {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        storage = open_storage(os.path.join(folder, "sweeps.journal"))
        studies = storage.get_all_studies()
        record = studies[0].user_attrs["budget"]
        start = record["deadline"] - record["seconds"]
        trials = [t for s in studies for t in storage.get_all_trials(s._study_id)]
        per_study = {s.study_name.split("/", 1)[1]: len(storage.get_all_trials(s._study_id)) for s in studies}
        outcomes = Counter(outcome_of(t) or "withdrawn" for t in trials)
        last = max(t.datetime_complete.timestamp() for t in trials if t.datetime_complete is not None)
        slowest = max(max(t.user_attrs["run"]["epoch_time"], default=0.0) for t in trials if "run" in t.user_attrs)
        runs = _child_runs(folder) if mlflow else None
        finished = sum(outcomes[o] for o in ("complete", "pruned", "diverged", "cut", "failed"))
    return {
        "last_trial": last - start,
        "exit": exited - start,
        "bound": record["seconds"] + slowest,
        "slowest_epoch": slowest,
        "tail": exited - last,
        "trials": len(trials),
        "running": outcomes["running"],
        "outcomes": ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
        "mlflow_runs": -1 if runs is None else runs,
        "finished": finished,
        "per_dataset": ", ".join(f"{k} {v}" for k, v in per_study.items()),
    }


def _child_runs(folder: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    exp = client.get_experiment_by_name("playground")
    runs = client.search_runs([exp.experiment_id], "tags.`sweeps.kind` = 'trial'", max_results=50000)
    return len(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-mlflow", action="store_true")
    a = parser.parse_args()
    results = []
    for i in range(a.repeats):
        r = one_run(a.budget, a.jobs, not a.no_mlflow)
        results.append(r)
        ok = a.budget <= r["last_trial"] <= r["bound"]
        print(
            f"run {i + 1}: last trial {r['last_trial']:.2f} s, exit {r['exit']:.2f} s after the budget started; "
            f"target {a.budget} s .. {r['bound']:.2f} s (slowest epoch {r['slowest_epoch']:.2f} s): "
            f"{'within' if ok else 'OUTSIDE by %.2f s' % (r['last_trial'] - r['bound'])}; tail {r['tail']:.1f} s"
        )
        runs = "" if r["mlflow_runs"] < 0 else f"; MLflow child runs {r['mlflow_runs']} of {r['finished']}"
        print(f"       trials {r['trials']}: {r['outcomes']}; running {r['running']}{runs}")
        print(f"       per dataset: {r['per_dataset']}")
    med = {k: statistics.median(float(r[k]) for r in results) for k in ("last_trial", "exit", "bound", "tail")}
    print(
        f"median of {len(results)}: last trial {med['last_trial']:.2f} s, exit {med['exit']:.2f} s, "
        f"bound {med['bound']:.2f} s, tail {med['tail']:.1f} s ({'MLflow on' if not a.no_mlflow else '--no-mlflow'}, "
        f"{a.jobs} jobs)"
    )


if __name__ == "__main__":
    main()
