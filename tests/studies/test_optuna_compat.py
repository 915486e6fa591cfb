"""Optuna's private names used here (studies/_optuna_compat.py): fail loudly when upstream
renames or changes them, before anything subtler breaks."""

from __future__ import annotations

import inspect

import optuna
import pytest

from studies import _optuna_compat as compat


def test_journal_operation_codes_are_the_ones_the_file_holds(tmp_path):
    op = compat.JournalOperation
    assert {o.name: int(o) for o in op} == {
        "CREATE_STUDY": 0, "DELETE_STUDY": 1, "SET_STUDY_USER_ATTR": 2, "SET_STUDY_SYSTEM_ATTR": 3,
        "CREATE_TRIAL": 4, "SET_TRIAL_PARAM": 5, "SET_TRIAL_STATE_VALUES": 6, "SET_TRIAL_INTERMEDIATE_VALUE": 7,
        "SET_TRIAL_USER_ATTR": 8, "SET_TRIAL_SYSTEM_ATTR": 9, "DISCARD_TRIALS": 10,
    }
    # And a journal written by Optuna says so.
    path = str(tmp_path / "j")
    backend = optuna.storages.journal.JournalFileBackend(path)
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend), study_name="s")
    study.tell(study.ask(), 1.0)
    codes = [log["op_code"] for log in backend.read_logs(0)]
    assert codes[0] == op.CREATE_STUDY and op.SET_TRIAL_STATE_VALUES in codes


def test_heartbeat_helpers_keep_their_signatures(tmp_path):
    assert list(inspect.signature(compat.is_heartbeat_enabled).parameters) == ["storage"]
    assert list(inspect.signature(compat.get_heartbeat_thread).parameters) == ["trial_id", "storage"]
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=5, grace_period=10)
    assert compat.is_heartbeat_enabled(storage) is True
    assert compat.is_heartbeat_enabled(optuna.storages.InMemoryStorage()) is False


def test_journal_backend_interface_we_override():
    base = optuna.storages.journal.JournalFileBackend
    assert list(inspect.signature(base.read_logs).parameters) == ["self", "log_number_from"]
    assert list(inspect.signature(base.append_logs).parameters) == ["self", "logs"]
    assert list(inspect.signature(base.__init__).parameters) == ["self", "file_path", "lock_obj"]
