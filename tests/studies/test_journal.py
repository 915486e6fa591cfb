"""The journal file after a crash: a torn last record is cut off with a warning (under the
lock, never a record still being written), a corrupt one stops everything with its line,
and neither is made worse by the next append."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import warnings

import optuna
import pytest
from click.testing import CliRunner

from studies.storage.journal import JournalWarning
from studies.storage.opening import open_storage
from sweeps.cli import cli

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


def _journal(path, trials: int = 3) -> bytes:
    study = optuna.create_study(study_name="s/d", storage=open_storage(str(path)))
    for i in range(trials):
        trial = study.ask(X)
        trial.report(0.5, 1)
        study.tell(trial, i / 10)
    return path.read_bytes()


def _plain(path) -> optuna.Study:
    """The study read by Optuna's own backend: it fails on any damage."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name="s/d", storage=storage)


def test_a_torn_last_record_is_cut_with_one_warning_and_the_rest_kept(tmp_path):
    path = tmp_path / "s.journal"
    full = _journal(path)
    last = full.rstrip(b"\n").rfind(b"\n") + 1  # where the last record starts
    path.write_bytes(full[: last + 25])  # a write that stopped 25 bytes into the record
    with pytest.warns(JournalWarning) as caught:
        storage = open_storage(str(path))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and f"at byte {last}" in message and "25 byte(s)" in message
    assert path.read_bytes() == full[:last]  # every record before it, unchanged
    study = optuna.load_study(study_name="s/d", storage=storage)
    assert len(study.trials) == 3  # the lost record was the last trial's end
    assert study.trials[-1].state == optuna.trial.TrialState.RUNNING
    # The next append starts on a line of its own: Optuna's own reader reads everything.
    study.tell(study.trials[-1].number, 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [t.value for t in _plain(path).trials] == [0.0, 0.1, 0.9]


def test_a_torn_tail_that_appears_later_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "s.journal"
    _journal(path, trials=1)
    storage = open_storage(str(path))
    study = optuna.load_study(study_name="s/d", storage=storage)
    with open(path, "ab") as fh:
        fh.write(b'{"op_code":4,"worker_id":"dead')  # another process died mid-write
    with pytest.warns(JournalWarning, match="cut off by a crash"):
        study.tell(study.ask(X), 0.7)
    assert sorted(t.value for t in _plain(path).trials) == [0.0, 0.7]


def test_a_corrupt_record_is_named_and_nothing_is_appended(tmp_path):
    path = tmp_path / "s.journal"
    lines = _journal(path).splitlines(keepends=True)
    lines[3] = lines[3][:10] + b"#" + lines[3][11:]
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    offset = sum(len(line) for line in lines[:3])
    with pytest.raises(ValueError, match=re.escape(f"journal {str(path)!r} is damaged at line 4 (byte {offset})")):
        open_storage(str(path))
    assert path.read_bytes() == damaged
    r = CliRunner().invoke(cli, ["status", "s", "--storage", str(path)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "line 4" in r.output
    assert path.read_bytes() == damaged


def test_json_that_is_not_a_record_is_refused(tmp_path):
    path = tmp_path / "s.journal"
    full = _journal(path)
    path.write_bytes(full + b"[1, 2]\n")
    line = len(full.splitlines()) + 1
    with pytest.raises(ValueError, match=f"line {line} .*not a journal record"):
        open_storage(str(path))


@pytest.mark.parametrize(
    "record",
    [
        b'{"op_code": 99}',
        b'{"op_code": "6"}',
        b'{"op_code": true}',
        b'{"op_code": 6}',
        b'{"op_code": 5, "worker_id": "w", "trial_id": 0}',
    ],
)
def test_a_record_optuna_cannot_replay_is_named_and_nothing_is_appended(tmp_path, record):
    path = tmp_path / "s.journal"
    full = _journal(path)
    damaged = full + record + b"\n"
    path.write_bytes(damaged)
    line = len(full.splitlines()) + 1
    with pytest.raises(
        ValueError, match=re.escape(f"is damaged at line {line} (byte {len(full)}): not a journal record")
    ):
        open_storage(str(path))
    r = CliRunner().invoke(cli, ["status", "s", "--storage", str(path)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and f"line {line} (byte {len(full)})" in r.output
    assert path.read_bytes() == damaged


def test_a_record_optuna_skips_is_no_damage(tmp_path):
    """DISCARD_TRIALS (written by Rustuna) is skipped by Optuna's replay, which reads none of its keys."""
    path = tmp_path / "s.journal"
    path.write_bytes(_journal(path) + b'{"op_code": 10}\n')
    assert len(optuna.load_study(study_name="s/d", storage=open_storage(str(path))).trials) == 3
    assert len(_plain(path).trials) == 3


WRITE_SLOWLY = """
import json, sys
from studies.storage.journal import FlockLock
lock = FlockLock(sys.argv[1])
lock.acquire()
record = json.dumps({"op_code": 2, "worker_id": "w", "study_id": 0, "user_attr": {"k": 1}}).encode()
with open(sys.argv[1], "ab") as fh:
    fh.write(record[:20])
    fh.flush()
    print("half", flush=True)
    sys.stdin.readline()
    fh.write(record[20:] + b"\\n")
lock.release()
"""


def test_a_record_being_written_under_the_lock_is_never_cut(tmp_path):
    path = tmp_path / "s.journal"
    _journal(path, trials=1)
    # A light process (it imports only the lock's module) holds the lock while a record is half written.
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_SLOWLY, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "half"
    opened: list = []

    def open_it() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            opened.append(open_storage(str(path)))
        opened.append(seen)

    thread = threading.Thread(target=open_it)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive()  # waiting for the lock, not cutting what is being written
    writer.communicate("go\n", timeout=60)
    assert writer.returncode == 0
    thread.join(60)
    storage, seen = opened
    assert not [w for w in seen if issubclass(w.category, JournalWarning)]
    assert optuna.load_study(study_name="s/d", storage=storage).user_attrs == {"k": 1}


@pytest.mark.slow
def test_a_sweep_resumes_to_its_exact_totals_after_a_torn_record(sweep_file, tmp_path):
    path = sweep_file("torn", trials=4, jobs=1, epochs=2)
    # In a process of its own, as a crash would leave it: its workers are gone.
    first = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(path), "--no-mlflow"], capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "sweeps.journal"
    full = journal.read_bytes()
    cut = len(full) - 40  # inside the last record
    journal.write_bytes(full[:cut])
    again = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", "--trials", "5"])
    assert again.exit_code == 0, again.output
    start = full.rfind(b"\n", 0, cut) + 1
    assert again.stderr.count("Warning: journal") == 1 and f"at byte {start}" in again.stderr
    final = CliRunner().invoke(cli, ["status", "torn", "--json"])
    assert final.exit_code == 0, final.output
    assert [s["finished"] for s in json.loads(final.stdout)["studies"]] == [5, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        assert len(storage.get_all_studies()) == 2


def test_the_cut_warning_is_one_line_without_source_in_any_process(tmp_path):
    # A worker process cuts a torn tail with Python's own warning display: no source line.
    path = tmp_path / "s.journal"
    full = _journal(path)
    path.write_bytes(full + b'{"op_code":4,"worker_id":"dead')
    code = f"from studies.storage.opening import open_storage; open_storage({str(path)!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("Warning: journal ") and "cut off by a crash" in run.stderr, run.stderr
    assert len(run.stderr.splitlines()) == 1 and "warnings.warn" not in run.stderr, run.stderr
