"""Several processes opening a fresh PostgreSQL database at once: Optuna's schema is created
once, by one of them, and every one of them works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Each process imports everything first, says so, then waits for the go file: they open at once.
_OPEN_AT_ONCE = """
import os, sys, time
from studies.storage.opening import open_storage
import optuna, sqlalchemy, psycopg
go, url = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
storage = open_storage(url)
print(len(storage.get_all_studies()))
"""


def test_processes_opening_a_fresh_database_at_once_all_succeed(pg_database, tmp_path):
    for attempt in range(3):
        url = pg_database()
        go = tmp_path / f"go{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT_ONCE, str(go), url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        try:
            for p in procs:  # every one has imported
                assert p.stdout.readline().strip() == "ready", p.communicate(timeout=120)[1][-2000:]
            go.touch()
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0, err[-2000:]
                assert out.strip() == "0"
        finally:  # a failure leaves no process polling for the go file
            go.touch()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()


def test_three_sweep_runs_started_together_on_a_fresh_database(sweep_file, pg_database):
    url = pg_database()
    path = sweep_file("together", trials=3, jobs=1, epochs=2)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sweeps", "run", str(path), "--storage", url, "--no-mlflow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    status = subprocess.run(
        [sys.executable, "-m", "sweeps", "status", "together", "--storage", url, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert status.returncode == 0, status.stderr
    assert [s["finished"] for s in json.loads(status.stdout)["studies"]] == [3, 3]
