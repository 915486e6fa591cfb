"""A storage that opens but can't be written (full, read-only) at the sweep's open: one line naming
it (password masked), the cause in plain words and what to do; exit 2, no traceback."""

from __future__ import annotations

import errno
import os
import sqlite3

import optuna
import pytest
from click.testing import CliRunner

from studies.storage import StorageError, open_storage, plain_cause, storage_errors
from sweeps.cli import cli


def _chained(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as exc:  # noqa: BLE001 - what a caller catches: the chain behind it
        return exc


@pytest.mark.parametrize(
    ("inner", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "its folder, is read-only"),
        (RuntimeError("cannot execute CREATE TABLE in a read-only transaction"), "database is read-only"),
        (
            RuntimeError("(1290, 'The MariaDB server is running with the --read-only option so it cannot execute')"),
            "runs read-only",
        ),
        (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
        (sqlite3.OperationalError("unable to open database file"), "SQLite can't open or create the file"),
    ],
)
def test_the_cause_is_found_behind_optunas_words(inner, cause):
    # Optuna wraps a failed commit in "exceeding max length", which names none of these.
    exc = _chained(optuna.exceptions.StorageInternalError("An exception is raised during the commit."), inner)
    found, todo = plain_cause(exc)
    assert cause in found and todo


def test_an_unknown_cause_is_quoted_with_its_password_hidden():
    url = "postgresql://bob:s3cr3tpw@db/x"
    found, todo = plain_cause(RuntimeError(f"server at {url} said no"), url)
    assert todo is None and "s3cr3tpw" not in found and "server at" in found


def test_storage_errors_names_the_storage_masked_and_passes_other_errors():
    url = "postgresql://bob:s3cr3tpw@db/x"
    with pytest.raises(StorageError) as info, storage_errors(url):
        raise OSError(errno.ENOSPC, "No space left on device")
    text = str(info.value)
    assert "'postgresql://bob:***@db/x'" in text and "the disk is full" in text and "free some space" in text
    assert "s3cr3tpw" not in text and "\n" not in text
    with pytest.raises(KeyError), storage_errors(url):  # a bug keeps its traceback
        raise KeyError("x")


def _run(path, storage: str):
    return CliRunner().invoke(cli, ["run", str(path), "--storage", storage, "--no-mlflow"])


def _one_line(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], errors[0]


def test_a_full_disk_at_the_journals_open_is_one_line(sweep_file, tmp_path, monkeypatch):
    from studies.storage import journal

    def full(self) -> bool:  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", self._path)

    monkeypatch.setattr(journal.FlockLock, "acquire", full)
    path = sweep_file("full", trials=2, jobs=1, epochs=2)
    _one_line(_run(path, "full.journal"), "full.journal", "the disk is full", "free some space")


def test_a_journal_on_a_read_only_file_system_is_one_line(sweep_file, tmp_path, monkeypatch):
    from studies.storage import journal

    def read_only(self) -> bool:  # noqa: ANN001
        raise OSError(errno.EROFS, "Read-only file system", self._path)

    monkeypatch.setattr(journal.FlockLock, "acquire", read_only)
    path = sweep_file("rofs", trials=2, jobs=1, epochs=2)
    _one_line(_run(path, "rofs.journal"), "rofs.journal", "read-only file system", "--storage")


def test_a_journal_in_a_read_only_folder_is_one_line(sweep_file, tmp_path, monkeypatch):
    path = sweep_file("rodir", trials=2, jobs=1, epochs=2)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes a read-only folder: the error the kernel gives anyone else
        from studies.storage import journal

        def denied(self) -> bool:  # noqa: ANN001
            raise PermissionError(errno.EACCES, "Permission denied", self._path)

        monkeypatch.setattr(journal.FlockLock, "acquire", denied)
    try:
        _one_line(_run(path, str(folder / "s.journal")), "s.journal", "permission denied")
    finally:
        folder.chmod(0o755)


def test_a_read_only_sqlite_file_is_one_line_not_max_length(sweep_file, tmp_path):
    path = sweep_file("rosql", trials=2, jobs=1, epochs=2)
    db = tmp_path / "s.db"
    open_storage(f"sqlite:///{db}", heartbeat_interval=None)  # Optuna's tables: the file exists
    # SQLite's own read-only mode: what a read-only mount or file gives, for root too.
    result = _run(path, f"sqlite:///file:{db}?mode=ro&uri=true")
    _one_line(result, "s.db", "read-only", "choose another --storage")
    assert "max length" not in result.output


@pytest.mark.postgres
def test_a_read_only_postgresql_is_one_line(sweep_file, pg_database):
    import psycopg

    url = pg_database()
    open_storage(url, heartbeat_interval=None)  # its tables exist; the sweep is new
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    path = sweep_file("ropg", trials=2, jobs=1, epochs=2)
    secret = url.replace("postgres@", "postgres:pw1234567@")  # trust auth ignores it; it must not show
    result = _run(path, secret)
    _one_line(result, "postgres:***@", "read-only", "default_transaction_read_only")
    assert "pw1234567" not in result.output and "max length" not in result.output
