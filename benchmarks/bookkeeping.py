"""Bookkeeping at the speed of training: what recording trials costs, next to training them.

Every figure times what users run, the whole ``sweep`` command in a fresh folder (a
subprocess), and runs the alternatives of each question interleaved in one run of this
script, so that the host's noise falls on all of them alike; medians of ``--repeats``.

  storage  the same sweep (4 playground sets x 64 trials, 50 epochs, 1 job, MLflow off) on
           PostgreSQL against the journal file, at --stack 1, 8 and 32 (target: PostgreSQL
           <= 1.5x the journal's time); then the storage's own cost per trial (seconds in
           storage calls, from the worker's counters) for a study's first 100 trials and for
           trials 1,900-2,000 (target: within 1.3x), on both.
  (MLflow on against off, batch 32 against 1, and the hand-written peer: benchmarks/mlflow_pace.py.)
  scale    2 workers against 1 on PostgreSQL (target >= 1.8x).

    python benchmarks/bookkeeping.py storage|scale|writer|all [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PG = os.environ.get("SWEEPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")

STORAGE_SWEEP = """
name = "bench"
datasets = ["circle", "xor", "gauss", "spiral"]
trials = {trials}
seed = 0
report_every = 1
stack = {batch}
jobs = {jobs}

[train]
epochs = {epochs}
batch_size = 10

[search]
learning_rate = {{ low = 1e-3, high = 10.0, log = true }}
hidden_layers = {{ low = 1, high = 3 }}
hidden_units = {{ low = 2, high = 8 }}
activation = ["sigmoid", "tanh", "relu"]
regularization = ["none", "l1", "l2"]
regularization_rate = {{ low = 1e-5, high = 0.1, log = true }}

[pruner]
name = "median"
n_startup_trials = 5
n_warmup_steps = 10
"""


def median(xs: list[float]) -> float:
    return statistics.median(xs)


class Postgres:
    """Fresh PostgreSQL databases, dropped at the end."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def _admin(self):
        import psycopg

        return psycopg.connect(f"{PG}/postgres", autocommit=True)

    def new(self) -> str:
        name = f"sweeps_bench_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return f"{PG}/{name}"

    def drop(self) -> None:
        with self._admin() as conn:
            for name in self.made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


