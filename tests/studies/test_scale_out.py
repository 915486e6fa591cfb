"""Scale-out and faults against the machine's real PostgreSQL: several worker processes and
hosts' commands on one sweep, killed workers, interrupts, contention."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from studies.execution.processes import descendants

pytestmark = [pytest.mark.slow]


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweeps", *args]


def _studies(url: str) -> dict[str, optuna.Study]:
    storage = (
        optuna.storages.RDBStorage(url)
        if "://" in url
        else optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
    )
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()
    }


def _counts(url: str) -> dict[str, tuple[int, int]]:
    out = {}
    for name, study in _studies(url).items():
        states = Counter(t.state for t in study.get_trials())
        out[name] = (states[TrialState.COMPLETE] + states[TrialState.PRUNED], states[TrialState.RUNNING])
    return out


def _wait_for(predicate, timeout: float = 90.0, every: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out")


def _no_duplicates(url: str) -> None:
    for study in _studies(url).values():
        numbers = [t.number for t in study.get_trials()]
        assert len(numbers) == len(set(numbers))


def _env(slow_epoch: float | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SWEEPS_TEST_SLOW_EPOCH"}
    if slow_epoch:
        env["SWEEPS_TEST_SLOW_EPOCH"] = str(slow_epoch)  # training lasts, whatever the machine's speed
    return env


@pytest.mark.postgres
def test_four_workers_on_two_hosts_commands_reach_the_exact_total(sweep_file, pg_database):
    url = pg_database()
    # The first command's trials last a second each (the slow-epoch hook): alone it would take
    # half a minute, so the second command, at full speed, joins while it still works however
    # loaded the machine, and then does most of the rest.
    path = sweep_file("many", trials=30, jobs=2, epochs=10)
    # One trial at a time per worker: the first command does not claim the rest ahead.
    path.write_text(path.read_text().replace("trials = 30", "trials = 30\nbatch = 1"))
    run = subprocess.Popen(
        sweep_cmd("run", str(path), "--storage", url, "--no-mlflow"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(slow_epoch=0.1),
    )
    _wait_for(lambda: len(_studies(url)) == 2)
    worker = subprocess.run(
        sweep_cmd("worker", "many", "--storage", url, "--jobs", "2"),
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    assert _counts(url) == {"many/circle": (30, 0), "many/xor": (30, 0)}
    _no_duplicates(url)
    # Both commands did work: trials come from at least three distinct worker processes.
    pids = {
        t.user_attrs["worker"]["pid"]
        for s in _studies(url).values()
        for t in s.get_trials()
        if "worker" in t.user_attrs
    }
    assert len(pids) >= 3


def _asking(url: str) -> bool:
    """Whether some worker is inside an ask (a RUNNING trial without its "worker" record yet)."""
    return any(
        "worker" not in t.user_attrs for s in _studies(url).values() for t in s.get_trials(states=(TrialState.RUNNING,))
    )


def _running_pids(url: str, exclude: set[int]) -> set[int]:
    return {
        t.user_attrs["worker"]["pid"]
        for s in _studies(url).values()
        for t in s.get_trials(states=(TrialState.RUNNING,))
        if "worker" in t.user_attrs
    } - exclude


@pytest.mark.postgres
def test_sigkilled_host_is_failed_by_the_heartbeat_and_retried(sweep_file, pg_database):
    url = pg_database()
    path = sweep_file("hb", trials=6, jobs=1, epochs=800)  # long enough for the second host to join
    # Two stacked trials per worker: each host holds some of the trials (heartbeats per trial).
    path.write_text(path.read_text().replace("trials = 6", "trials = 6\nbatch = 2"))
    hb = ["--heartbeat-interval", "1", "--grace-period", "3"]
    run = subprocess.Popen(
        sweep_cmd("run", str(path), "--storage", url, "--no-mlflow", *hb),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its stacks that do not diverge last 8 s or more (the slow-epoch hook), on a machine of any
        # speed, and it holds one at a time: it can't take every trial before the second host has joined.
        env=_env(0.01),
    )
    _wait_for(lambda: len(_studies(url)) == 2)
    # A second "host": its whole process group (command and worker) dies at once, as a machine would.
    other = subprocess.Popen(
        sweep_cmd("worker", "hb", "--storage", url, "--jobs", "1", *hb),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )

    def theirs() -> set[int]:  # the second host's trials in training, told by their processes
        return _running_pids(url, set()) & {other.pid, *descendants(other.pid)}

    # Not in the milliseconds of an ask: a trial killed before its first record (heartbeat,
    # worker) is only failed by the next run, after a minute (see studies.execution.recovery).
    try:
        _wait_for(lambda: bool(theirs()) and not _asking(url), timeout=300.0)  # a busy machine
    except AssertionError:
        raise AssertionError(("the second host never trained", other.poll(), _counts(url))) from None
    victims = theirs()
    os.killpg(other.pid, signal.SIGKILL)
    other.wait()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert _counts(url) == {"hb/circle": (6, 0), "hb/xor": (6, 0)}
    _no_duplicates(url)
    trials = [t for s in _studies(url).values() for t in s.get_trials()]
    killed = [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and t.user_attrs.get("worker", {}).get("pid") in victims
        and not t.user_attrs.get("surplus")  # withdrawn by the victim itself (beyond the total), not killed
    ]
    assert killed
    for t in killed:
        # Failed by the heartbeat (no process of this host noticed), retried by Optuna's callback.
        retry = next((r for r in trials if t.number in r.system_attrs.get("retry_history", [])), None)
        assert retry is not None, (t.number, t.user_attrs)
        # The same hyperparameters: all it had (killed while being sampled, the rest is drawn afresh).
        assert t.params.items() <= retry.params.items()
        assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.mark.postgres
def test_interrupt_on_postgres_fails_in_flight_trials_and_resumes(sweep_file, pg_database):
    """SIGINT, then SIGTERM, each while trials of its run train; the run after them completes the
    sweep. The stopped runs train 20 epochs at 0.1 s or more each (the slow-epoch hook): still
    training when the test acts, on any machine."""
    url = pg_database()
    path = sweep_file("pgintr", trials=8, jobs=2, epochs=20)
    cmd = sweep_cmd("run", str(path), "--storage", url, "--no-mlflow")
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(0.1))
        _wait_for(lambda p=proc: p.poll() is not None or bool(_running_pids(url, set())))  # trials train
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)  # only a hang guard: how fast is benchmarks/stop_latency.py's
        assert proc.returncode == 2 and "interrupted" in err and "Traceback" not in err, (sig, proc.returncode, err)
        # Its trials in flight are failed by the run or, at the latest, by its workers as they
        # leave (they watch the launcher): none stays RUNNING for the next run to find.
        try:
            _wait_for(lambda: all(running == 0 for _, running in _counts(url).values()), timeout=60)
        except AssertionError:
            raise AssertionError(("trials left RUNNING", sig, _counts(url), err)) from None
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr
    assert _counts(url) == {"pgintr/circle": (8, 0), "pgintr/xor": (8, 0)}


def test_eight_processes_on_the_local_journal(sweep_file, tmp_path):
    path = sweep_file("eight", trials=200, jobs=8, epochs=100)
    # One trial at a time, long enough that every worker starts before the others finish them all.
    path.write_text(
        path.read_text()
        .replace('datasets = ["circle", "xor"]', 'datasets = ["gauss"]')
        .replace("trials = 200", "trials = 200\nbatch = 1")
    )
    r = subprocess.run(sweep_cmd("run", str(path), "--no-mlflow"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # loky's resource tracker may warn of "leaked semlock objects" at exit under load (it removes
    # them itself; a known loky message, not ours): every other line must be free of warnings.
    ours = "\n".join(line for line in r.stderr.splitlines() if "resource_tracker" not in line)
    assert "Traceback" not in ours and "Warning" not in ours, r.stderr
    journal = str(tmp_path / "sweeps.journal")
    assert _counts(journal) == {"eight/gauss": (200, 0)}
    _no_duplicates(journal)
    workers = {
        t.user_attrs["worker"]["pid"]
        for s in _studies(journal).values()
        for t in s.get_trials()
        if "worker" in t.user_attrs
    }
    assert len(workers) == 8


def test_a_worker_finishes_the_sweep_when_its_partner_run_is_killed_on_the_journal(sweep_file, tmp_path):
    """A journal has no heartbeat: a 'sweep worker' that had nothing left to ask used to leave
    (exit 0) while the trials of a 'sweep run' beside it were running, so when that run and its
    workers were killed with SIGKILL the sweep stayed short of its total. It now stays while this host's
    processes train, fails their trials if they die, and finishes the sweep."""
    path = sweep_file("partner", trials=6, jobs=1, epochs=40)
    path.write_text(path.read_text().replace("trials = 6", "trials = 6\nbatch = 2"))
    journal = str(tmp_path / "sweeps.journal")
    run = subprocess.Popen(
        sweep_cmd("run", str(path), "--no-mlflow"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(0.2),  # its stacks last 8 s or more: still training when it is killed
    )
    _wait_for(lambda: len(_studies(journal)) == 2 and bool(_running_pids(journal, set())), timeout=120)
    worker = subprocess.Popen(
        sweep_cmd("worker", "partner", "--jobs", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(0.05),
    )

    def training(proc: subprocess.Popen) -> set[int]:  # its trials in training, told by its processes
        return _running_pids(journal, set()) & {proc.pid, *descendants(proc.pid)}

    # Both train (the worker's stacks last 2 s or more), then the run dies with its trials RUNNING.
    _wait_for(lambda: worker.poll() is not None or bool(training(worker) and training(run)), timeout=120)
    assert worker.poll() is None, worker.communicate()
    for pid in [run.pid, *descendants(run.pid)]:  # the run and its workers at once, as a crash would
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.communicate(timeout=60)
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err
    counts = _counts(journal)
    assert counts == {"partner/circle": (6, 0), "partner/xor": (6, 0)}, (counts, err)
    _no_duplicates(journal)
