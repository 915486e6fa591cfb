"""'sweep run --check' tells what the run would do: each dataset's rows, columns, label and
task, and what the storage holds; the limits that come from the machine."""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import sweeps.limits as limits
from studies.execution import open_sweep
from studies.storage import open_storage
from studies.sweep import Choice, Range, SearchSpace
from sweeps.cli import cli
from sweeps.display import file_progress
from sweeps.spec import load_spec

SWEEP = """
name = "{name}"
datasets = [{datasets}]
trials = 4
jobs = 1
[train]
epochs = {epochs}
[search]
learning_rate = {{ low = 0.01, high = 1.0, log = true }}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2)).round(4)
    with open(tmp_path / "first.csv", "w") as fh:
        fh.write("sick,age,dose\n" + "".join(f"{int(x[0] > 0)},{x[0]},{x[1]}\n" for x in X))
    return tmp_path


def _write(folder, *, name="chk", datasets='"circle"', epochs=3):
    path = folder / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, datasets=datasets, epochs=epochs))
    return path


def _check(path, *extra):
    return CliRunner().invoke(cli, ["run", str(path), "--check", *extra])


def _one_error(result, message):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_check_names_rows_columns_label_and_task_of_each_dataset(folder):
    path = _write(folder, datasets='"circle", { name = "first.csv", label = "sick" }')
    result = _check(path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "  dataset 'circle': 500 rows (300 train, 100 validation, 100 test); 2 feature column(s) ['x1', 'x2']; "
        "label the set's own; task binary (2 classes: '0', '1')." in lines
    )
    assert (
        "  dataset 'first': 80 rows (48 train, 16 validation, 16 test); 2 feature column(s) ['age', 'dose']; "
        "label column 'sick'; task binary (2 classes: '0.0', '1.0')." in lines
    )
    assert "storage sweeps.journal: new (no file yet); the run creates it and starts the sweep." in lines
    assert sorted(os.listdir(folder)) == ["chk.toml", "first.csv"]  # nothing written


def test_check_refuses_a_label_it_would_have_guessed_wrong(folder):
    _one_error(
        _check(_write(folder, datasets='"first.csv"')),
        "'datasets[0]': dataset 'first.csv': which column is the label? Without 'label' it is the last, 'dose', "
        "continuous (a regression target), but the first, 'sick', holds 2 integer values like class labels; "
        'say label = "sick" (classification) or label = "dose" (regression).',
    )


def test_check_says_where_a_missing_file_was_looked_for(folder):
    _one_error(
        _check(_write(folder, datasets='"data/x.csv"')),
        f"dataset file 'data/x.csv' does not exist (looked for '{folder}/data/x.csv', relative to the current "
        f"folder '{folder}').",
    )


def test_check_says_what_the_storage_holds(folder):
    path = _write(folder)
    url = str(folder / "sweeps.journal")
    (study,) = open_sweep(load_spec(str(path)), open_storage(url))
    result = _check(path)
    assert result.exit_code == 0, result.output
    assert "storage sweeps.journal: holds sweep 'chk', finished trials circle 0/4; the run resumes it." in (
        result.output.splitlines()
    )
    for value in (0.5, 0.25, None):  # two finished trials, and one failed (not counted)
        trial = study.ask()
        study.tell(trial, value, state=TrialState.FAIL if value is None else TrialState.COMPLETE)
    assert "storage sweeps.journal: holds sweep 'chk', finished trials circle 2/4; the run resumes it." in (
        _check(path).output.splitlines()
    )
    assert "finished trials circle 2/2; nothing left to run." in _check(path, "--trials", "2").output
    other = _write(folder, name="other")
    assert "storage sweeps.journal: holds no sweep 'other'; the run starts it." in _check(other).output
    # Another spec under the same name: refused as the run would refuse it, and nothing is written.
    before = os.path.getsize(url)
    _one_error(
        _check(_write(folder, epochs=5)),
        "sweep 'chk' already exists in this storage with a different spec (key 'train' differs)",
    )
    assert os.path.getsize(url) == before


def test_the_grid_limit_comes_from_the_memory(monkeypatch):
    space = SearchSpace(
        fixed={}, searched={"learning_rate": Range(0.0, 1.0, step=0.001), "activation": Choice(("a", "b"))}
    )
    assert limits.check_grid(space, jobs=2) == 2002
    per_point = limits.GRID_POINT_BYTES + 8 * 2
    monkeypatch.setattr(limits, "machine_memory", lambda: 1000 * limits.GRID_SHARE * 2 * per_point)
    assert limits.max_grid_points(space, jobs=2) == 1000
    assert limits.max_grid_points(space, jobs=1, studies=4) == 500  # a sampler per study in each worker
    with pytest.raises(
        ValueError,
        match=r"has 2002 grid points \('search.learning_rate' alone has 1001 values\), "
        r"but at most 1000 fit .* for each of 1 dataset\(s\) in each of 2 worker\(s\)",
    ):
        limits.check_grid(space, jobs=2)
    monkeypatch.setattr(limits, "machine_memory", lambda: 10**18)
    assert limits.max_grid_points(space, jobs=2) == limits.MAX_GRID_POINTS


def test_a_large_file_shows_a_line_that_moves(tmp_path, monkeypatch):
    import engine.data.files as files
    from engine import load_dataset

    monkeypatch.setattr(files, "PROGRESS_BYTES", 0)
    monkeypatch.setattr(files, "_CHUNK_CELLS", 30)
    monkeypatch.setattr(files, "_PLAIN_CHUNK_BYTES", 100)
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(100)))
    out = io.StringIO()
    with file_progress(stream=out, every=0.0):
        load_dataset(str(path))
    lines = out.getvalue().splitlines()
    assert len(lines) > 2 and lines[-1].startswith(f"reading {str(path)!r}: 100 rows, 100% of ")
    rows = [int(line.split(": ")[1].split(" rows")[0]) for line in lines]
    assert rows == sorted(set(rows)) and rows[0] < 100


def test_a_stack_counts_its_trials_curves_against_the_memory(monkeypatch):
    from engine import load_dataset

    circle = [load_dataset("circle", seed=0)]
    space = SearchSpace(fixed={"epochs": 100000}, searched={"learning_rate": Range(0.01, 1.0, log=True)})
    monkeypatch.setattr(limits, "machine_memory", lambda: 2 * 1024**3)
    limits.check_fits(space, circle, jobs=1, stack=8)  # 8 curves of 100000 epochs: ~200 MiB
    with pytest.raises(
        ValueError,
        match=r"1 worker\(s\) x 1024 stacked network\(s\) .* need about 24\.4 GiB of "
        r"memory, but this machine has 2\.0 GiB; lower 'stack' or 'jobs'",
    ):
        limits.check_fits(space, circle, jobs=1, stack=1024)
    limits.check_fits(dataclasses.replace(space, fixed={"epochs": 100}), circle, jobs=1, stack=1024)


def test_a_worker_stack_beyond_the_cap_is_refused(folder):
    path = _write(folder)
    open_sweep(load_spec(str(path)), open_storage(str(folder / "sweeps.journal")))
    for flag in ("--stack", "--batch"):
        _one_error(
            CliRunner().invoke(cli, ["worker", "chk", flag, "5000"]),
            "command line: 'stack' must be at most 1024 (trials a worker trains at once",
        )


def test_check_takes_an_empty_database_for_a_new_storage_and_writes_nothing(folder):
    path = _write(folder, name="empty")
    db = folder / "empty.db"
    db.touch()  # an empty SQLite file: no Optuna tables yet, as a new PostgreSQL database
    result = _check(path, "--storage", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    assert "new (no Optuna tables yet); the run creates them and starts the sweep." in result.output
    assert db.stat().st_size == 0  # nothing created to answer


def test_check_against_a_database_server_away_is_one_line_with_the_password_masked(folder):
    result = _check(_write(folder, name="away"), "--storage", "postgresql://me:s3cret@127.0.0.1:1/x")
    _one_error(result, "cannot read the storage")
    assert "s3cret" not in result.output


def test_check_refuses_a_storage_the_run_could_not_write(folder, monkeypatch):
    path = _write(folder, name="ro")
    _one_error(_check(path, "--storage", str(folder / "nowhere" / "s.journal")), "does not exist")
    _one_error(_check(path, "--storage", "/dev/null"), "is not a storage file")
    # a read-only file system (root ignores permission bits: the kernel's answer is stood in for)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode == os.W_OK else real(p, mode, **kw))
    _one_error(_check(path), "cannot write the storage 'sweeps.journal': its folder is read-only")
    assert not (folder / "sweeps.journal").exists()