def sweep(args: list[str], cwd: str, env: dict[str, str] | None = None) -> float:
    """Run ``sweep ARGS`` in ``cwd`` as users do; returns its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "sweeps", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def finished(storage: str, name: str) -> tuple[int, dict[str, float | None]]:
    from studies.storage.opening import open_storage
    from studies.sweep.summary import summarize

    summaries = summarize(open_storage(storage), name)
    return sum(s.finished for s in summaries), {s.dataset: s.best_value for s in summaries}


# -- storage -------------------------------------------------------------------------------------


def bench_storage(repeats: int) -> None:
    pg = Postgres()
    print("storage: 4 playground sets x 64 trials, 50 epochs, 1 job, MLflow off; whole `sweep run` commands")
    results: dict[tuple[int, str], list[float]] = {}
    try:
        for _ in range(repeats):
            for batch in (1, 8, 32):
                for kind in ("journal", "postgresql"):
                    with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
                        path = os.path.join(d, "bench.toml")
                        with open(path, "w") as f:
                            f.write(STORAGE_SWEEP.format(trials=64, batch=batch, jobs=1, epochs=50))
                        url = pg.new() if kind == "postgresql" else os.path.join(d, "sweeps.journal")
                        wall = sweep(["run", path, "--no-mlflow", "--storage", url], d)
                        n, _ = finished(url, "bench")
                        assert n == 256, n
                        results.setdefault((batch, kind), []).append(wall)
                        print(f"  batch {batch:2} {kind:10} {wall:6.2f} s", flush=True)
                pg.drop()
        print(
            f"\n{'batch':>5} {'journal s':>10} {'postgresql s':>13} {'ratio':>6}  (target <= 1.5x; medians "
            f"of {repeats})"
        )
        for batch in (1, 8, 32):
            j, p = median(results[batch, "journal"]), median(results[batch, "postgresql"])
            print(f"{batch:>5} {j:10.2f} {p:13.2f} {p / j:6.2f}")
        flat(pg)
    finally:
        pg.drop()


def flat(pg: Postgres) -> None:
    """Storage seconds per trial for trials 1-100 and 1,900-2,000 of one study (batch 32)."""
    from studies.execution.worker import WorkerTask, work
    from sweeps.spec import load_spec

    print("\nstorage cost per trial as a study grows (one study, batch 32, 20 epochs, worker in this process)")
    print(f"{'storage':>10} {'window':>12} {'ms/trial':>9} {'of which first read':>20} {'without it':>11}")
    for kind in ("journal", "postgresql"):
        with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
            path = os.path.join(d, "flat.toml")
            with open(path, "w") as f:
                f.write(
                    STORAGE_SWEEP.format(trials=100, batch=32, jobs=1, epochs=20).replace(
                        '["circle", "xor", "gauss", "spiral"]', '["circle"]'
                    )
                )
            url = pg.new() if kind == "postgresql" else os.path.join(d, "sweeps.journal")
            from studies.execution.runner import open_sweep
            from studies.storage.opening import open_storage

            per: dict[str, float] = {}
            marginal: dict[str, float] = {}
            for total, label in ((100, "1-100"), (1900, None), (2000, "1900-2000")):
                import dataclasses

                config = dataclasses.replace(load_spec(path), trials=total)
                open_sweep(config, open_storage(url))
                before = finished(url, "bench")[0]
                result = work(WorkerTask(url, config, 0))
                done = finished(url, "bench")[0] - before
                s = result.storage
                busy = s["flush_seconds"] + s["refresh_seconds"] + s["create_seconds"] + s["first_read_seconds"]
                if label:
                    per[label] = 1e3 * busy / done
                    marginal[label] = 1e3 * (busy - s["first_read_seconds"]) / done
                    print(
                        f"{kind:>10} {label:>12} {per[label]:9.2f} {1e3 * s['first_read_seconds'] / done:20.2f}"
                        f" {marginal[label]:11.2f}",
                        flush=True,
                    )
            print(
                f"{kind:>10} ratio 1900-2000 / 1-100: {per['1900-2000'] / per['1-100']:.2f} (target <= 1.3); "
                f"without the worker's one first read of the study: "
                f"{marginal['1900-2000'] / marginal['1-100']:.2f}"
            )


# -- writer --------------------------------------------------------------------------------------


def bench_writer(repeats: int) -> None:
    """Runs per second one MLflow writer sustains into an `mlflow server` backed by PostgreSQL,
    against the trials per second one host finishes (batch 32, MLflow off)."""
    import socket
    import urllib.request

    from studies.execution.processes import stop_tree
    from studies.storage.adaptor import SweepStorage
    from studies.storage.opening import open_storage
    from studies.tracking.tracker import Tracker

    pg = Postgres()
    print("writer: one MLflow writer into `mlflow server` (PostgreSQL backend, 4 workers) against one host's trials")
    try:
        with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    pg.new(),
                    "--artifacts-destination",
                    os.path.join(d, "art"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "4",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    try:
                        if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                            break
                    except OSError:
                        time.sleep(0.5)
                rates, hosts = [], []
                for i in range(repeats):
                    path = os.path.join(d, f"w{i}.toml")
                    with open(path, "w") as f:
                        f.write(
                            STORAGE_SWEEP.format(trials=100, batch=32, jobs=2, epochs=50).replace(
                                'name = "bench"', f'name = "w{i}"'
                            )
                        )
                    journal = os.path.join(d, f"w{i}.journal")
                    wall = sweep(["run", path, "--no-mlflow", "--storage", journal], d)
                    hosts.append(400 / wall)
                    tracker = Tracker(f"w{i}", f"http://127.0.0.1:{port}")
                    view = SweepStorage(open_storage(journal))
                    tracker.mlflow.connect()  # the connection is not a per-run cost
                    t0 = time.perf_counter()
                    n = tracker.sync(view, final=True)
                    rates.append(n / (time.perf_counter() - t0))
                    print(f"  host {hosts[-1]:.1f} trials/s; writer {n} runs at {rates[-1]:.1f} runs/s", flush=True)
            finally:
                stop_tree(server.pid)
        print(
            f"\none writer into mlflow server/PostgreSQL: {median(rates):.1f} runs/s; one 2-core host finishes "
            f"{median(hosts):.1f} trials/s (batch 32, MLflow off, 50 epochs): one writer keeps up with "
            f"{median(rates) / median(hosts):.2f} such hosts"
        )
    finally:
        pg.drop()


# -- scale ---------------------------------------------------------------------------------------


def bench_scale(repeats: int) -> None:
    pg = Postgres()
    print("scale: 4 playground sets x 128 trials, 50 epochs, batch 8, MLflow off, on PostgreSQL: 2 jobs against 1")
    walls: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(repeats):
            for jobs in (1, 2):
                with tempfile.TemporaryDirectory(prefix="sweeps-bench-") as d:
                    path = os.path.join(d, "bench.toml")
                    with open(path, "w") as f:
                        f.write(STORAGE_SWEEP.format(trials=128, batch=8, jobs=jobs, epochs=50))
                    url = pg.new()
                    wall = sweep(["run", path, "--no-mlflow", "--storage", url], d)
                    walls[jobs].append(wall)
                    print(f"  jobs {jobs}: {wall:6.2f} s = {60 * 512 / wall:6.0f} trials/min", flush=True)
            pg.drop()
    finally:
        pg.drop()
    print(f"\n2 workers / 1 on PostgreSQL: {median(walls[1]) / median(walls[2]):.2f}x (target >= 1.8x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("storage", "scale", "writer", "all"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = {"storage": bench_storage, "scale": bench_scale, "writer": bench_writer}
    for name, fn in table.items():
        if args.what in (name, "all"):
            fn(args.repeats)
            print(json.dumps({"done": name}), flush=True)


if __name__ == "__main__":
    main()
