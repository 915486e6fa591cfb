"""Consistency after crashes: orphaned RUNNING trials, retries of failed ones, surplus trials."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from studies.execution.processes import process_alive, process_identity
from studies.execution.recovery import fail_orphans, recover, requeue_failed
from studies.search.quota import is_surplus as _is_surplus
from studies.sweep.outcomes import outcome_of


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _study(tmp_path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.journal")))
    return optuna.create_study(study_name="s/d", storage=storage)


def test_process_identity_tells_alive_from_gone():
    me = process_identity()
    assert process_alive(me) is True
    assert process_alive({**me, "pid": _dead_pid()}) is False
    assert process_alive({**me, "start": -1}) is False  # same pid number, another process
    assert process_alive({"host": socket.gethostname() + "-elsewhere", "pid": os.getpid()}) is None


def test_orphans_of_dead_workers_are_failed_and_requeued(tmp_path):
    study = _study(tmp_path)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    dead.set_user_attr("worker", {**process_identity(), "pid": _dead_pid()})
    alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    alive.set_user_attr("worker", process_identity())
    remote = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    remote.set_user_attr("worker", {"host": "another-host", "pid": 1})

    failed, requeued = recover(study)
    assert (failed, requeued) == (1, 1)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[dead.number] == TrialState.FAIL
    assert states[alive.number] == TrialState.RUNNING and states[remote.number] == TrialState.RUNNING
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["retry_of"] == dead.number
    assert waiting[0].system_attrs["fixed_params"] == {"x": dead.params["x"]}
    assert requeue_failed(study) == 0  # idempotent: already retried
    assert fail_orphans(study) == 0


def test_retries_are_bounded(tmp_path):
    study = _study(tmp_path)
    number = None
    for _ in range(5):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        if number is None:
            number = trial.number
        study.tell(trial, state=TrialState.FAIL)
        requeue_failed(study)
    retries = [t.user_attrs.get("retry", 0) for t in study.get_trials()]
    assert max(retries) == 2  # MAX_RETRIES


def test_surplus_trials_withdraw_from_the_top(tmp_path):
    study = _study(tmp_path)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    done = study.ask(dist)
    study.tell(done, 1.0)
    a, b, c = study.ask(dist), study.ask(dist), study.ask(dist)
    # Total 2: one finished, three running: the two highest-numbered withdraw.
    assert [_is_surplus(study, t, 2) for t in (a, b, c)] == [False, True, True]
    t = study.get_trials()[c.number]
    assert outcome_of(t) == "running"
