"""MLflow keeps pace with the search (issue 18): whole `sweep` commands as users run them, in a
fresh folder each (default storage: the journal; MLflow's default: ./mlflow.db), the
alternatives of each question interleaved in one run of this script; medians of ``--repeats``.

  onoff    `sweep run playground --trials 100 --jobs J` with MLflow on against --no-mlflow, J = 1
           and 2 (targets: >= 0.9x and >= 0.75x the trials/min); every finished trial has its
           child run, each curve with its first, last, best and every stride epoch; the tail.
  cpu      MLflow CPU per logged trial: an empty run through MlflowClient (create with tags,
           params, terminate) against ours (target <= 2x), runs alone and with the parents'
           updates, figures and curves files; and at 50, 100 and every point per curve (the
           measurement behind the default of 50).
  batch    --stack 32 against --stack 1, whole command, MLflow on (target >= 3x the trials/min
           at no worse best validation cost).
  peer     against the hand-written peer (Optuna n_jobs=2 + optuna-integration's MLflowCallback +
           scikit-learn's MLPClassifier), whole processes, MLflow on, 100 trials per set (target >= 20x).
  tail     `sweep run playground` (the README's first command): from the last trial's completion
           time in the storage to the command's exit (target <= 2 s median).
  imports  `python -X importtime -m sweeps --help`: no optuna, mlflow or matplotlib (target);
           the wall time of `sweep --help`, `sweep presets` and `sweep status`.

    python benchmarks/mlflow_pace.py onoff|cpu|batch|peer|tail|imports|all [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {**os.environ, "MLFLOW_TRACKING_URI": ""}
HEAVY = ("optuna", "mlflow", "matplotlib")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def sweep(args: list[str], cwd: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``sweep ARGS`` in ``cwd``; returns (wall seconds, the time.time() it exited, the process)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, capture_output=True, text=True, env=ENV)
    wall, ended = time.perf_counter() - t0, time.time()
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, ended, proc


def _trials(folder: str, name: str):
    from studies.storage.opening import open_storage
    from studies.sweep.summary import find_sweep

    storage = open_storage(os.path.join(folder, "sweeps.journal"))
    return [(s, storage.get_all_trials(s.study_id)) for s in find_sweep(storage, name)]


def last_completion(folder: str, name: str) -> float:
    """The time.time() of the last trial's completion, as the storage recorded it."""
    stamps = [t.datetime_complete for _, trials in _trials(folder, name) for t in trials if t.datetime_complete]
    return max(stamps).timestamp() if stamps else 0.0


def check_runs(folder: str, name: str) -> int:
    """Every finished trial has its child run with the stride's epochs, first, last and best: the
    number of runs checked (raises if one is missing or short)."""
    from mlflow.tracking import MlflowClient

    from studies.sweep.curves import best_epoch, curve_stride, epochs_to_log
    from studies.sweep.outcomes import FINISHED, outcome_of

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    exp = client.get_experiment_by_name(name)
    runs = {
        (r.data.tags["sweeps.study"], int(r.data.tags["trial_number"])): r
        for r in client.search_runs([exp.experiment_id], "tags.`sweeps.kind` = 'trial'", max_results=50000)
    }
    checked = 0
    for study, trials in _trials(folder, name):
        stride = curve_stride(study.sweep.space.max_epochs(), study.sweep.curve_points)
        for t in trials:
            if outcome_of(t) not in FINISHED:
                continue
            run = runs[(study.name, t.number)]  # KeyError: a finished trial without its run
            curves = t.user_attrs["run"]["curves"]
            want = set(
                epochs_to_log(len(curves["val_cost"]), stride=stride, marks=(best_epoch(curves, study.objectives),))
            )
            got = {m.step for m in client.get_metric_history(run.info.run_id, "val_cost")}
            if not want <= got:
                raise SystemExit(f"trial {t.number} of {study.name}: MLflow lacks epochs {sorted(want - got)}")
            checked += 1
    return checked


# -- onoff ---------------------------------------------------------------------------------------


