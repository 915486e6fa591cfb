"""Time budgets across processes: two commands sharing one deadline (PostgreSQL, the journal), and a
budgeted sweep killed in the middle then resumed with a new budget.

The budgets are short and the totals out of reach, so the budget is what ends each command;
the timeouts only catch a hang. No test asserts how fast anything is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from studies.sweep import BUDGET_ATTR, outcome_of

pytestmark = [pytest.mark.slow]

HANG = 300.0


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeps", *args]


def _storage(url: str) -> optuna.storages.BaseStorage:
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def _studies(url: str) -> list[optuna.Study]:
    storage = _storage(url)
    return [optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()]


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


def _finished(url: str) -> int:
    return sum(1 for s in _studies(url) for t in s.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED))


def _long_sweep(sweep_file, name: str, jobs: int) -> str:
    # Totals no budget reaches: the budget ends the sweep.
    path = sweep_file(name, trials=5000, jobs=jobs, epochs=150)
    return str(path)


def _accounted(url: str, total: int) -> list[optuna.trial.FrozenTrial]:
    """Every trial finished or failed (none left running), the studies short of their total."""
    trials = [t for s in _studies(url) for t in s.get_trials()]
    assert not [t for t in trials if t.state == TrialState.RUNNING]  # a retry may wait for the next run
    for s in _studies(url):
        assert sum(1 for t in s.get_trials() if outcome_of(t) in ("complete", "pruned", "cut")) < total
    return trials


@pytest.mark.parametrize("kind", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_processes_share_one_budget(sweep_file, tmp_path, request, kind):
    url = request.getfixturevalue("pg_database")() if kind == "postgres" else str(tmp_path / "sweeps.journal")
    path = _long_sweep(sweep_file, "shared", jobs=1)
    run = subprocess.Popen(
        sweep_cmd("run", path, "--storage", url, "--no-mlflow", "--budget", "40s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: (kind == "postgres" or os.path.exists(url)) and len(_studies(url)) == 2)
    # The second host's worker has no budget of its own: it keeps the one in the storage.
    worker = subprocess.run(
        sweep_cmd("worker", "shared", "--storage", url, "--jobs", "1"), capture_output=True, text=True, timeout=HANG
    )
    out, err = run.communicate(timeout=HANG)
    assert run.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    trials = _accounted(url, 5000)
    records = [s.user_attrs[BUDGET_ATTR] for s in _studies(url)]
    assert records[0]["seconds"] == 40.0 and all(r == records[0] for r in records)
    # both processes trained trials of the sweep
    pids = {t.user_attrs.get("worker", {}).get("pid") for t in trials if outcome_of(t) in ("complete", "pruned", "cut")}
    assert len(pids) >= 2, worker.stdout + worker.stderr
    cut = [t for t in trials if outcome_of(t) == "cut"]
    assert cut and {t.user_attrs["cut"] for t in cut} == {"budget"}
    assert all(0 < len(t.user_attrs["run"]["curves"]["train_cost"]) < 150 for t in cut)
    status = subprocess.run(sweep_cmd("status", "shared", "--storage", url), capture_output=True, text=True)
    assert "budget 40s from" in status.stdout and "cut short:" in status.stdout, status.stdout


def test_a_budgeted_sweep_killed_in_the_middle_resumes_with_a_new_budget(sweep_file, tmp_path):
    url = str(tmp_path / "sweeps.journal")
    path = _long_sweep(sweep_file, "killed", jobs=2)
    run = subprocess.Popen(
        sweep_cmd("run", path, "--storage", url, "--no-mlflow", "--budget", "10m"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: os.path.exists(url) and _finished(url) >= 3)
    os.killpg(run.pid, signal.SIGKILL)  # the launcher and its workers, as a machine that dies
    run.wait()
    before = _finished(url)
    first = _studies(url)[0].user_attrs[BUDGET_ATTR]
    assert first["seconds"] == 600.0
    again = subprocess.run(
        sweep_cmd("run", path, "--storage", url, "--no-mlflow", "--budget", "30s"),
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert again.returncode == 0, again.stderr
    trials = _accounted(url, 5000)
    record = _studies(url)[0].user_attrs[BUDGET_ATTR]
    assert record["seconds"] == 30.0 and record["deadline"] > first["deadline"] - 600.0
    assert _finished(url) > before  # the new budget continued the sweep
    assert [t for t in trials if outcome_of(t) == "cut"]
    assert "budget 30s from" in again.stdout
