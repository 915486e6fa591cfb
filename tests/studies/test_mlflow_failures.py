"""MLflow that did not get every run is said, once, with its cause and the 'sweep sync' to run:
an unwritable local store (told at once, not after MLflow's engine retried it for minutes), a
half-migrated one (with how to recover it), a writer process killed mid-run (exit code 3)."""

from __future__ import annotations

import errno
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest
from click.testing import CliRunner

from studies.tracking import MlflowStatus
from studies.tracking import sqlite as mlflow_sqlite
from sweeps.cli import cli
from sweeps.display import mlflow_end, mlflow_line
from tests.studies.conftest import SPEC

RETRIES = "Operation will be retried"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep 'mf' (2 studies x 2 trials) in a journal, MLflow never written."""
    folder = tmp_path_factory.mktemp("swept")
    path = folder / "mf.toml"
    path.write_text(SPEC.format(name="mf", trials=2, jobs=1, epochs=2))
    journal = folder / "mf.journal"
    r = CliRunner().invoke(cli, ["run", str(path), "--storage", str(journal), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    return journal


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MLflow SQLite store with its tables (made once: MLflow's migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def _sync(journal, uri: str):
    return CliRunner().invoke(cli, ["sync", "mf", "--storage", str(journal), "--tracking-uri", uri])


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and RETRIES not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_unwritable_says_why_by_trying(tmp_path, monkeypatch):
    assert mlflow_sqlite.unwritable(str(tmp_path / "new" / "mlflow.db")) is None  # MLflow makes the folder
    (tmp_path / "afile").write_text("x")
    assert "is a file, not a folder" in mlflow_sqlite.unwritable(str(tmp_path / "afile" / "mlflow.db"))

    def read_only(*args, **kwargs):  # noqa: ANN002, ANN003 - what a read-only mount answers, even to root
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    why = mlflow_sqlite.unwritable(str(tmp_path / "mlflow.db"))
    assert why == f"its folder {tmp_path} is on a read-only file system"


def test_sync_to_an_unwritable_store_fails_in_one_line(swept, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = _error_line(_sync(swept, f"sqlite:///{tmp_path}/mlflow.db"))
    assert "mlflow.db can't be written" in line and "read-only file system" in line, line
    assert "--tracking-uri" in line and "sweep sync mf" in line
    assert not (tmp_path / "mlflow.db").exists()  # nothing written


@pytest.mark.parametrize("name", ["mlflow.db", "my mlflow's.db"])  # the advice is a command a shell reads
def test_a_half_migrated_store_says_how_to_recover(swept, store, tmp_path, name):
    db = tmp_path / name
    shutil.copy(store, db)
    con = sqlite3.connect(db)  # MLflow's set-up cut off: tables, but no record of the schema's version
    con.execute("DROP TABLE alembic_version")
    con.execute("DROP TABLE datasets")
    con.commit()
    con.close()
    line = _error_line(_sync(swept, f"sqlite:///{db}"))
    advice = f"mv {shlex.quote(str(db))} {shlex.quote(str(db) + '.broken')}"
    assert "half-migrated" in line and advice in line and "sweep sync mf" in line, line
    assert "once it works again" not in line
    shutil.move(db, tmp_path / f"{name}.broken")  # what the message says to do
    again = _sync(swept, f"sqlite:///{db}")
    assert again.exit_code == 0 and again.output.startswith("4 run(s) created"), again.output


def test_a_migration_failing_on_what_exists_is_half_migrated(swept, store, tmp_path):
    db = tmp_path / "mlflow.db"
    shutil.copy(store, db)
    con = sqlite3.connect(db)  # the version recorded is older than the tables: MLflow migrates again
    con.execute("UPDATE alembic_version SET version_num = '451aebb31d03'")  # MLflow's first migration
    con.execute("DROP TABLE datasets")
    con.commit()
    con.close()
    line = _error_line(_sync(swept, f"sqlite:///{db}"))
    assert "half-migrated" in line and "sweep sync mf" in line, line


def test_the_end_says_mlflows_failure_once_with_exit_3(capsys):
    why = "MLflow's database /x/mlflow.db can't be written (...); ... run 'sweep sync s'."
    status = MlflowStatus(failing=True, failure=why, done=True)
    assert mlflow_line(status, "s") == f"MLflow failing, tried again every 30 s: {why}"
    assert mlflow_end("s", status) == 3
    err = capsys.readouterr().err
    assert err == f"Warning: {why}\n"
    killed = MlflowStatus(mine=4, stopped="the MLflow writer process was killed by SIGKILL")
    assert mlflow_end("s", killed) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "killed by SIGKILL" in err[0] and "sweep sync s" in err[0]
    assert mlflow_end("s", MlflowStatus(done=True)) == 0


@pytest.mark.slow
def test_a_run_with_an_unwritable_store_warns_once_and_exits_3(sweep_file, tmp_path):
    path = sweep_file("nowrite", trials=2, jobs=1, epochs=2)
    (tmp_path / "afile").write_text("x")  # a store nobody can write, root included
    r = CliRunner().invoke(cli, ["run", str(path), "--tracking-uri", f"sqlite:///{tmp_path}/afile/mlflow.db"])
    assert r.exit_code == 3, r.output
    assert RETRIES not in r.output and "Traceback" not in r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1, r.output
    assert "afile is a file, not a folder" in warnings[0] and "sweep sync nowrite" in warnings[0]


def _writer_pid(launcher: int) -> int | None:
    """The launcher's MLflow writer: its one child started by multiprocessing's spawn."""
    ps = ["ps", "-ww", "--ppid", str(launcher), "-o", "pid=,args="]  # -ww: whole command lines
    out = subprocess.run(ps, capture_output=True, text=True).stdout
    pids = [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]
    return pids[0] if pids else None


@pytest.mark.slow
def test_a_killed_writer_is_said_and_sync_catches_up(sweep_file, tmp_path):
    path = sweep_file("kw", trials=8, jobs=1, epochs=400)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    writer, deadline = None, time.monotonic() + 120
    while writer is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        writer = _writer_pid(proc.pid)
    assert writer is not None, proc.communicate(timeout=300)
    subprocess.run(["kill", "-KILL", str(writer)], check=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "killed by SIGKILL" in warnings[0] and "sweep sync kw" in warnings[0], err
    synced = CliRunner().invoke(cli, ["sync", "kw"])
    assert synced.exit_code == 0 and "run(s) created" in synced.output, synced.output
    again = CliRunner().invoke(cli, ["sync", "kw"])
    assert again.output.startswith("0 run(s) created"), again.output


def test_a_database_server_away_is_said_at_once_with_its_password_masked():
    from studies.tracking.connection import MlflowConnection, TrackingStoreError

    conn = MlflowConnection("db", "postgresql://bob:pw1234567@127.0.0.1:1/mlflow")  # nothing listens on port 1
    with pytest.raises(TrackingStoreError) as info:
        conn.connect()
    text = str(info.value)
    assert "postgresql://bob:***@127.0.0.1:1/mlflow can't be reached" in text and "pw1234567" not in text
    assert "sweep sync db" in text and "\n" not in text


def test_a_stop_signal_waits_for_the_stores_tables(tmp_path):
    # Stopped half-way through MLflow's set-up of mlflow.db, the writer left a half-migrated store
    # (every later run exit 3): its SIGTERM now waits for the tables, then ends it as before.
    script = f"""
import os, signal, sys
from studies.tracking import sqlite
signal.signal(signal.SIGTERM, sqlite.stop_unless_creating)
with sqlite.creating("sqlite:///{tmp_path}/mlflow.db"):
    os.kill(os.getpid(), signal.SIGTERM)
    open("{tmp_path}/made", "w").close()  # the set-up goes on to its end
print("not reached")
"""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert (tmp_path / "made").exists() and "not reached" not in proc.stdout
