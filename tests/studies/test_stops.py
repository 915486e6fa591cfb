"""Stops at any moment: SIGINT or SIGTERM in every phase of `sweep run` (start-up, helpers,
sampling, training, MLflow writes), and sequences of interrupts, kills of the launcher and of a
worker, with restarts, on the journal and on PostgreSQL. After each:
nothing RUNNING, and at the end the exact totals, with MLflow equal to the storage.

The timeouts below only catch a hang (a stop must take seconds; they allow a minute on a
loaded machine); no test asserts how fast anything is.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from optuna.trial import TrialState

from studies.execution.processes import descendants, stop_tree

pytestmark = pytest.mark.slow

HANG = 120.0  # seconds: beyond this a stop is a hang, whatever the machine's load


def _storage(url: str):
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def _states(url: str) -> dict[str, Counter]:
    if "://" not in url and not os.path.exists(url):
        return {}
    storage = _storage(url)
    out = {}
    for s in storage.get_all_studies():
        out[s.study_name] = Counter(
            "surplus" if t.user_attrs.get("surplus") else t.state.name for t in storage.get_all_trials(s._study_id)
        )
    return out


def _running(url: str) -> int:
    return sum(c["RUNNING"] for c in _states(url).values())


def _finished(url: str) -> dict[str, int]:
    return {name: c["COMPLETE"] + c["PRUNED"] for name, c in _states(url).items()}


def _mlflow_equals_storage(folder, url: str, name: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    trials = [r for r in runs if r.data.tags.get("sweeps.kind") == "trial"]
    assert not [r for r in runs if r.info.status == "RUNNING" and r.data.tags.get("sweeps.kind") == "trial"]
    keys = [(r.data.tags["sweeps.study"], int(r.data.tags["trial_number"])) for r in trials]
    assert len(keys) == len(set(keys)), "a trial logged twice"
    storage = _storage(url)
    finished = {
        (s.study_name, t.number)
        for s in storage.get_all_studies()
        for t in storage.get_all_trials(s._study_id)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("surplus"))
    }
    assert set(keys) == finished


def _spec(folder, name: str, *, trials: int, epochs: int, batch: int) -> str:
    path = folder / f"{name}.toml"
    path.write_text(f'''
name = "{name}"
datasets = ["circle", "xor"]
trials = {trials}
jobs = 2
batch = {batch}
[train]
epochs = {epochs}
batch_size = 10
[search]
learning_rate = {{ low = 0.01, high = 1.0, log = true }}
hidden_units = {{ low = 2, high = 6 }}
activation = ["tanh", "relu"]
[sampler]
name = "random"
[pruner]
name = "none"
''')
    return str(path)


def _run(args: list[str], folder, *, slow_epoch: float | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "SWEEPS_TEST_SLOW_EPOCH")}
    if slow_epoch:
        env["SWEEPS_TEST_SLOW_EPOCH"] = str(slow_epoch)  # training lasts, whatever the machine's speed
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as from a terminal: a test session started in the background (a shell's '&') has SIGINT
        # ignored, which its children would inherit, and a SIGINT in their first instant be lost
        preexec_fn=_default_signals,
    )


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _loky_workers(pid: int) -> list[int]:
    out = []
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                if b"LokyProcess" in fh.read():
                    out.append(child)
        except OSError:
            pass
    return out


def _stopped_cleanly(proc: subprocess.Popen, url: str, sig: int) -> None:
    out, err = proc.communicate(timeout=HANG)
    if err.startswith("Fatal Python error: init_") and err.rstrip().endswith("KeyboardInterrupt"):
        # SIGINT while the interpreter itself starts (init_sys_streams, init_import_site: its
        # streams, 'site' and a .pth file of site-packages), before any code of the program:
        # Python stops there, nothing was written. A loaded machine can stretch this phase.
        assert sig == signal.SIGINT and proc.returncode != 0 and not _states(url), err
        return
    assert "Traceback" not in err, err
    if proc.returncode == 0:  # the signal came after the work was done
        assert "finished" in out, (out, err)
    elif proc.returncode == 3:  # while the end waited for MLflow: the sweep is done, 'sweep sync' writes the rest
        assert "finished" in out and "(interrupted)" in err and "Run 'sweep sync " in err, (out, err)
    elif proc.returncode == -sig:
        # In the interpreter's first milliseconds, before any code of the program runs, the
        # signal's default action ends Python itself: nothing was written yet.
        assert not err and not _states(url), err
    else:
        assert proc.returncode == 2 and "interrupted" in err, (proc.returncode, err)
    assert _running(url) == 0, (_states(url), err)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    if "://" not in url and not os.path.exists(url):
        return []
    storage = _storage(url)
    return [t for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id)]


def _helpers(proc: subprocess.Popen) -> bool:
    """Whether the run has started its first helper process: its workers, which warm up while it
    opens the storage and the studies."""
    return bool(descendants(proc.pid))


def _asked(url: str) -> bool:
    """A worker has asked for trials: some are RUNNING (being sampled, or training)."""
    return any(t.state == TrialState.RUNNING for t in _trials(url))


def _training(url: str) -> bool:
    """A RUNNING trial has its worker's record: it trains."""
    return any(t.state == TrialState.RUNNING and "worker" in t.user_attrs for t in _trials(url))


