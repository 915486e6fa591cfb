"""One sweep, one data: a run or a worker whose copy of a dataset differs from the one the
study was created with refuses in one line (exit 2) before writing anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

from engine import from_arrays, load_dataset
from studies.storage.opening import open_storage
from sweeps.cli import cli

SPEC = """
name = "same"
datasets = ["data.csv", "circle"]
trials = 2
jobs = 1
batch = 1

[train]
epochs = 2
batch_size = 10

[search]
learning_rate = [0.05, 0.1]

[sampler]
name = "random"

[pruner]
name = "none"
"""


def _csv(rows: int = 60, change: float = 0.0) -> str:
    lines = [f"{(i % 7) / 3},{(i * 13 % 11) / 5},{i % 2}" for i in range(rows)]
    if change:
        first = lines[0].split(",")
        lines[0] = f"{float(first[0]) + change},{first[1]},{first[2]}"
    return "a,b,label\n" + "\n".join(lines) + "\n"


def test_the_fingerprint_covers_values_labels_and_split_and_is_the_same_in_a_new_process():
    X = np.arange(40.0).reshape(20, 2)
    y = np.arange(20) % 2
    base = from_arrays(X, y, seed=0)
    assert len(base.fingerprint) == 64 and base.signature["rows"] == [12, 4, 4]
    X2 = X.copy()
    X2[3, 1] += 1e-12
    assert from_arrays(X2, y, seed=0).fingerprint != base.fingerprint
    assert from_arrays(X, 1 - y, seed=0).fingerprint != base.fingerprint
    assert from_arrays(X, y, seed=1).fingerprint != base.fingerprint  # another split
    assert from_arrays(X, y, seed=0, val_fraction=0.3).signature["rows"] == [10, 6, 4]
    assert from_arrays(X, y, seed=0).fingerprint == base.fingerprint
    code = "from engine import load_dataset; print(load_dataset('spiral', seed=3, noise=0.2).fingerprint)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == load_dataset("spiral", seed=3, noise=0.2).fingerprint


@pytest.fixture(scope="module")
def _started(tmp_path_factory):
    """One sweep run for the module (host A's folder, its data file and the shared journal);
    each test gets its own copy of it."""
    root = tmp_path_factory.mktemp("started")
    a = root / "host-a"
    a.mkdir()
    (a / "same.toml").write_text(SPEC)
    (a / "data.csv").write_text(_csv())
    journal = root / "shared.journal"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(a)
        r = CliRunner().invoke(cli, ["run", "same.toml", "--storage", str(journal), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture
def two_folders(_started, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    shutil.copytree(_started / "host-a", a)
    b.mkdir()
    (b / "same.toml").write_text(SPEC)
    journal = tmp_path / "shared.journal"
    shutil.copyfile(_started / "shared.journal", journal)
    monkeypatch.chdir(a)
    return a, b, journal


def _refused(result, journal, before: bytes, message: str) -> None:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert journal.read_bytes() == before  # nothing written


@pytest.mark.slow  # runs a whole sweep
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _csv(change=0.5),
            "dataset 'data' is not the data sweep 'same' was started with (the same shapes, other values",
        ),
        (_csv(rows=70), "(train/validation/test rows [42, 14, 14] here, [36, 12, 12] in the storage)"),
    ],
    ids=["values", "rows"],
)
def test_a_run_or_worker_with_other_data_refuses(two_folders, monkeypatch, data, message):
    a, b, journal = two_folders
    (b / "data.csv").write_text(data)
    monkeypatch.chdir(b)
    before = journal.read_bytes()
    _refused(
        CliRunner().invoke(cli, ["run", "same.toml", "--storage", str(journal), "--no-mlflow", "--trials", "3"]),
        journal,
        before,
        message,
    )
    _refused(CliRunner().invoke(cli, ["worker", "same", "--storage", str(journal)]), journal, before, message)


@pytest.mark.slow  # runs a whole sweep
def test_reproduce_and_report_with_other_data_refuse(two_folders, monkeypatch, tmp_path):
    """Retraining on an edited file would report "differs" (or a test score) about other data."""
    a, b, journal = two_folders
    r = CliRunner().invoke(cli, ["reproduce", "same", "--dataset", "data", "--trial", "0", "--storage", str(journal)])
    assert r.exit_code == 0 and r.output.startswith("reproduced"), r.output
    (a / "data.csv").write_text(_csv(change=0.5))
    message = "dataset 'data' is not the data sweep 'same' was started with (the same shapes, other values"
    before = journal.read_bytes()
    _refused(
        CliRunner().invoke(cli, ["reproduce", "same", "--dataset", "data", "--trial", "0", "--storage", str(journal)]),
        journal,
        before,
        message,
    )
    out = tmp_path / "report"
    _refused(
        CliRunner().invoke(cli, ["report", "same", "--out", str(out), "--no-mlflow", "--storage", str(journal)]),
        journal,
        before,
        message,
    )
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow  # runs a whole sweep
def test_the_same_data_elsewhere_joins_and_the_studies_record_it(two_folders, monkeypatch):
    a, b, journal = two_folders
    (b / "data.csv").write_text(_csv())
    monkeypatch.chdir(b)
    r = CliRunner().invoke(cli, ["run", "same.toml", "--storage", str(journal), "--no-mlflow", "--trials", "3"])
    assert r.exit_code == 0, r.output
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    attrs = {s.study_name: s.user_attrs["data"] for s in storage.get_all_studies()}
    assert attrs["same/data"] == json.loads(json.dumps(load_dataset(str(b / "data.csv")).signature))
    assert attrs["same/circle"]["sha256"] == load_dataset("circle").fingerprint


@pytest.mark.slow  # runs a whole sweep
def test_worker_on_a_damaged_sweep_is_one_line(two_folders, monkeypatch):
    a, b, journal = two_folders
    # Written with the sweeps' own journal lock: Optuna's default (symlink) lock would take the
    # sweeps' lock file left next to the journal for a stale lock and wait its 30 s grace period.
    storage = open_storage(str(journal))
    study = optuna.load_study(study_name="same/circle", storage=storage)
    study.set_user_attr("trials", "many")
    before = journal.read_bytes()
    _refused(
        CliRunner().invoke(cli, ["worker", "same", "--storage", str(journal)]),
        journal,
        before,
        "study 'same/circle' in the storage: its attribute 'trials' must be an integer, but got str 'many'",
    )
    study.set_user_attr("trials", 2)
    study.set_user_attr("sweep", 5)
    before = journal.read_bytes()
    _refused(
        CliRunner().invoke(cli, ["worker", "same", "--storage", str(journal)]),
        journal,
        before,
        "its attribute 'sweep' must be the sweep file as JSON text, but got int '5'",
    )
    optuna.delete_study(study_name="same/circle", storage=storage)
    before = journal.read_bytes()
    _refused(
        CliRunner().invoke(cli, ["worker", "same", "--storage", str(journal)]),
        journal,
        before,
        "has no study 'same/circle' (it lists ['same/data']); was it deleted?",
    )
