"""MLflow keeps pace: curves at the sweep's stride in the child runs, every epoch in the parent
run's file, figures that never hold up the end of a run, and Ctrl-C at the end leaving the
rest to 'sweep sync'."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from unittest import mock

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from studies.execution.runner import run_sweep
from studies.storage.adaptor import SweepStorage
from studies.storage.opening import open_storage
from studies.sweep.curves import best_epoch, crossed, curve_stride, epochs_to_log
from studies.sweep.outcomes import FINISHED, outcome_of
from studies.sweep.summary import find_sweep
from studies.tracking.parents import CURVES_FILE, CURVES_TAG, FIGURES_TAG
from studies.tracking.tracker import Tracker
from studies.tracking.writer import EndBudget
from sweeps.cli import cli
from sweeps.spec import load_spec

pytestmark = pytest.mark.slow

SPEC = """
name = "{name}"
datasets = ["circle", "xor"]
trials = {trials}
jobs = 2
batch = 4
seed = 3

[train]
epochs = 30
batch_size = 20
activation = "relu"

[search]
learning_rate = [0.1, 80.0]
hidden_units = {{ low = 2, high = 6 }}

[sampler]
name = "random"

[pruner]
name = "none"

[mlflow]
curve_points = 8
"""


def _runs(uri: str, name: str):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    return client, client.search_runs([exp.experiment_id], max_results=5000)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One small sweep with MLflow on (stride 30 // 8 = 3): its folder, storage and tracking URI."""
    folder = tmp_path_factory.mktemp("pace")
    (folder / "pace.toml").write_text(SPEC.format(name="pace", trials=8))
    old = os.getcwd()
    os.chdir(folder)
    try:
        uri = f"sqlite:///{folder}/mlflow.db"
        run_sweep(load_spec(str(folder / "pace.toml")), tracking_uri=uri)
    finally:
        os.chdir(old)
    return folder, str(folder / "sweeps.journal"), uri


def test_child_runs_hold_each_curve_at_the_sweeps_stride_with_first_last_best_and_divergence(swept):
    folder, journal, uri = swept
    storage = open_storage(journal)
    client, runs = _runs(uri, "pace")
    by_key = {
        (r.data.tags["sweeps.study"], int(r.data.tags["trial_number"])): r
        for r in runs
        if r.data.tags.get("sweeps.kind") == "trial"
    }
    stride = curve_stride(30, 8)
    assert stride == 3
    diverged = 0
    for study in find_sweep(storage, "pace"):
        for t in storage.get_all_trials(study.study_id):
            if outcome_of(t) not in FINISHED:
                continue
            run = by_key[(study.name, t.number)]
            curves = t.user_attrs["run"]["curves"]
            trained = len(curves["train_cost"])
            expected = epochs_to_log(trained, stride=stride, marks=(best_epoch(curves, ("val_cost",)),))
            div = t.user_attrs.get("divergence")
            for key in ("train_cost", "val_cost", "val_accuracy"):
                history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
                logged = {m.step: m.value for m in history}
                crossed = div is not None and div["curve"] == key
                assert sorted(logged) == expected + ([div["epoch"]] if crossed else []), (key, t.number)
                for epoch in expected:
                    assert logged[epoch] == pytest.approx(curves[key][epoch - 1], rel=1e-12)
                if crossed:  # the value that crossed the threshold, at the epoch that diverged
                    value = float(div["cost"])
                    assert div["epoch"] == trained + 1
                    assert logged[div["epoch"]] == pytest.approx(value) or value != value or value > 1e308
            if div is not None:
                diverged += 1
                assert run.data.tags["outcome"] == "diverged" and run.data.metrics["diverged_epoch"] == div["epoch"]
            assert run.data.metrics.get("best_epoch") == best_epoch(curves, ("val_cost",))
    assert diverged  # lr = 80 with relu diverges


def test_each_parent_holds_every_epoch_of_its_finished_trials_in_one_file(swept, tmp_path):
    folder, journal, uri = swept
    storage = open_storage(journal)
    client, runs = _runs(uri, "pace")
    parents = {r.data.tags["sweeps.study"]: r for r in runs if r.data.tags.get("sweeps.kind") == "study"}
    for study in find_sweep(storage, "pace"):
        parent = parents[study.name]
        finished = [t for t in storage.get_all_trials(study.study_id) if outcome_of(t) in FINISHED]
        assert parent.data.tags[CURVES_TAG] == str(len(finished))
        path = client.download_artifacts(parent.info.run_id, CURVES_FILE, str(tmp_path))
        table = pq.read_table(path).to_pydict()
        assert set(table["dataset"]) == {study.dataset}
        for t in finished:
            curves = t.user_attrs["run"]["curves"]
            rows = [i for i, n in enumerate(table["trial"]) if n == t.number]
            cross = crossed(t.user_attrs.get("divergence"))
            if cross is not None:  # its last row: the epoch that diverged, the value that crossed
                last = rows.pop()
                assert table["epoch"][last] == cross[1]
                assert table[cross[0]][last] == cross[2] or cross[2] != cross[2]
            assert [table["epoch"][i] for i in rows] == list(range(1, len(curves["train_cost"]) + 1))
            for key in ("train_cost", "val_cost", "val_accuracy"):
                assert [table[key][i] for i in rows] == curves.get(key, [])
        assert set(table["trial"]) == {t.number for t in finished}