# Where a stopped run is when the signal comes. The interpreter's first instants have nothing to
# watch (fixed delays; not 0.0: a signal in the instant the child is born can land before
# Python itself is up, once seen lost in CI under load); every later phase is a condition read
# from the run's processes or its storage, so that each is reached on a machine of any speed.
# ("ended": a trial of this run has just finished, its MLflow writes are under way.)
PHASES = ["0.05 s", "0.3 s", "helpers", "asked", "training", "ended"]


def _reach(phase: str, proc: subprocess.Popen, url: str, finished_before: int) -> None:
    if phase.endswith(" s"):
        time.sleep(float(phase[:-2]))
        return
    reached = {
        "helpers": lambda: _helpers(proc),
        "asked": lambda: _asked(url),
        "training": lambda: _training(url),
        "ended": lambda: sum(_finished(url).values()) > finished_before,
    }[phase]
    deadline = time.monotonic() + HANG
    while proc.poll() is None and not reached():
        assert time.monotonic() < deadline, f"phase {phase!r} never came"
        time.sleep(0.05)
    assert proc.poll() is None, (f"the run ended before phase {phase!r}", proc.communicate(timeout=HANG))
    if phase == "training":
        time.sleep(0.3)  # into its epochs


def test_a_stop_signal_at_any_moment_of_sweep_run(tmp_path):
    """One cold run per phase and signal (SIGINT, SIGTERM), all on one sweep: each is stopped by
    the signal and must leave nothing RUNNING; then one run completes the sweep with the exact
    totals and MLflow equal to the storage. The slow-epoch hook keeps a stack of 20 epochs
    training 2 s, so each stopped run finishes at most one round of trials and the next one
    meets a sweep with work left, in every phase. The end of a run while MLflow catches up is
    tests/studies/test_mlflow_pace.py's."""
    spec = _spec(tmp_path, "moment", trials=10, epochs=20, batch=2)
    url = str(tmp_path / "sweeps.journal")
    for phase in PHASES:
        for sig in (signal.SIGINT, signal.SIGTERM):
            before = sum(_finished(url).values())
            proc = _run([spec], tmp_path, slow_epoch=0.1)
            try:
                _reach(phase, proc, url, before)
                proc.send_signal(sig)
                _stopped_cleanly(proc, url, sig)
            finally:  # a failure leaves no run training behind
                if proc.poll() is None:
                    stop_tree(proc.pid)
            assert sum(_finished(url).values()) < 20, (phase, sig, _states(url))  # work left for the next
    again = _run([spec], tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert _finished(url) == {"moment/circle": 10, "moment/xor": 10} and _running(url) == 0
    _mlflow_equals_storage(tmp_path, url, "moment")


def test_ctrl_c_stops_a_run_of_a_large_stack_and_huge_totals(tmp_path):
    """The issue's case: --trials 1e20 --batch 100000 created 100,000 trials at once and
    Ctrl-C took 93 s. The stack is at most 1024 and a worker asks 64 trials at a time."""
    spec = _spec(tmp_path, "huge", trials=10**20, epochs=5000, batch=1024)
    url = str(tmp_path / "sweeps.journal")
    proc = _run([spec, "--no-mlflow"], tmp_path)
    started = time.monotonic()
    while time.monotonic() - started < HANG and proc.poll() is None and not _running(url):
        time.sleep(0.5)  # until trials train
    assert _running(url), proc.communicate(timeout=HANG) if proc.poll() is not None else "no trial started"
    proc.send_signal(signal.SIGINT)
    _stopped_cleanly(proc, url, signal.SIGINT)  # within HANG: a hang fails, a slow machine does not
    created = {name: sum(c.values()) for name, c in _states(url).items()}
    assert created and max(created.values()) <= 2 * 1024, created  # jobs x stack, never the total


# Interrupts, kills of the launcher and of a worker, each after a delay (seconds) from a cold
# start, with a restart after each, run one after the other on one sweep (which saves a sweep's
# set-up and completion per action); the delays were taken from the sequences Hypothesis once drew
# here, before the actions became one list. The kill of a worker comes last, as its run goes on to the
# end: 16 trials, of which the runs before it (each stopped within 3.2 s, a stack's 30 epochs
# lasting 1.5 s or more) finish at most 12. The run after the last action completes the sweep.
CHAOS = [
    ("sigint", 0.0),
    ("kill-launcher", 1.07),
    ("sigterm", 2.55),
    ("kill-launcher", 3.02),
    ("sigint", 3.2),
    ("kill-worker", 2.6),
]


def _chaos(folder, url: str, name: str, actions: list[tuple[str, float]]) -> None:
    spec = _spec(folder, name, trials=8, epochs=30, batch=2)
    storage = ["--storage", url]
    for action, delay in actions:
        proc = _run([spec, *storage], folder, slow_epoch=0.05)  # a stack's 30 epochs last 1.5 s or more
        time.sleep(delay)
        if action in ("sigint", "sigterm"):
            sig = signal.SIGINT if action == "sigint" else signal.SIGTERM
            proc.send_signal(sig)
            _stopped_cleanly(proc, url, sig)
        elif action == "kill-launcher":
            proc.kill()
            proc.communicate(timeout=HANG)
            # Its workers see their launcher gone and fail their trials; the next run tidies up the rest.
        else:
            deadline = time.monotonic() + HANG
            while proc.poll() is None and not (_loky_workers(proc.pid) and _training(url)):
                assert time.monotonic() < deadline, "no worker trained"
                time.sleep(0.05)
            workers = _loky_workers(proc.pid)
            assert workers, "the run ended before a worker trained"
            os.kill(random.Random(delay).choice(workers), signal.SIGKILL)
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0 and "Traceback" not in err, err
            assert "a worker process died" in err, err
            assert _running(url) == 0
    done = _run([spec, *storage], folder)
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert _finished(url) == {f"{name}/circle": 8, f"{name}/xor": 8} and _running(url) == 0
    _mlflow_equals_storage(folder, url, name)


def test_kills_interrupts_and_restarts_on_the_journal(tmp_path):
    _chaos(tmp_path, str(tmp_path / "sweeps.journal"), "chaos", CHAOS)


@pytest.mark.postgres
def test_kills_interrupts_and_restarts_on_postgres(tmp_path, pg_database):
    # A launcher killed once trials run, a SIGTERM, and a worker killed (the heartbeat's retry on
    # an RDB storage), as on the journal.
    _chaos(tmp_path, pg_database(), "pgchaos", [("kill-launcher", 3.02), ("sigterm", 2.55), ("kill-worker", 2.6)])


def test_the_console_script_handles_stop_signals_from_its_first_instant():
    """pyproject's ``sweep`` script is sweeps.entry:main (stop signals handled before the command line
    is imported), the same entry ``python -m sweeps`` uses."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sweep"] == "sweeps.entry:main"
    assert "sweeps.entry" in (root / "sweeps" / "__main__.py").read_text()


def test_a_stop_signal_once_a_report_is_written_keeps_exit_0(tmp_path):
    # The report is written and said; a SIGTERM during the exit (helper processes joined, then
    # Python's teardown, a second or more) leaves its exit code 0, never 2 nor 143 (killed):
    # early in the exit, then late, each a report of the same sweep.
    spec = _spec(tmp_path, "rep", trials=2, epochs=2, batch=1)
    done = _run([spec, "--no-mlflow"], tmp_path)
    assert done.communicate(timeout=600)[0] and done.returncode == 0
    for after in (0.3, 1.5):
        out = f"out-{after}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeps", "report", "rep", "--no-mlflow", "--out", out],
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line = proc.stdout.readline()  # said once every file is in place: the command's work is done
        assert line.startswith("report written"), (line, proc.communicate(timeout=HANG))
        time.sleep(after)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=HANG)
        assert proc.returncode == 0 and not err, (after, proc.returncode, err)
        assert (tmp_path / out / "report.html").exists()
