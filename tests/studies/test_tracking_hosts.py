"""MLflow writers split the work by host: each writes its own host's trials, takes over those
of a host without a writer, and no trial is ever logged twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

import studies.tracking.tracker as tracking
from studies.execution.runner import open_sweep
from studies.storage.adaptor import SweepStorage
from studies.storage.opening import open_storage
from studies.tracking.tracker import Tracker
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    from studies.tracking import sqlite as mlflow_sqlite

    with mlflow_sqlite.creating(uri):  # as the writers do: never two processes creating the file at once
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=5000)


def _trial_keys(runs) -> list[tuple[str, int]]:
    return [
        (r.data.tags["sweeps.study"], int(r.data.tags["trial_number"]))
        for r in runs
        if r.data.tags.get("sweeps.kind") == "trial"
    ]


def _finished_trial(study: optuna.Study, host: str, value: float) -> None:
    trial = study.ask()
    trial.suggest_float("learning_rate", 0.01, 1.0, log=True)
    trial.set_user_attr("worker", {"host": host, "pid": 1})
    trial.set_user_attr("run", {"curves": {"train_cost": [1.0, value], "val_cost": [1.0, value]}, "label": "t"})
    study.tell(trial, value)


def test_each_writer_writes_its_own_hosts_trials_and_takes_over_orphans(sweep_file, tmp_path, monkeypatch):
    config = load_spec(str(sweep_file("hosts", trials=20, jobs=1, epochs=2)))
    url = str(tmp_path / "sweeps.journal")
    (circle, xor) = open_sweep(config, open_storage(url))
    for i in range(3):
        _finished_trial(circle, "h1", 0.1 * i)
        _finished_trial(xor, "h2", 0.2 * i)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    one = Tracker("hosts", uri, storage_url=url)
    one.host = "h1"
    two = Tracker("hosts", uri, storage_url=url)
    two.host = "h2"
    view = SweepStorage(open_storage(url), refresh_seconds=0.0)
    assert one.sync(view) == 3  # h1's only: h2's have not waited long enough to be taken over
    assert one.progress() == (6, 3) and one.behind_mine == 0
    assert two.sync(view) == 3
    _finished_trial(circle, "h3", 0.5)  # a host with no writer
    assert one.sync(view) == 0 and two.sync(view) == 0
    monkeypatch.setattr(tracking, "TAKEOVER_SECONDS", 0.0)
    assert one.sync(view) == 1  # h3's trial waited: taken over
    keys = _trial_keys(_runs(uri, "hosts"))
    assert len(keys) == len(set(keys)) == 7
    hosts = {
        r.data.tags["trial_number"] + r.data.tags["sweeps.study"]: r.data.tags["sweeps.host"]
        for r in _runs(uri, "hosts")
        if r.data.tags.get("sweeps.kind") == "trial"
    }
    assert sorted(set(hosts.values())) == ["h1", "h2", "h3"]
    assert len([r for r in _runs(uri, "hosts") if r.data.tags.get("sweeps.kind") == "study"]) == 2


def _other_host(hostname: str, *args: str) -> subprocess.Popen:
    """A command on another "host": a UTS namespace with its own host name (as root)."""
    inner = " ".join(["hostname", hostname, "&&", "exec", sys.executable, "-m", "sweeps", *args])
    return subprocess.Popen(
        ["unshare", "-u", "sh", "-c", inner],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.postgres
def test_two_hosts_each_write_their_trials_once_and_a_dead_hosts_are_taken_over(sweep_file, pg_database, tmp_path):
    url = pg_database()
    path = sweep_file("twohosts", trials=16, jobs=1, epochs=300)
    path.write_text(path.read_text().replace("trials = 16", "trials = 16\nbatch = 2"))
    uri = f"sqlite:///{tmp_path}/shared-mlflow.db"  # both hosts see it (one machine); a server in real life
    run = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(path), "--storage", url, "--tracking-uri", uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not open_storage(url).get_all_studies():
        time.sleep(0.3)
    other = _other_host(
        "host-b", "worker", "twohosts", "--storage", url, "--mlflow", "--tracking-uri", uri, "--jobs", "1"
    )

    def written_by_b() -> int:
        return sum(r.data.tags.get("sweeps.host") == "host-b" for r in _runs(uri, "twohosts"))

    while time.monotonic() < deadline and written_by_b() < 2:
        time.sleep(0.5)
    assert written_by_b() >= 2, other.stderr.read() if other.poll() is not None else "host-b wrote nothing"
    os.killpg(other.pid, signal.SIGKILL)  # host-b dies: its writer with it
    other.wait()
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    storage = open_storage(url)
    finished = {
        (s.study_name, t.number)
        for s in storage.get_all_studies()
        for t in storage.get_all_trials(s._study_id)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("surplus"))
    }
    runs = _runs(uri, "twohosts")
    keys = _trial_keys(runs)
    assert len(keys) == len(set(keys)), "a trial logged twice"
    if set(keys) != finished:
        missing = finished - set(keys)
        detail = [
            (s.study_name, t.number, t.state.name, t.user_attrs.get("worker"), t.datetime_complete)
            for s in storage.get_all_studies()
            for t in storage.get_all_trials(s._study_id)
            if (s.study_name, t.number) in missing
        ]
        raise AssertionError(f"missing {detail}\n{err[-3000:]}")
    assert set(keys) == finished  # host-b's trials too: taken over by host A's writer
    assert not [r for r in runs if r.info.status == "RUNNING" and r.data.tags.get("sweeps.kind") == "trial"]
    assert {r.data.tags.get("sweeps.host") for r in runs if r.data.tags.get("sweeps.kind") == "trial"} >= {
        "host-b",
        os.uname().nodename,
    }
