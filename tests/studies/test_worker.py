"""The worker's own decisions: halting a study whose every trial fails alike, one heartbeat
thread, storage failures as one line."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

import studies.execution.worker as worker_module
from engine import Stack
from studies.execution.heartbeat import Heartbeat
from studies.execution.runner import open_sweep
from studies.execution.worker import HALT_AFTER, WorkerTask, halted, work
from studies.storage.adaptor import StorageError, SweepStorage
from studies.storage.opening import open_storage
from sweeps.spec import load_spec


@pytest.fixture
def handlers():
    """work() in this process installs its signal handlers: put pytest's back afterwards."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("batch", [1, 4])
def test_a_study_whose_trials_all_fail_alike_is_halted(sweep_file, tmp_path, monkeypatch, handlers, batch):
    config = dataclasses.replace(load_spec(str(sweep_file("halt", trials=8, jobs=1, epochs=2))), stack=batch)
    storage = str(tmp_path / "sweeps.journal")
    open_sweep(config, open_storage(storage))
    calls = []

    def out_of_memory(*args, **kwargs):
        calls.append(1)
        raise MemoryError(f"Unable to allocate {len(calls) * 1.5} GiB for an array")

    if batch == 1:
        monkeypatch.setattr(worker_module, "run_trial", out_of_memory)
    else:
        monkeypatch.setattr(Stack, "step_epoch", out_of_memory)
    result = work(WorkerTask(storage, config, 0))
    # Each dataset: HALT_AFTER failures or more (a stack fails all its trials at once), then no more.
    assert set(result.counts) == {"failed"} and 2 * HALT_AFTER <= result.counts["failed"] <= 2 * max(HALT_AFTER, 4)
    first = optuna.load_study(study_name="halt/circle", storage=open_storage(storage))
    reasons = halted(first)
    assert sorted(reasons) == ["circle", "xor"] and "MemoryError" in reasons["circle"]


def test_failures_of_different_causes_do_not_halt(sweep_file, tmp_path, monkeypatch, handlers):
    config = dataclasses.replace(load_spec(str(sweep_file("mixed", trials=3, jobs=1, epochs=2))), stack=1)
    storage = str(tmp_path / "sweeps.journal")
    open_sweep(config, open_storage(storage))
    causes = iter([ValueError("a"), KeyError("b"), ValueError("a")] * 10)

    def flaky(trial, dataset, config, **kwargs):
        raise next(causes)

    monkeypatch.setattr(worker_module, "run_trial", flaky)
    work(WorkerTask(storage, config, 0))
    assert halted(optuna.load_study(study_name="mixed/circle", storage=open_storage(storage))) == {}


def test_one_heartbeat_thread_beats_for_every_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/hb.db"
    backend = open_storage(url, heartbeat_interval=1, grace_period=3)
    store = SweepStorage(backend)
    study = optuna.create_study(study_name="s", storage=store)
    trials = [study.ask() for _ in range(4)]
    from optuna.storages._rdb import models  # reading the rows written, to check them

    def beats() -> dict[int, object]:
        with backend.scoped_session() as session:
            return {h.trial_id: h.heartbeat for h in session.query(models.TrialHeartbeatModel)}

    first = beats()
    assert sorted(first) == sorted(t._trial_id for t in trials)  # written with the trials themselves
    with Heartbeat(backend, store.owned) as beat:
        deadline = time.monotonic() + 20
        while beat.beats < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert beat.beats >= 2
    later = beats()
    assert all(later[i] >= first[i] for i in first)


class _Broken(optuna.storages.InMemoryStorage):
    def create_new_trial(self, study_id, template_trial=None):  # noqa: ANN001
        raise PermissionError(13, "Permission denied", "/data/sweeps.journal")


def test_a_storage_that_fails_is_one_clear_error():
    store = SweepStorage(_Broken(), name="/data/sweeps.journal")
    study = optuna.create_study(study_name="s", storage=store)
    with pytest.raises(
        StorageError,
        match=r"cannot use the storage /data/sweeps.journal \(permission denied\); make it writable.*"
        r"run the same command again to resume",
    ):
        study.ask()