def bench_onoff(repeats: int) -> None:
    print("onoff: `sweep run playground --trials 100 --jobs J`, MLflow on and off (whole commands)")
    walls: dict[tuple[int, bool], list[float]] = {}
    tails: list[float] = []
    for _ in range(repeats):
        for jobs in (1, 2):
            for track in (False, True):
                with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
                    args = ["run", "playground", "--trials", "100", "--jobs", str(jobs)] + (
                        [] if track else ["--no-mlflow"]
                    )
                    wall, ended, _ = sweep(args, d)
                    walls.setdefault((jobs, track), []).append(wall)
                    state = "on " if track else "off"
                    line = f"  jobs {jobs} MLflow {state} {wall:6.2f} s = {60 * 400 / wall:5.0f} trials/min"
                    if track:
                        tails.append(ended - last_completion(d, "playground"))
                        line += f"; tail {tails[-1]:.2f} s; {check_runs(d, 'playground')} runs checked"
                    print(line, flush=True)
    print(f"\n{'jobs':>4} {'off trials/min':>15} {'on trials/min':>14} {'on/off':>7}  target   (medians of {repeats})")
    for jobs, target in ((1, 0.9), (2, 0.75)):
        off, on = median(walls[jobs, False]), median(walls[jobs, True])
        print(f"{jobs:>4} {60 * 400 / off:15.0f} {60 * 400 / on:14.0f} {off / on:7.2f}  >= {target}")
    print(f"tail (last trial's completion to exit, MLflow on): median {median(tails):.2f} s, max {max(tails):.2f} s")


# -- cpu -----------------------------------------------------------------------------------------


def _empty(folder: str, n: int = 200) -> float:
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    from studies.tracking import sqlite as mlflow_sqlite

    uri = f"sqlite:///{folder}/empty.db"
    mlflow_sqlite.tune(uri)  # the same SQLite settings as ours
    client = MlflowClient(uri)
    exp = client.create_experiment("empty")
    t0 = time.process_time()
    for i in range(n):
        run = client.create_run(exp, tags={f"tag{j}": "x" for j in range(8)}, run_name=f"t{i}")
        client.log_batch(run.info.run_id, params=[Param(f"p{j}", "1") for j in range(12)])
        client.set_terminated(run.info.run_id, "FINISHED")
    return 1e3 * (time.process_time() - t0) / n


def _at_points(folder: str, points: int | str) -> str:
    """A copy of the finished playground sweep in ``folder`` whose stored sweep asks for ``points``
    per curve (re-running its file with another [mlflow] table adds no trial: a resumable key)."""
    import shutil
    from importlib import resources

    copy = tempfile.mkdtemp(prefix="sweeps-bench-", dir=folder)
    shutil.copy(os.path.join(folder, "sweeps.journal"), copy)
    text = resources.files("sweeps.presets").joinpath("playground.toml").read_text()
    value = f'"{points}"' if isinstance(points, str) else str(points)
    with open(os.path.join(copy, "playground.toml"), "w") as f:
        f.write(text + f"\n[mlflow]\ncurve_points = {value}\n")
    sweep(["run", "playground.toml", "--trials", "100", "--no-mlflow"], copy)
    return os.path.join(copy, "sweeps.journal")


def _ours(journal: str, folder: str, *, dashboard: bool) -> float:
    """CPU ms per run of our tracker writing the finished trials of ``journal``: every run, the
    parents, and with ``dashboard`` their descriptions, figures, curves files and views."""
    from studies.storage.adaptor import SweepStorage
    from studies.storage.opening import open_storage
    from studies.tracking.tracker import Tracker

    tracker = Tracker("playground", f"sqlite:///{folder}/ours-{time.monotonic_ns()}.db", dashboard=dashboard)
    tracker.mlflow.connect()  # the connection (imports, tables) is not a per-trial cost
    view = SweepStorage(open_storage(journal))
    t0 = time.process_time()
    created = tracker.sync(view, final=True)
    return 1e3 * (time.process_time() - t0) / max(created, 1)


