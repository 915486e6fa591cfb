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


def test_rdb_private_names_we_use_are_there(tmp_path):
    """The batched RDB writes and reads (studies._optuna_compat) use these; equality of what
    they write with Optuna's own calls is tests/studies/test_store.py's."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    assert list(inspect.signature(_create_scoped_session).parameters) == ["scoped_session", "ignore_integrity_error"]
    assert list(inspect.signature(optuna.storages.RDBStorage._get_trials).parameters) == [
        "self", "study_id", "states", "included_trial_ids", "trial_id_greater_than"]
    for name in ("trial_id", "number", "study_id", "state", "_datetime_complete_utc", "count_past_trials"):
        assert hasattr(models.TrialModel, name), name
    assert callable(models.StudyModel.find_or_raise_by_id)
    for cls, fields in ((models.TrialParamModel, ("trial_id", "param_name", "param_value", "distribution_json")),
                        (models.TrialIntermediateValueModel, ("trial_id", "step", "intermediate_value",
                                                              "intermediate_value_type")),
                        (models.TrialValueModel, ("trial_id", "objective", "value", "value_type")),
                        (models.TrialUserAttributeModel, ("trial_id", "key", "value_json")),
                        (models.TrialSystemAttributeModel, ("trial_id", "key", "value_json")),
                        (models.TrialHeartbeatModel, ("trial_id", "heartbeat"))):
        assert all(hasattr(cls, f) for f in fields), cls
    assert models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(float("inf"))[1].name == "INF_POS"
    assert models.TrialValueModel.value_to_stored_repr(1.5) == (1.5, models.TrialValueModel.TrialValueType.FINITE)
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=5, grace_period=10)
    assert storage.heartbeat_interval == 5 and hasattr(storage, "scoped_session")


def test_journal_storage_private_names_we_use_are_there(tmp_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))
    assert isinstance(compat.journal_worker_id(storage), str)
    assert callable(storage._sync_with_backend) and hasattr(storage._thread_lock, "acquire")
    assert isinstance(storage._backend, optuna.storages.journal.BaseJournalBackend)
    assert callable(storage._replay_result.get_trial)


def test_journal_backend_interface_we_override():
    base = optuna.storages.journal.JournalFileBackend
    assert list(inspect.signature(base.read_logs).parameters) == ["self", "log_number_from"]
    assert list(inspect.signature(base.append_logs).parameters) == ["self", "logs"]
    assert list(inspect.signature(base.__init__).parameters) == ["self", "file_path", "lock_obj"]