@pytest.mark.slow
def test_a_journal_that_vanishes_mid_sweep_stops_the_run_with_one_line(sweep_file, tmp_path):
    path = sweep_file("gone", trials=20, jobs=1, epochs=30)
    cmd = [sys.executable, "-m", "sweeps", "run", str(path), "--no-mlflow"]
    # Each epoch of the first run lasts 0.1 s more (the test hook, not epoch counts as timers): it
    # is still training when the journal vanishes; the run that completes the sweep trains at full speed.
    slow = {**os.environ, "SWEEPS_TEST_SLOW_EPOCH": "0.1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=slow)
    journal = tmp_path / "sweeps.journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if journal.exists():
            studies = open_storage(str(journal)).get_all_studies()
            done = [
                t
                for s in studies
                for t in open_storage(str(journal)).get_all_trials(s._study_id)
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            ]
            if done:
                break
    assert proc.poll() is None
    journal.rename(tmp_path / "kept.journal")
    journal.mkdir()  # the path now can't be written (as a read-only or vanished file)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and sum(line.startswith("Error:") for line in err.splitlines()) == 1, err
    assert f"cannot use the storage {journal}" in err and "run the same command again" in err
    journal.rmdir()
    (tmp_path / "kept.journal").rename(journal)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    store = open_storage(str(journal))
    for s in store.get_all_studies():
        trials = store.get_all_trials(s._study_id)
        assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 20
        assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.parametrize("batch", [1, 4])
def test_tpe_learns_past_its_start_up_through_a_real_worker(tmp_path, handlers, batch):
    """A worker's TPE, once past its random start-up, proposes better trials than random
    search does with the same budget and seed (on circle, the learning rate decides: too small
    learns nothing in 30 epochs, too large diverges)."""
    from sweeps.spec import spec_from_dict

    def last_costs(sampler: dict) -> list[float]:
        config = spec_from_dict(
            {
                "name": sampler["name"],
                "datasets": ["circle"],
                "trials": 30,
                "jobs": 1,
                "seed": 3,
                "batch": batch,
                "train": {"epochs": 30, "batch_size": 10, "hidden_layers": 1, "hidden_units": 6, "activation": "tanh"},
                "search": {"learning_rate": {"low": 1e-4, "high": 30.0, "log": True}},
                "sampler": sampler,
                "pruner": {"name": "none"},
            }
        )
        storage = str(tmp_path / f"{sampler['name']}.journal")
        open_sweep(config, open_storage(storage))
        work(WorkerTask(storage, config, 0))
        study = optuna.load_study(study_name=f"{sampler['name']}/circle", storage=open_storage(storage))
        trials = sorted(study.get_trials(), key=lambda t: t.number)
        assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 30
        # A diverged trial is as bad as the untrained network it started from.
        return [
            t.value if t.state == TrialState.COMPLETE else t.user_attrs["run"]["initial_cost"] for t in trials[-15:]
        ]

    tpe = last_costs({"name": "tpe", "n_startup_trials": 8})
    rand = last_costs({"name": "random"})
    assert sorted(tpe)[7] < sorted(rand)[7] / 2, (tpe, rand)


def test_a_large_stack_is_filled_a_few_trials_per_ask(sweep_file, tmp_path, monkeypatch, handlers):
    config = dataclasses.replace(load_spec(str(sweep_file("fill", trials=9, jobs=1, epochs=2))), stack=1000)
    storage = str(tmp_path / "sweeps.journal")
    open_sweep(config, open_storage(storage))
    monkeypatch.setattr(worker_module, "ASK_AT_ONCE", 4)
    asked = []
    real_ask = worker_module._Worker.ask

    def ask(self, k, n):
        trials = real_ask(self, k, n)
        asked.append(len(trials))
        return trials

    monkeypatch.setattr(worker_module._Worker, "ask", ask)
    result = work(WorkerTask(storage, config, 0))
    assert sum(result.counts.values()) == 18 and max(asked) == 4  # 1000 free slots, 4 trials at a time
    for name in ("fill/circle", "fill/xor"):
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
        assert len(study.trials) == 9  # none created beyond the total


def test_a_worker_with_nothing_to_ask_leaves_at_the_deadline_not_two_grace_periods_later():
    """Past the sweep's deadline no retry can start, so a worker does not wait for another
    host's running trials (up to two grace periods): it fails the stale ones once and leaves."""
    import types

    from studies.search.quota import Limits

    calls = []

    class Study:  # another host's trial is running in it
        _study_id = 1

        def get_trials(self, deepcopy: bool = True, states=None) -> list:
            return [types.SimpleNamespace(number=0)]

    class Busy:  # a heartbeat storage
        heartbeats = True
        studies = [Study()]
        storage = types.SimpleNamespace(refresh=lambda study_id: None)
        task = types.SimpleNamespace(grace_period=30.0, heartbeat_interval=0.01)

        def fail_stale(self, *, now: bool = False) -> None:
            calls.append(now)

    busy = Busy()
    busy.limits = Limits(deadline=None)  # no budget: it stays, failing stale trials now and then
    assert worker_module._Waiter(busy).wait() is True
    assert calls == [False]
    busy.limits = Limits(deadline=time.time() - 1)  # past the deadline: once, at once, and it goes
    assert worker_module._Waiter(busy).wait() is False
    assert calls == [False, True]


def _deaf_to_sigterm(flag: str, seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(flag, "w").close()
    time.sleep(seconds)


def test_stop_workers_says_how_many_it_had_to_kill(tmp_path):
    """A worker deaf to SIGTERM for longer than the grace is killed, and counted: the launcher
    then fails its trials at once (runner.release_workers)."""
    from joblib.externals.loky import get_reusable_executor

    from studies.execution import launching

    flag = tmp_path / "deaf"
    ex = get_reusable_executor(max_workers=1, timeout=30, reuse=False)
    ex.submit(_deaf_to_sigterm, str(flag), 120)
    deadline = time.monotonic() + 120
    while not flag.exists():  # the task runs, deaf to SIGTERM
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    assert launching.stop_workers(ex, grace=0.5) == 1
    assert launching.stop_workers(None) == 0