def test_a_runs_last_sync_leaves_figures_past_its_deadline_to_sweep_sync(swept, tmp_path):
    folder, journal, _ = swept
    view = SweepStorage(open_storage(journal))
    uri = f"sqlite:///{tmp_path}/late.db"
    tracker = Tracker("pace", uri)
    assert tracker.sync(view) == 16  # the runs first: a sync that writes runs leaves figures queued
    tracker.sync(view, final=True, figures=EndBudget(asked=time.monotonic(), seconds=0.0))  # no time for figures
    client, runs = _runs(uri, "pace")
    parents = [r for r in runs if r.data.tags.get("sweeps.kind") == "study"]
    assert len(parents) == 2 and len(runs) == 2 + 16  # every run is written all the same
    for parent in parents:
        assert not client.list_artifacts(parent.info.run_id, "figures")
        note = parent.data.tags["mlflow.note.content"]
        assert "not drawn by this writer yet; `sweep sync pace` draws them" in note
        assert "every 3 epochs" in note and "`curves.parquet`" in note
    assert tracker.parents.stale_figures() == 2

    again = Tracker("pace", uri)  # 'sweep sync' later
    again.sync(view, final=True)
    client, runs = _runs(uri, "pace")
    for parent in (r for r in runs if r.data.tags.get("sweeps.kind") == "study"):
        assert {a.path for a in client.list_artifacts(parent.info.run_id, "figures")} >= {
            "figures/history.png",
            "figures/divergence_map.png",
        }
        assert "drawn with all 8 finished trials" in parent.data.tags["mlflow.note.content"]
    assert again.parents.stale_figures() == 0 and len(runs) == 18  # nothing written twice
    for parent in (r for r in runs if r.data.tags.get("sweeps.kind") == "study"):
        assert parent.data.tags[FIGURES_TAG] == "8"  # the trials they were drawn with, for later writers

    later = Tracker("pace", uri)  # the next 'sweep run' of the sweep, no new trial: current, nothing redrawn
    later.sync(view, final=True)
    assert later.parents.stale_figures() == 0 and not later.parents.figures_pending
    client, runs = _runs(uri, "pace")
    for parent in (r for r in runs if r.data.tags.get("sweeps.kind") == "study"):
        assert "drawn with all 8 finished trials" in parent.data.tags["mlflow.note.content"]


def _reader(stream, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in stream:
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_while_mlflow_catches_up_prints_the_summary_and_leaves_the_rest_to_sweep_sync(tmp_path, monkeypatch):
    (tmp_path / "late.toml").write_text(SPEC.format(name="late", trials=6))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # Each MLflow run takes 1.5 s more: the trials are done long before MLflow has them all.
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", "late.toml"],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "SWEEPS_TEST_SLOW_MLFLOW_RUN": "1.5"},
    )
    err: list[str] = []
    reader = _reader(proc.stderr, err)
    deadline = time.monotonic() + 300
    while not any("Ctrl-C leaves them to 'sweep sync late'" in line for line in err):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(err)
        time.sleep(0.1)
    line = next(line for line in err if "Ctrl-C leaves them" in line)
    assert line.startswith("MLflow: ") and " to write" in line
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read()
    proc.wait(timeout=120)
    reader.join(10)
    text = "".join(err)
    assert proc.returncode == 3, (out, text)
    assert "Traceback" not in text and "12/" not in out
    assert "6/6" in out and "best val_cost" in out  # the summary
    warning = [line for line in err if line.startswith("Warning: MLflow is missing")]
    assert len(warning) == 1 and "(interrupted)" in warning[0] and "Run 'sweep sync late'" in warning[0]

    with mock.patch.dict(os.environ):  # 'sweep sync' in this process: the same code, no second start-up
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        monkeypatch.chdir(tmp_path)
        sync = CliRunner().invoke(cli, ["sync", "late"])
    assert sync.exit_code == 0, sync.output
    client, runs = _runs(f"sqlite:///{tmp_path}/mlflow.db", "late")
    keys = [
        (r.data.tags["sweeps.study"], r.data.tags["trial_number"])
        for r in runs
        if r.data.tags.get("sweeps.kind") == "trial"
    ]
    assert len(keys) == len(set(keys)) == 12  # every trial once, none lost, none twice
    assert not [r for r in runs if r.info.status == "RUNNING"]
