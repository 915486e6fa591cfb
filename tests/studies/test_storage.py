"""Storage URLs, redaction, and the journal file's lock and format."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from click.testing import CliRunner
from optuna.storages.journal._storage import JournalOperation

from studies.storage.journal import DURABLE_OPS
from studies.storage.opening import open_storage, redact, scrub, storage_kind
from sweeps.cli import cli


def test_durable_operations_match_optunas_op_codes():
    assert set(DURABLE_OPS) == {
        JournalOperation.CREATE_STUDY,
        JournalOperation.DELETE_STUDY,
        JournalOperation.SET_STUDY_USER_ATTR,
        JournalOperation.SET_TRIAL_STATE_VALUES,
        JournalOperation.DISCARD_TRIALS,
    }


def test_passwords_are_redacted():
    assert redact("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact("redis://:hunter2@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert redact("sweeps.journal") == "sweeps.journal"
    assert "s3cret" not in scrub(
        "could not connect to postgresql://bob:s3cret@db/x: s3cret refused", "postgresql://bob:s3cret@db/x"
    )


HOSTILE_PASSWORDS = [
    "sec@ret",
    "a/b@c",
    "x:y@z",
    "p%40ss",
    "pä@ss✓w",
    "a#b?c",
    "q?r@s/t",
    "@@@",
    "::",
    "ab@cd/ef:gh",
    "%2F%3A%40",
    "hunter2",
]


def _fragments(password: str) -> set[str]:
    """Every run of the password between separators, of 3 characters or more."""
    from urllib.parse import unquote

    out = set()
    for secret in (password, unquote(password)):
        for a in range(len(secret)):
            for b in range(a + 3, len(secret) + 1):
                piece = secret[a:b]
                if (a == 0 or secret[a - 1] in "@:/?#") and (b == len(secret) or secret[b] in "@:/?#"):
                    out.add(piece)
    return out


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://bob:{}@db.example:5432/x",
        "redis://:{}@127.0.0.1:6379/0",
        "http://bob:{}@mlflow-host:5000",
        "mysql+pymysql://bob:{}@db/x?charset=utf8",
    ],
)
def test_hostile_passwords_are_redacted_to_the_last_at(password, template):
    url = template.format(password)
    expected = template.format("***")
    assert redact(url) == expected
    assert (
        scrub(f"could not connect to {url} (retrying {url})", None)
        == f"could not connect to {expected} (retrying {expected})"
    )
    for piece in _fragments(password):
        assert piece not in scrub(f"failed to resolve host '{piece}@db.example': {url}", url)


@pytest.mark.postgres
@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_drivers_messages_never_show_a_piece_of_the_password(password):
    url = f"postgresql://nobody_here:{password}@127.0.0.1:5432/no_such_database"
    with pytest.raises(ValueError, match="cannot open storage") as info:
        open_storage(url)
    message = str(info.value)
    assert "postgresql://nobody_here:***@127.0.0.1:5432/no_such_database" in message
    for piece in _fragments(password):
        assert piece not in message, (piece, message)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:p@ss:w/rd@127.0.0.1:5432/x",
        "postgresql://bob@127.0.0.1:port/x",
        "redis://:p@ss:w/rd@127.0.0.1:6379/0",
    ],
)
def test_urls_their_driver_cannot_parse_are_named(url):
    """An unescaped password makes the driver read a piece of it as the port: the message still
    names the storage (without its password), not just "invalid literal for int()"."""
    with pytest.raises(ValueError, match="^cannot open storage '") as info:
        open_storage(url)
    assert "p@ss" not in str(info.value) and "w/rd" not in str(info.value)
    r = CliRunner().invoke(cli, ["status", "s", "--storage", url])
    assert r.exit_code == 2 and r.output.startswith("Error: cannot open storage '") and r.output.count("\n") == 1


def test_urls_without_a_password_are_left_alone():
    for url in ("postgresql://bob@db:5432/x", "postgresql://db:5432/x", "sqlite:///a:b@c.db", "/tmp/x@y:z.journal"):
        assert redact(url) == url


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sweeps.journal", "journal"),
        ("/tmp/x.journal", "journal"),
        ("sqlite:///x.db", "rdb"),
        ("postgresql://u@h/db", "rdb"),
        ("postgresql+psycopg2://u@h/db", "rdb"),
        ("mysql://u@h/db", "rdb"),
        ("redis://localhost:6379", "redis"),
    ],
)
def test_storage_kinds(url, kind):
    assert storage_kind(url) == kind


def test_bad_storage_urls_are_named_without_their_password(tmp_path):
    with pytest.raises(ValueError, match=r"'storage' must be a journal file path or a URL with a scheme in"):
        storage_kind("ftp://me:pw@host/x")
    with pytest.raises(ValueError) as info:
        storage_kind("ftp://me:pw@host/x")
    assert "pw@" not in str(info.value)
    with pytest.raises(ValueError, match="the folder of .* does not exist"):
        open_storage(str(tmp_path / "missing" / "x.journal"))


def test_journal_is_readable_by_optunas_own_backend(tmp_path):
    path = str(tmp_path / "s.journal")
    study = optuna.create_study(study_name="a/b", storage=open_storage(path))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.report(0.5, 1)
    study.tell(trial, 0.25)
    plain = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    loaded = optuna.load_study(study_name="a/b", storage=plain)
    assert loaded.best_value == 0.25 and loaded.trials[0].intermediate_values == {1: 0.5}


HOLD = """
import sys
from studies.storage.journal import FlockLock
lock = FlockLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""


