"""An end-to-end sweep, checked with Optuna's and MLflow's own clients."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from studies.sweep.outcomes import outcome_of
from sweeps.cli import cli

pytestmark = pytest.mark.slow


def _studies(storage_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage_path)))
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage) for s in storage.get_all_studies()
    }


def _mlflow_runs(tracking_uri, experiment):
    from mlflow.tracking import MlflowClient

    # Absolute: MLflow caches a store per URI string, and a relative sqlite path would keep
    # pointing at the folder of the test that first used it.
    if tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
        tracking_uri = "sqlite:///" + os.path.abspath(tracking_uri[len("sqlite:///") :])
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=1000)


def test_sweep_end_to_end(sweep_file, tmp_path):
    path = sweep_file("e2e", trials=12, jobs=2, epochs=4)
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert "circle" in result.output and "12/12" in result.output

    # The defaults: a journal file and MLflow's mlflow.db, both in the working directory.
    assert (tmp_path / "sweeps.journal").exists() and (tmp_path / "mlflow.db").exists()
    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as con:  # MLflow's store in WAL mode
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    studies = _studies(tmp_path / "sweeps.journal")
    assert sorted(studies) == ["e2e/circle", "e2e/xor"]
    diverged_total = 0
    for study in studies.values():
        trials = study.get_trials()
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 12
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        assert len({t.number for t in trials}) == len(trials)
        for t in finished:
            assert t.user_attrs["run"]["seed"] == 0
            if t.params["hidden_layers"] == 2:
                assert "hidden_units_2" in t.params
            else:
                assert "hidden_units_2" not in t.params
            assert ("regularization_rate" in t.params) == (t.params["regularization"] != "none")
        diverged = [t for t in finished if t.user_attrs.get("diverged")]
        for t in diverged:
            assert t.state == TrialState.PRUNED
            d = t.user_attrs["divergence"]
            assert set(d) >= {"epoch", "cause", "learning_rate", "last_finite_cost"}
            assert d["learning_rate"] == 80.0 and d["cause"] in ("nan", "inf", "exploding")
        diverged_total += len(diverged)
    assert diverged_total >= 1  # lr = 80 with relu: the random sampler draws it about half the time

    client, runs = _mlflow_runs("sqlite:///mlflow.db", "e2e")
    parents = [r for r in runs if r.data.tags.get("sweeps.kind") == "study"]
    children = [r for r in runs if r.data.tags.get("sweeps.kind") == "trial"]
    assert len(parents) == 2 and len(children) == 24
    parent_ids = {r.info.run_id for r in parents}
    assert all(r.data.tags["mlflow.parentRunId"] in parent_ids for r in children)
    for r in parents:
        assert "best_value" in r.data.metrics and r.info.status == "FINISHED"
    status_of = {"complete": "FINISHED", "pruned": "KILLED", "diverged": "FAILED"}
    for r in children:
        tags = r.data.tags
        assert r.info.status == status_of[tags["outcome"]]
        assert {"trial_number", "study"} <= set(tags)
        assert {"learning_rate", "hidden_layers", "dataset", "seed"} <= set(r.data.params)
        history = client.get_metric_history(r.info.run_id, "val_cost")
        trained = int(r.data.metrics["epochs_trained"])
        steps = sorted(m.step for m in history)  # 4 epochs: every one, within the default 50 points per curve
        assert steps[:trained] == list(range(1, trained + 1))
        # a diverged trial's crossing value, at the epoch that diverged, if the validation cost crossed
        assert steps[trained:] in ([], [trained + 1]) and (tags["outcome"] == "diverged" or not steps[trained:])
        if tags["outcome"] == "diverged":
            assert "diverged_epoch" in r.data.metrics
            artifacts = [a.path for a in client.list_artifacts(r.info.run_id)]
            assert "divergence.json" in artifacts
        else:
            assert len(history) == 4
    assert sum(r.data.tags["outcome"] == "diverged" for r in children) == diverged_total

    # Running it again adds nothing, in Optuna or in MLflow.
    counts = {n: len(s.get_trials()) for n, s in studies.items()}
    again = CliRunner().invoke(cli, ["run", str(path)])
    assert again.exit_code == 0, again.output
    assert {n: len(s.get_trials()) for n, s in _studies(tmp_path / "sweeps.journal").items()} == counts
    assert len(_mlflow_runs("sqlite:///mlflow.db", "e2e")[1]) == 26

    # status reads the same from the storage.
    status = CliRunner().invoke(cli, ["status", "e2e", "--json"])
    assert status.exit_code == 0
    data = json.loads(status.output)
    assert [s["finished"] for s in data["studies"]] == [12, 12]

    # More trials later: the studies continue to the new total.
    more = CliRunner().invoke(cli, ["run", str(path), "--trials", "14", "--no-mlflow"])
    assert more.exit_code == 0, more.output
    for study in _studies(tmp_path / "sweeps.journal").values():
        assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials()) == 14


def test_changed_spec_under_the_same_name_is_refused(sweep_file, tmp_path):
    path = sweep_file("same", trials=2, jobs=1, epochs=2)
    assert CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"]).exit_code == 0
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 3"))
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 2
    assert "sweep 'same' already exists in this storage with a different spec (key 'train' differs)" in r.output


def test_status_of_an_unknown_sweep(sweep_file, tmp_path):
    r = CliRunner().invoke(cli, ["status", "nothing"])
    assert r.exit_code == 2 and "no sweep named 'nothing'" in r.output


def _finished_and_running(storage_path, name):
    out = {}
    for sname, study in _studies(storage_path).items():
        states = Counter(t.state for t in study.get_trials())
        out[sname] = (states[TrialState.COMPLETE] + states[TrialState.PRUNED], states[TrialState.RUNNING])
    return out


# The run to stop or to kill a worker of trains 40 epochs at 0.05 s or more each (the test hook,
# instead of epoch counts as timers): it is still training when the test acts, on any machine; the
# run that completes the sweep after it trains at full speed.
def _slow_epochs() -> dict[str, str]:
    return {**os.environ, "SWEEPS_TEST_SLOW_EPOCH": "0.05"}


@pytest.mark.parametrize(
    ("sigs", "batch"), [((signal.SIGINT, signal.SIGTERM), 1), ((signal.SIGINT,), 4)], ids=["int-term-1", "int-4"]
)
def test_interrupted_sweep_resumes_to_its_exact_total(sweep_file, tmp_path, sigs, batch):
    """Each signal stops a run of one sweep once trials finished in it; the run after them
    completes the sweep."""
    path = sweep_file("intr", trials=10, jobs=2, epochs=40)
    path.write_text(path.read_text().replace("trials = 10", f"trials = 10\nbatch = {batch}"))
    cmd = [sys.executable, "-m", "sweeps", "run", str(path), "--no-mlflow"]
    journal = tmp_path / "sweeps.journal"
    for sig in sigs:
        start = sum(f for f, _ in _finished_and_running(journal, "intr").values()) if journal.exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_slow_epochs())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if journal.exists() and sum(f for f, _ in _finished_and_running(journal, "intr").values()) >= start + 2:
                break
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)  # only a hang guard: how fast is benchmarks/stop_latency.py's
        assert proc.returncode == 2, err
        assert "interrupted" in err and "Traceback" not in err, err
        before = _finished_and_running(journal, "intr")
        assert all(running == 0 for _, running in before.values()), before
        assert any(finished < 10 for finished, _ in before.values())

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _finished_and_running(journal, "intr")
    assert after == {"intr/circle": (10, 0), "intr/xor": (10, 0)}
    for study in _studies(journal).values():
        failed = [t for t in study.get_trials() if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")]
        retried = {t.user_attrs.get("retry_of") for t in study.get_trials()}
        assert all(t.number in retried for t in failed)  # what failed was re-run


def _running_worker_pids(journal) -> set[int]:
    pids = set()
    for study in _studies(journal).values():
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker")
            if worker:
                pids.add(int(worker["pid"]))
    return pids


def test_a_killed_worker_costs_nothing_that_finished(sweep_file, tmp_path):
    path = sweep_file("crash", trials=10, jobs=2, epochs=40)
    cmd = [sys.executable, "-m", "sweeps", "run", str(path), "--no-mlflow"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_slow_epochs())
    journal = tmp_path / "sweeps.journal"
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.3)
        if journal.exists() and sum(f for f, _ in _finished_and_running(journal, "crash").values()) >= 2:
            pids = _running_worker_pids(journal)
            victim = next(iter(pids), None)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "a worker process died" in err and "Traceback" not in err
    after = _finished_and_running(journal, "crash")
    assert after == {"crash/circle": (10, 0), "crash/xor": (10, 0)}
    killed = [
        t
        for s in _studies(journal).values()
        for t in s.get_trials()
        if t.state == TrialState.FAIL and t.user_attrs.get("worker", {}).get("pid") == victim
    ]
    assert killed  # the trial in flight was failed, then re-run:
    retried = {t.user_attrs.get("retry_of") for s in _studies(journal).values() for t in s.get_trials()}
    assert all(t.number in retried for t in killed if not t.user_attrs.get("surplus"))


def test_mlflow_away_warns_once_and_sync_catches_up(sweep_file, tmp_path, monkeypatch):
    # No retry of the dead server (the sweeps' default retries twice, with a backoff): how long
    # MLflow's client insists is not what is checked here.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    path = sweep_file("away", trials=3, jobs=1, epochs=2)
    r = CliRunner().invoke(cli, ["run", str(path), "--tracking-uri", "http://127.0.0.1:9"])
    assert r.exit_code == 3, r.output  # the sweep is done; MLflow lacks its runs (sweep sync)
    assert r.output.count("Warning: MLflow at http://127.0.0.1:9 failed") == 1
    assert "sweep sync away" in r.output
    first = CliRunner().invoke(cli, ["sync", "away", "--tracking-uri", "sqlite:///later.db"])
    assert first.exit_code == 0 and first.output.startswith("6 run(s) created"), first.output
    again = CliRunner().invoke(cli, ["sync", "away", "--tracking-uri", "sqlite:///later.db"])
    assert again.exit_code == 0 and again.output.startswith("0 run(s) created"), again.output
    _, runs = _mlflow_runs("sqlite:///later.db", "away")
    assert len(runs) == 8  # 2 parents + 6 children, no duplicates


def test_batched_sweep_reaches_its_total_and_reproduces(sweep_file, tmp_path):
    # Continuous batching: 12 trials through stacks of 5 slots, trials joining as others end,
    # members of other depths in one stack; every trial reproduces alone, bit for bit.
    path = sweep_file("stk", trials=12, jobs=2, epochs=6)
    text = path.read_text().replace("learning_rate = [0.1, 80.0]", "learning_rate = [0.03, 0.3, 80.0]")
    text = text.replace('activation = "relu"', "").replace(
        "[search]", '[search]\nactivation = ["relu", "tanh", "sigmoid"]'
    )
    text = text.replace('name = "none"', 'name = "median"\nn_startup_trials = 1\nn_warmup_steps = 1')
    path.write_text(text.replace("trials = 12", "trials = 12\nbatch = 5\nreport_every = 1"))
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    studies = _studies(tmp_path / "sweeps.journal")
    stacked = []
    for study in studies.values():
        trials = study.get_trials()
        assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 12
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        for t in trials:
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                assert "stack" in t.user_attrs["run"]
                assert len(t.intermediate_values) == len(t.user_attrs["run"]["curves"]["val_cost"])
                stacked.append((study.study_name, t.number))
    outcomes = {outcome_of(t) for s in studies.values() for t in s.get_trials()}
    assert {"complete", "diverged"} <= outcomes
    # The first and the last trials of each study: the last joined a stack already training.
    for name, number in [stacked[0], stacked[11], stacked[12], stacked[-1]]:
        again = CliRunner().invoke(cli, ["reproduce", "stk", "--dataset", name.split("/")[1], "--trial", str(number)])
        assert again.exit_code == 0 and again.output.startswith("reproduced:"), again.output


def test_a_batched_study_starts_with_scouts(sweep_file, tmp_path):
    # The median pruner compares with complete trials only: each study's first trials (as many
    # as its n_startup_trials) train alone, and the rest start once they are complete, so
    # that they can be pruned from their first report on.
    path = sweep_file("sct", trials=12, jobs=1, epochs=5)
    text = path.read_text().replace("learning_rate = [0.1, 80.0]", "learning_rate = [0.05, 0.1]")
    text = text.replace('name = "none"', 'name = "median"\nn_startup_trials = 3')
    path.write_text(text.replace("trials = 12", "trials = 12\nbatch = 8"))
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    for study in _studies(tmp_path / "sweeps.journal").values():
        trials = sorted(study.get_trials(), key=lambda t: t.datetime_start)
        assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials[:3])
        completes = [t.datetime_complete for t in trials if t.state == TrialState.COMPLETE]
        for t in trials[3:]:
            assert sum(c <= t.datetime_start for c in completes) >= 3, t.number


def test_no_worker_process_outlives_the_run(sweep_file):
    # Left to the interpreter's exit, an idle loky worker could deadlock with loky's manager
    # thread (the command hung at exit); the run stops its workers once the rounds are done.
    import multiprocessing

    path = sweep_file("alone", trials=2, jobs=2, epochs=2)
    r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in multiprocessing.active_children() if p.name.startswith("Loky")] == []
