"""SweepStorage: what it writes in batches equals what Optuna's own calls write, on every kind
of storage; what it reads is current."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from studies.storage.adaptor import SweepStorage
from studies.storage.opening import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _script(study: optuna.Study, flush) -> None:
    """The same trials, whatever the storage: params, reports (inf and nan too), attributes,
    every end state, an attribute written twice, an enqueued trial."""
    study.enqueue_trial({"x": 0.25, "c": "b"}, user_attrs={"queued": True})
    for i in range(7):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        c = trial.suggest_categorical("c", ["a", "b"])
        n = trial.suggest_int("n", 1, 4, log=True)
        trial.set_user_attr("worker", {"i": i})
        flush()
        for step in range(1, 4 + i % 3):
            value = [x * step, math.inf, -math.inf, math.nan][step % 4] if i == 5 else x / step
            trial.report(value, step)
        trial.set_user_attr("run", {"curve": [x, x / 2], "n": n, "c": c})
        trial.set_user_attr("worker", {"i": i, "again": True})
        study._storage.set_trial_system_attr(trial._trial_id, "note", i)  # as samplers do
        if i % 4 == 0:
            study.tell(trial, x + n)
        elif i % 4 == 1:
            study.tell(trial, state=TrialState.PRUNED)
        elif i % 4 == 2:
            study.tell(trial, state=TrialState.FAIL)
        else:
            flush()  # a second flush of the same running trial
            trial.report(0.5, 10)
            study.tell(trial, 1.5)
        flush()


def _same(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> None:
    assert (a.number, a.state, a.params, a.distributions) == (b.number, b.state, b.params, b.distributions)
    assert a.user_attrs == b.user_attrs and a.system_attrs == b.system_attrs
    assert a.values == b.values
    assert a.intermediate_values.keys() == b.intermediate_values.keys()
    for k, v in a.intermediate_values.items():
        w = b.intermediate_values[k]
        assert (math.isnan(v) and math.isnan(w)) or v == w
    assert (a.datetime_complete is None) == (b.datetime_complete is None)


def _script_multi(study: optuna.Study, flush) -> None:
    """Several objectives: values told as a list (one maximized), diverged and failed trials
    without values, no reports."""
    study.enqueue_trial({"x": 0.25, "c": "b"}, user_attrs={"warm_start": {"trial": 3}})
    for i in range(6):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_categorical("c", ["a", "b"])
        n = trial.suggest_int("n", 1, 4, log=True)
        flush()
        trial.set_user_attr("run", {"curve": [x, x / 2]})
        if i % 3 == 1:
            trial.set_user_attr("diverged", True)
            study.tell(trial, state=TrialState.PRUNED)
        elif i % 3 == 2 and i > 2:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [x + n, float(n), -x])
        flush()


def _compare(url_plain: str, url_buffered: str, *, script=_script, directions=None) -> None:
    n = 6 if script is _script_multi else 7
    plain = optuna.create_study(
        study_name="s",
        storage=open_storage(url_plain, heartbeat_interval=None),
        sampler=optuna.samplers.RandomSampler(seed=3),
        directions=directions,
    )
    script(plain, lambda: None)
    wrapped = SweepStorage(open_storage(url_buffered, heartbeat_interval=None))
    buffered = optuna.create_study(
        study_name="s", storage=wrapped, sampler=optuna.samplers.RandomSampler(seed=3), directions=directions
    )
    script(buffered, wrapped.flush)
    assert not wrapped.owned()
    fresh = open_storage(url_buffered, heartbeat_interval=None)
    got = fresh.get_all_trials(fresh.get_study_id_from_name("s"))
    want = plain.get_trials()
    assert len(got) == len(want) == n and got[0].user_attrs.get("queued", got[0].user_attrs.get("warm_start"))
    for a, b in zip(want, got):
        _same(a, b)
    if directions:
        assert sum(t.values is not None and len(t.values) == len(directions) for t in got) == 3


def test_batched_writes_equal_optunas_on_sqlite(tmp_path):
    _compare(f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db")


def test_batched_writes_equal_optunas_on_the_journal(tmp_path):
    _compare(str(tmp_path / "a.journal"), str(tmp_path / "b.journal"))


@pytest.mark.postgres
def test_batched_writes_equal_optunas_on_postgres(pg_database):
    _compare(pg_database(), pg_database())


MULTI = ["minimize", "minimize", "maximize"]


def test_batched_writes_of_several_objectives_equal_optunas_on_sqlite_and_the_journal(tmp_path):
    _compare(f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db", script=_script_multi, directions=MULTI)
    _compare(str(tmp_path / "a.journal"), str(tmp_path / "b.journal"), script=_script_multi, directions=MULTI)


@pytest.mark.postgres
def test_batched_writes_of_several_objectives_equal_optunas_on_postgres(pg_database):
    _compare(pg_database(), pg_database(), script=_script_multi, directions=MULTI)


def test_nothing_is_written_before_a_flush_but_the_creation(tmp_path):
    url = str(tmp_path / "j.journal")
    wrapped = SweepStorage(open_storage(url), identity={"worker": {"pid": 1}})
    study = optuna.create_study(study_name="s", storage=wrapped)
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.report(0.5, 1)
    other = open_storage(url)
    (t,) = other.get_all_trials(other.get_study_id_from_name("s"))
    assert t.state == TrialState.RUNNING and t.user_attrs == {"worker": {"pid": 1}}
    assert t.params == {} and t.intermediate_values == {}
    wrapped.flush()
    (t,) = other.get_all_trials(other.get_study_id_from_name("s"))
    assert t.params.keys() == {"x"} and t.intermediate_values == {1: 0.5}


@pytest.mark.parametrize("backend", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_enqueued_trial_taken_has_its_workers_identity_at_once(tmp_path, backend, request):
    # A retry (an enqueued trial) taken by a worker stopped before its next flush: its launcher
    # fails it as a trial of a dead worker only if the storage already says whose it is.
    url = str(tmp_path / "j.journal") if backend == "journal" else request.getfixturevalue("pg_database")()
    wrapped = SweepStorage(open_storage(url), identity={"worker": {"pid": 1}})
    study = optuna.create_study(study_name="s", storage=wrapped)
    study.enqueue_trial({"x": 0.25}, user_attrs={"retry_of": 0})
    trial = study.ask()
    assert trial.suggest_float("x", 0, 1) == 0.25
    other = open_storage(url)
    (t,) = other.get_all_trials(other.get_study_id_from_name("s"))
    assert t.state == TrialState.RUNNING and t.user_attrs == {"retry_of": 0, "worker": {"pid": 1}}
    wrapped.flush()
    study.tell(trial, 1.0)
    wrapped.flush()
    (t,) = other.get_all_trials(other.get_study_id_from_name("s"))
    assert t.state == TrialState.COMPLETE and t.user_attrs == {"retry_of": 0, "worker": {"pid": 1}}


def test_other_processes_trials_arrive_with_the_refresh(tmp_path):
    url = str(tmp_path / "j.journal")
    now = [0.0]
    mine = SweepStorage(open_storage(url), refresh_seconds=1.0, clock=lambda: now[0])
    study = optuna.create_study(study_name="s", storage=mine)
    assert study.get_trials() == []
    theirs = optuna.load_study(study_name="s", storage=open_storage(url))
    theirs.tell(theirs.ask(), 1.0)
    assert study.get_trials() == []  # the snapshot is younger than refresh_seconds
    now[0] = 1.5
    assert [t.value for t in study.get_trials()] == [1.0]
    theirs.tell(theirs.ask(), 2.0)
    mine.refresh(study._study_id)
    assert [t.value for t in study.get_trials()] == [1.0, 2.0]


def test_a_trial_finished_by_another_process_is_dropped_not_overwritten(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    wrapped = SweepStorage(open_storage(url, heartbeat_interval=None))
    study = optuna.create_study(study_name="s", storage=wrapped)
    keep, lose = study.ask(), study.ask()
    for t in (keep, lose):
        t.suggest_float("x", 0, 1)
    other = open_storage(url, heartbeat_interval=None)
    other.set_trial_state_values(lose._trial_id, TrialState.FAIL)  # e.g. a stale heartbeat
    lose.report(1.0, 1)
    study.tell(keep, 0.5)
    study.tell(lose, 0.25)
    result = wrapped.flush()
    assert result.finished == (keep._trial_id,) and result.dropped == (lose._trial_id,)
    states = {t.number: (t.state, t.value, t.intermediate_values) for t in other.get_all_trials(study._study_id)}
    assert states == {0: (TrialState.COMPLETE, 0.5, {}), 1: (TrialState.FAIL, None, {})}


def test_the_pruner_sees_this_processs_reports_at_once(tmp_path):
    wrapped = SweepStorage(open_storage(str(tmp_path / "j.journal")))
    study = optuna.create_study(
        study_name="s", storage=wrapped, pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    first = study.ask()
    for step in range(1, 4):
        first.report(1.0, step)
    study.tell(first, 1.0)
    wrapped.flush()
    second = study.ask()
    second.report(5.0, 1)
    assert second.should_prune()
    third = study.ask()
    third.report(0.5, 1)
    assert not third.should_prune()


def test_rdb_reads_are_incremental_and_never_read_back_this_processs_trials(tmp_path, monkeypatch):
    from studies import _optuna_compat as compat

    url = f"sqlite:///{tmp_path}/inc.db"
    read: list[int] = []
    real = compat.rdb_read_trials

    def counting(*args, **kwargs):
        out = real(*args, **kwargs)
        read.extend(t.number for t in out)
        return out

    monkeypatch.setattr(compat, "rdb_read_trials", counting)
    mine = SweepStorage(open_storage(url, heartbeat_interval=None), refresh_seconds=0.0)
    study = optuna.create_study(study_name="s", storage=mine)
    theirs = optuna.load_study(study_name="s", storage=open_storage(url, heartbeat_interval=None))
    for i in range(5):
        theirs.tell(theirs.ask(), float(i))
    running = theirs.ask()
    for _ in range(3):
        study.tell(study.ask(), 9.0)
        mine.flush()
    assert len(study.get_trials()) == 9
    from collections import Counter

    counts = Counter(read)
    assert [counts[n] for n in range(5)] == [1] * 5  # their finished trials: read once each
    assert not {6, 7, 8} & set(counts)  # ours: never read back
    assert counts[5] >= 1  # their running trial: read again while it runs (its parameters, reports)
    read.clear()
    for _ in range(3):
        study.get_trials()
    assert read == [5, 5, 5]  # only the unfinished trial of another process, whole, each time
    theirs.tell(running, 1.0)
    read.clear()
    study.get_trials()
    study.get_trials()
    assert read == [5]  # read once more when it finished, then never again


def test_a_counting_view_reads_unfinished_trials_as_their_state_only(tmp_path):
    url = f"sqlite:///{tmp_path}/light.db"
    theirs = optuna.create_study(study_name="s", storage=open_storage(url, heartbeat_interval=None))
    running = theirs.ask()
    running.suggest_float("x", 0, 1)
    running.report(0.5, 1)
    done = theirs.ask()
    done.suggest_float("x", 0, 1)
    theirs.tell(done, 2.0)
    light = SweepStorage(open_storage(url, heartbeat_interval=None), refresh_seconds=0.0, read_unfinished=False)
    sid = light.get_study_id_from_name("s")
    first, second = light.get_all_trials(sid)
    assert (first.number, first.state, first.params) == (0, TrialState.RUNNING, {})
    assert (second.number, second.state, second.value, second.params.keys()) == (1, TrialState.COMPLETE, 2.0, {"x"})
    theirs.tell(running, 1.0)
    first, _ = light.get_all_trials(sid)
    assert (first.state, first.value, first.intermediate_values) == (TrialState.COMPLETE, 1.0, {1: 0.5})
