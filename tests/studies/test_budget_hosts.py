"""Time budgets across processes, on the journal and on PostgreSQL: a budgeted `sweep run` and a
`sweep worker` on another host share the deadline kept in the storage; the run is killed in the
middle (the launcher and its workers, as a machine that dies) and resumed with a new budget,
which the worker still running follows too.

Epochs are slowed down by the test hook (SWEEPS_TEST_SLOW_EPOCH), so that each takes at least a
known time: trials outlast the budget, the new budget is what ends the resumed run and the
worker, and an epoch trained past the deadline shows in the count of epochs. The timeouts only catch a hang. No
test asserts how fast anything is.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from studies.execution.processes import descendants, stop_tree
from studies.sweep import BUDGET_ATTR, outcome_of
from sweeps.cli import cli

pytestmark = [pytest.mark.slow]

HANG = 300.0
EPOCHS = 150
SLOW_EPOCH = 0.1  # seconds at least per epoch: a trial lasts >= 15 s, longer than the budget
BUDGET = 5  # the resumed run's: the worker still running is training when it is written
FINISHED = ("complete", "pruned", "cut")
# On PostgreSQL a worker with nothing left to ask waits for other hosts' running trials, up to two
# grace periods once they stop changing: a trial the killed run asked and never started would
# hold every command a minute past the deadline with the default 30 s grace.
HEARTBEAT = ("--heartbeat-interval", "1", "--grace-period", "5")


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeps", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["SWEEPS_TEST_SLOW_EPOCH"] = str(SLOW_EPOCH)
    return env


def _storage(url: str) -> optuna.storages.BaseStorage:
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def _studies(url: str) -> list[optuna.Study]:
    if "://" not in url and not os.path.exists(url):
        return []
    storage = _storage(url)
    return [optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()]


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return [t for s in _studies(url) for t in s.get_trials()]


def _key(t: optuna.trial.FrozenTrial) -> int:
    return t._trial_id  # unique in the storage, whatever the study


def _pid(t: optuna.trial.FrozenTrial) -> int | None:
    return t.user_attrs.get("worker", {}).get("pid")


def _wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("kind", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_run_and_a_worker_share_one_budget_through_a_kill_and_a_resume(sweep_file, tmp_path, request, kind):
    url = request.getfixturevalue("pg_database")() if kind == "postgres" else str(tmp_path / "sweeps.journal")
    path = str(sweep_file("shared", trials=5000, jobs=2, epochs=EPOCHS))  # totals no budget reaches
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": _env()}
    first = subprocess.Popen(
        sweep_cmd("run", path, "--storage", url, "--no-mlflow", "--budget", "10m", *HEARTBEAT),
        start_new_session=True,
        **pipes,
    )
    request.addfinalizer(lambda: _kill_group(first))  # a failure leaves no 10-minute run behind
    _wait_for(lambda: len(_studies(url)) == 2 and all(BUDGET_ATTR in s.user_attrs for s in _studies(url)))
    # The second host's worker has no budget of its own: it keeps the one in the storage.
    worker = subprocess.Popen(sweep_cmd("worker", "shared", "--storage", url, "--jobs", "1", *HEARTBEAT), **pipes)
    request.addfinalizer(lambda: stop_tree(worker.pid) if worker.poll() is None else None)
    mine: dict[str, set[int]] = {"first": set(), "worker": set()}

    def both_training() -> bool:  # a trial in training from each host, told apart by their parents
        mine["first"] |= set(descendants(first.pid))
        mine["worker"] |= set(descendants(worker.pid))
        running = {_pid(t) for t in _trials(url) if t.state == TrialState.RUNNING}
        return bool(running & mine["first"]) and bool(running & mine["worker"])

    _wait_for(both_training)
    os.killpg(first.pid, signal.SIGKILL)  # the launcher and its workers, as a machine that dies
    first.wait()
    running = [t for t in _trials(url) if t.state == TrialState.RUNNING]
    killed = {_key(t) for t in running if _pid(t) in mine["first"]}
    assert killed
    # Asked by the killed run but never started (no worker record yet): the product leaves these to
    # a run that finds them a minute old, as it can't tell them from a live worker's just asked.
    unstarted = {_key(t) for t in running if _pid(t) is None}
    before = {_key(t) for t in _trials(url) if outcome_of(t) in FINISHED}
    old = _studies(url)[0].user_attrs[BUDGET_ATTR]
    assert old["seconds"] == 600.0

    again = subprocess.run(
        sweep_cmd("run", path, "--storage", url, "--no-mlflow", "--budget", f"{BUDGET}s", *HEARTBEAT),
        timeout=HANG,
        **pipes,
    )
    assert again.returncode == 0, again.stderr
    assert f"budget {BUDGET}s from" in again.stdout
    out, err = worker.communicate(timeout=HANG)  # the new deadline ends the worker too
    assert worker.returncode == 0, err

    trials = _trials(url)
    # Every trial accounted for: none left running (but those never started), the killed run's
    # failed, the studies short of their total.
    left = [t for t in trials if t.state == TrialState.RUNNING]
    assert {_key(t) for t in left} <= unstarted, [(t.number, t.user_attrs) for t in left]
    assert all(outcome_of(t) == "failed" for t in trials if _key(t) in killed)
    for s in _studies(url):
        assert sum(1 for t in s.get_trials() if outcome_of(t) in FINISHED) < 5000
    # One budget, the resumed run's, in every study: it replaced the killed run's.
    records = [s.user_attrs[BUDGET_ATTR] for s in _studies(url)]
    new = records[0]
    assert new["seconds"] == float(BUDGET) and all(r == new for r in records)
    assert new["deadline"] - BUDGET > old["deadline"] - 600.0
    cut = [t for t in trials if outcome_of(t) == "cut"]
    assert cut and {t.user_attrs["cut"] for t in cut} == {"budget"}
    # The worker kept the deadline in the storage: the sweep went on after the kill, and the new
    # budget cut the worker's trials (the resumed run's own may start too late to train on a busy
    # machine: what it must do is write the budget, fail the killed run's trials and end with it).
    assert [t for t in cut if _pid(t) in mine["worker"] and _key(t) not in before], out + err
    # Nothing trained more than one epoch past the deadline: each epoch takes SLOW_EPOCH at least,
    # so a trial that started at t has trained at most (deadline - t) / SLOW_EPOCH epochs by then.
    for t in cut:
        epochs = len(t.user_attrs["run"]["curves"]["train_cost"])
        started = t.datetime_start.timestamp()
        assert 0 < epochs < EPOCHS
        assert epochs <= math.floor((new["deadline"] - started) / SLOW_EPOCH) + 1, (t.number, epochs)
    status = CliRunner().invoke(cli, ["status", "shared", "--storage", url])
    assert status.exit_code == 0, status.output
    assert f"budget {BUDGET}s from" in status.output and "cut short:" in status.output, status.output