def _hold(path: str) -> subprocess.Popen:
    """A light process (it imports only the lock's module) holding the journal's lock until a
    line comes on its stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0


def _is_locked(path: str) -> bool:
    import fcntl
    import os

    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our lock if we got it
    return False


def test_flock_is_exclusive_across_processes_and_freed_with_its_holder(tmp_path):
    path = str(tmp_path / "j")
    p = _hold(path)
    assert _is_locked(path)
    _release(p)
    assert not _is_locked(path)
    # A holder that is killed frees the lock with it.
    p = _hold(path)
    assert _is_locked(path)
    p.kill()
    p.wait(30)
    assert not _is_locked(path)


def test_a_journal_named_through_a_symbolic_link_shares_its_lock(tmp_path):
    """Two processes naming one journal by two paths must exclude each other: else one cuts
    the other's record being written as a torn tail."""
    real = tmp_path / "data" / "sweeps.journal"
    real.parent.mkdir()
    link = tmp_path / "sweeps.journal"
    link.symlink_to(real)
    open_storage(str(real))
    p = _hold(str(real))
    try:
        backend = open_storage(str(link))._backend
        assert backend.lock._path == str(real) + ".lock"
        assert _is_locked(str(real))
    finally:
        _release(p)


def test_a_redis_storage_opens_without_optunas_experimental_warning(recwarn):
    pytest.importorskip("redis")
    open_storage("redis://127.0.0.1:6379/15")
    assert not [w for w in recwarn if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


def test_a_missing_database_driver_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(ValueError, match=r"needs the Python package 'psycopg\[binary\]'") as info:
        open_storage("postgresql://me:hunter2@127.0.0.1/sweeps")
    assert "hunter2" not in str(info.value)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    with pytest.raises(ValueError, match=r"'mysqlclient'.*mysql\+pymysql://"):
        open_storage("mysql://root@127.0.0.1/sweeps")


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "FOLDER"])
def test_a_journal_path_that_is_no_file_is_refused_in_one_line(path, tmp_path):
    from studies.errors import SweepsError
    from studies.storage import open_storage

    path = str(tmp_path) if path == "FOLDER" else path
    with pytest.raises(SweepsError, match="is not a journal file") as info:
        open_storage(path)
    assert "\n" not in str(info.value)