def bench_cpu(repeats: int) -> None:
    print(
        "cpu: MLflow CPU per logged trial (playground, 100 trials per set, 200 epochs), ours against an empty "
        "run through MlflowClient"
    )
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
        sweep(["run", "playground", "--trials", "100", "--no-mlflow"], d)
        journals = {points: _at_points(d, points) for points in (50, 100, "all")}
        for i in range(repeats):
            with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as m:
                rows.setdefault("empty run", []).append(_empty(m))
                for points, journal in journals.items():
                    rows.setdefault(f"ours, runs only, {points} points per curve", []).append(
                        _ours(journal, m, dashboard=False)
                    )
                rows.setdefault("ours, all-in (parents, figures, curves file), 50 points", []).append(
                    _ours(journals[50], m, dashboard=True)
                )
            print(f"  repeat {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items()), flush=True)
    empty = median(rows["empty run"])
    print(f"\n{'':58} {'ms/run':>7} {'x empty':>8}   (medians of {repeats}; target <= 2x)")
    for k, v in rows.items():
        print(f"{k:58} {median(v):7.1f} {median(v) / empty:8.2f}")


# -- batch ---------------------------------------------------------------------------------------


def bench_batch(repeats: int) -> None:
    print("batch: `sweep run playground --trials 100`, --stack 32 against --stack 1, MLflow on, journal")
    walls: dict[int, list[float]] = {1: [], 32: []}
    best: dict[int, list[dict]] = {1: [], 32: []}
    for _ in range(repeats):
        for batch in (1, 32):
            with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
                wall, _, _ = sweep(["run", "playground", "--trials", "100", "--stack", str(batch)], d)
                b = {
                    s.dataset: min((t.value for t in trials if t.value is not None), default=None)
                    for s, trials in _trials(d, "playground")
                }
                walls[batch].append(wall)
                best[batch].append(b)
                print(
                    f"  stack {batch:2} {wall:6.2f} s = {60 * 400 / wall:6.0f} trials/min  best "
                    + " ".join(f"{k} {v:.4f}" for k, v in b.items()),
                    flush=True,
                )
    one, many = median(walls[1]), median(walls[32])
    print(f"\n--stack 32 / --stack 1 trials/min: {one / many:.2f}x (target >= 3x; medians of {repeats})")
    for ds in best[1][0]:
        print(
            f"  best val cost {ds:7}: batch 1 {median([b[ds] for b in best[1]]):.4f}, "
            f"batch 32 {median([b[ds] for b in best[32]]):.4f} (medians)"
        )


# -- peer ----------------------------------------------------------------------------------------


def bench_peer(repeats: int) -> None:
    print("peer: 100 trials per playground set, MLflow on for both, whole processes, default storage")
    ours, theirs = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
            wall, _, _ = sweep(["run", "playground", "--trials", "100"], d)
            ours.append(60 * 400 / wall)
        with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, os.path.join(HERE, "sweep_vs_handwritten.py"), "--only-peer", "--trials", "100"],
                cwd=d,
                capture_output=True,
                text=True,
                env=ENV,
            )
            wall = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            theirs.append(60 * 400 / wall)
        print(f"  sweeps {ours[-1]:7.0f} trials/min, hand-written {theirs[-1]:7.0f} trials/min", flush=True)
    print(f"\nsweeps / hand-written: {median(ours) / median(theirs):.1f}x (target >= 20x; medians of {repeats})")


# -- tail ----------------------------------------------------------------------------------------


def bench_tail(repeats: int) -> None:
    print("tail: `sweep run playground` (50 trials per set, MLflow on): last trial's completion to the command's exit")
    tails, walls = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
            wall, ended, proc = sweep(["run", "playground"], d)
            tails.append(ended - last_completion(d, "playground"))
            walls.append(wall)
            waited = [line for line in proc.stderr.splitlines() if line.startswith("MLflow: ") and "to write" in line]
            print(
                f"  {wall:6.2f} s in all; tail {tails[-1]:.2f} s" + (f" ({waited[-1]})" if waited else ""), flush=True
            )
    print(
        f"\ntail: median {median(tails):.2f} s, max {max(tails):.2f} s (target <= 2 s median); "
        f"whole command median {median(walls):.1f} s"
    )


# -- imports -------------------------------------------------------------------------------------


def bench_imports(repeats: int) -> None:
    print("imports: what `sweep --help` imports, and how long the light commands take")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sweeps", "--help"], capture_output=True, text=True, env=ENV
    )
    modules = [m.group(2).strip() for m in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|(.*)", proc.stderr)]
    heavy = sorted({m.split(".")[0] for m in modules if m.strip().split(".")[0] in HEAVY})
    total = sum(int(m.group(1)) for m in re.finditer(r"import time:\s+(\d+) \|", proc.stderr))
    print(
        f"  sweep --help imports {len(modules)} modules in {total / 1e6:.2f} s; heavy among them: "
        f"{heavy or 'none'} (target: none of {list(HEAVY)})"
    )
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
        sweep(["run", "playground", "--trials", "5", "--no-mlflow"], d)
        for args in (["--help"], ["presets"], ["status", "playground"]):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=d, capture_output=True, env=ENV, check=True)
                times.append(time.perf_counter() - t0)
            print(f"  sweep {' '.join(args):20} {median(times):.2f} s (median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("onoff", "cpu", "batch", "peer", "tail", "imports", "all"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {datetime.date.today()}, {os.cpu_count()} CPUs", flush=True)
    table = {
        "onoff": bench_onoff,
        "cpu": bench_cpu,
        "batch": bench_batch,
        "peer": bench_peer,
        "tail": bench_tail,
        "imports": bench_imports,
    }
    for name, fn in table.items():
        if args.what in (name, "all"):
            fn(args.repeats)
            print(json.dumps({"done": name}), flush=True)


if __name__ == "__main__":
    main()
