"""Time budgets and stops on convergence: durations, the convergence rule, the limits a worker
keeps, and real workers in this process cut by a deadline written in the storage, by a trial's
own limit, and stopped by convergence (kept on a resume)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import time
import types

import optuna
import pytest
from optuna.trial import TrialState, create_trial

import studies.execution.worker as worker_module
import studies.search.quota as quota_module
from engine import Stack
from studies.errors import SweepsError
from studies.execution.runner import open_sweep, set_budget
from studies.execution.worker import WorkerTask, work
from studies.search import Limits
from studies.storage.opening import open_storage
from studies.sweep import (
    BUDGET_ATTR,
    STOPPED_ATTR,
    Stop,
    budget_record,
    converged,
    deadline_of,
    format_duration,
    outcome_of,
    parse_duration,
    stopped_record,
    summarize,
)
from sweeps.spec import load_spec


@pytest.fixture
def handlers():
    """work() in this process installs its signal handlers: put pytest's back afterwards."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1h0m5s", 3605), ("45m30s", 2730)]
)
def test_durations_parse_and_format_back(text, seconds):
    assert parse_duration("budget", text) == seconds
    assert parse_duration("budget", format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["30 min", "90", "1m1h", "", "h", "0s", "-5m", "1.5h", 30, None, True])
def test_a_bad_duration_names_the_key_the_value_and_the_form(bad):
    with pytest.raises(SweepsError, match=r"'trial_budget' must be a duration such as \"90s\".*but got"):
        parse_duration("trial_budget", bad)


def _trial(number: int, value: float | None, minute: int, state: TrialState = TrialState.COMPLETE, **attrs):
    t = create_trial(
        value=value if state == TrialState.COMPLETE else None,
        state=state,
        user_attrs=attrs,
    )
    end = dt.datetime(2026, 1, 1, 12, minute)
    t.number, t.datetime_start, t.datetime_complete = number, end, end
    return t


def test_convergence_counts_finished_trials_since_the_last_real_improvement():
    trials = [
        _trial(0, 1.0, 0),
        _trial(1, 0.5, 1),  # an improvement
        _trial(2, 0.45, 2),  # better, but by less than min_delta: not an improvement
        _trial(3, None, 3, TrialState.PRUNED),  # pruned: finished, no improvement
        _trial(4, None, 4, TrialState.FAIL),  # failed: not finished, not counted
        _trial(5, 0.9, 5),
    ]
    assert converged(trials, Stop(patience=3, min_delta=0.1), "minimize") == 5
    assert converged(trials, Stop(patience=4, min_delta=0.1), "minimize") is None
    # min_delta 0: trial 2 improves, so the count restarts there
    assert converged(trials, Stop(patience=3, min_delta=0.0), "minimize") is None
    # maximizing: 1.0 is the best from the start; the four finished trials after it never beat it
    assert converged(trials, Stop(patience=4, min_delta=0.0), "maximize") == 5
    assert converged(trials, Stop(patience=5, min_delta=0.0), "maximize") is None


def test_convergence_follows_the_order_trials_finished_in():
    # trial 2 finished first: the improvement order is by completion, not by number
    trials = [_trial(0, 0.5, 3), _trial(1, 0.6, 4), _trial(2, 1.0, 0)]
    # by number (0.5, 0.6, 1.0) two trials would not improve; by completion (1.0, 0.5, 0.6) one
    assert converged(trials, Stop(patience=2), "minimize") is None
    assert converged(trials, Stop(patience=1), "minimize") == 1
    # before a first complete trial nothing counts: no value to converge to
    assert converged([_trial(0, None, 0, TrialState.PRUNED)] * 1, Stop(patience=1), "minimize") is None
    cut_alone = [_trial(i, None, i, TrialState.PRUNED, cut="trial_budget") for i in range(5)]
    assert converged(cut_alone, Stop(patience=2), "minimize") is None


def test_limits_cut_by_deadline_then_own_limit_then_stop(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(quota_module, "time", types.SimpleNamespace(time=lambda: clock[0]))
    limits = Limits(trial_budget=20.0)
    cut = limits.cutter(0)
    other = limits.cutter(1)
    assert cut() is None and not limits.expired()
    limits.stopped.add(1)
    assert other() == "stop" and cut() is None
    clock[0] += 20.0
    assert cut() == "trial_budget"
    limits.deadline = 1010.0
    assert limits.expired() and cut() == "budget" and other() == "budget"


def test_deadline_and_stopped_records_round_trip():
    record = budget_record(60.0, now=1000.0)
    assert deadline_of({BUDGET_ATTR: record}) == 1060.0 and record["seconds"] == 60.0
    assert deadline_of({}) is None and deadline_of({BUDGET_ATTR: None}) is None


def _config(sweep_file, name: str, **changes):
    return dataclasses.replace(load_spec(str(sweep_file(name, trials=400, jobs=1, epochs=12))), **changes)


def test_run_starts_a_budget_a_worker_joins_it_and_a_run_without_one_clears_it(sweep_file, tmp_path):
    storage = open_storage(str(tmp_path / "sweeps.journal"))
    config = _config(sweep_file, "bud", budget=60.0)
    studies = open_sweep(config, storage)
    set_budget(config, studies, create=True)
    first = studies[0].user_attrs[BUDGET_ATTR]
    assert all(s.user_attrs[BUDGET_ATTR] == first for s in studies) and first["seconds"] == 60.0
    set_budget(dataclasses.replace(config, budget=600.0), studies, create=False)  # a worker: joins the running one
    assert studies[1].user_attrs[BUDGET_ATTR] == first
    set_budget(dataclasses.replace(config, budget=600.0), studies, create=True)  # a new run: a new budget
    assert studies[1].user_attrs[BUDGET_ATTR]["seconds"] == 600.0
    set_budget(dataclasses.replace(config, budget=None), studies, create=True)
    assert all(s.user_attrs.get(BUDGET_ATTR) is None for s in studies)


@pytest.mark.parametrize("stack", [1, 4])
def test_a_deadline_written_mid_sweep_cuts_running_trials_within_an_epoch(
    sweep_file, tmp_path, monkeypatch, handlers, stack
):
    config = _config(sweep_file, f"cut{stack}", stack=stack, budget=3600.0)
    url = str(tmp_path / "sweeps.journal")
    set_budget(config, open_sweep(config, open_storage(url)), create=True)  # as 'sweep run' starts it
    monkeypatch.setattr(worker_module, "STOP_CHECK_SECONDS", 0.0)  # the deadline is read again at once
    epochs, at = [0], {}
    patched = "step_epoch" if stack > 1 else None

    def set_deadline() -> None:
        epochs[0] += 1
        if epochs[0] == 30 and not at:
            storage = open_storage(url)
            for name in ("circle", "xor"):  # the deadline moved to the past, in every study
                study = optuna.load_study(study_name=f"cut{stack}/{name}", storage=storage)
                study.set_user_attr(BUDGET_ATTR, budget_record(1.0, now=time.time() - 10))
            at["trials"] = sum(len(storage.get_all_trials(s._study_id)) for s in storage.get_all_studies())

    if patched:
        original = Stack.step_epoch

        def step(self):
            out = original(self)
            set_deadline()
            return out

        monkeypatch.setattr(Stack, "step_epoch", step)
    else:
        original_between = worker_module._Worker.between_epochs

        def between(self):
            set_deadline()
            original_between(self)

        monkeypatch.setattr(worker_module._Worker, "between_epochs", between)
    work(WorkerTask(url, config, 0))
    assert at, "the sweep ended before the deadline was written"
    storage = open_storage(url)
    trials = [t for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id)]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len(trials) == at["trials"]  # no trial asked after the deadline was read
    cut = [t for t in trials if outcome_of(t) == "cut"]
    assert cut and all(t.user_attrs["cut"] == "budget" for t in cut)
    for t in cut:  # each kept its curve so far, and trained at most one epoch past the deadline
        curve = t.user_attrs["run"]["curves"]["train_cost"]
        assert 1 <= len(curve) < 12
    # the deadline was read before the next epoch began: no epoch trained past it
    assert epochs[0] == 30
    summaries = summarize(storage, f"cut{stack}")
    assert sum(s.cuts.get("budget", 0) for s in summaries) == len(cut) and all(s.done() for s in summaries)
    assert work(WorkerTask(url, config, 0)).counts == {}  # past the deadline: nothing starts
    # with a budget the studies share the worker, not the first one alone
    assert all(s.finished > 0 for s in summaries), [(s.dataset, s.finished) for s in summaries]


def test_a_trial_budget_cuts_each_trial_at_its_own_limit(sweep_file, tmp_path, monkeypatch, handlers):
    config = _config(sweep_file, "own", stack=4, trial_budget=3.0, trials=6)
    url = str(tmp_path / "sweeps.journal")
    open_sweep(config, open_storage(url))
    clock = [0.0]  # a clock that moves one second per stacked epoch: no wall-clock timing in the test
    monkeypatch.setattr(quota_module, "time", types.SimpleNamespace(time=lambda: clock[0]))
    original = Stack.step_epoch

    def step(self):
        clock[0] += 1.0
        return original(self)

    monkeypatch.setattr(Stack, "step_epoch", step)
    result = work(WorkerTask(url, config, 0))
    storage = open_storage(url)
    trials = [t for s in storage.get_all_studies() for t in storage.get_all_trials(s._study_id)]
    cut = [t for t in trials if outcome_of(t) == "cut"]
    assert result.counts.get("cut") == len(cut) > 0
    assert all(t.user_attrs["cut"] == "trial_budget" for t in cut)
    # cut after 3 s of its own: 3 epochs if it trained in every step, fewer when another stack stepped too
    assert all(1 <= len(t.user_attrs["run"]["curves"]["train_cost"]) <= 3 for t in cut)
    assert {s.study: s.finished for s in summarize(storage, "own")} == {"own/circle": 6, "own/xor": 6}


@pytest.mark.parametrize("stack", [1, 4])
def test_a_converged_study_stops_is_recorded_and_stays_stopped(sweep_file, tmp_path, handlers, stack):
    # min_delta so large that nothing after the first complete trial improves: each study stops
    # after its first complete trial and 'patience' more finished trials
    config = _config(sweep_file, f"conv{stack}", stack=stack, trials=60, stop=Stop(patience=4, min_delta=1e9))
    url = str(tmp_path / "sweeps.journal")
    open_sweep(config, open_storage(url))
    work(WorkerTask(url, config, 0))
    storage = open_storage(url)
    for summary in summarize(storage, f"conv{stack}"):
        assert summary.stopped is not None and summary.finished < 60
        study = optuna.load_study(study_name=summary.study, storage=storage)
        record = study.user_attrs[STOPPED_ATTR]
        assert record["patience"] == 4 and record["min_delta"] == 1e9
        # the trial it names is where the rule says it converged
        assert converged(study.get_trials(), Stop(4, 1e9), "minimize") == record["trial"]
        # trials that finished after it were already running, and were cut (or ended in the same step)
        late = [t for t in study.get_trials() if t.number > record["trial"] and outcome_of(t) not in (None, "failed")]
        assert len(late) < stack + 1
    # a resume, even with a laxer rule, asks for no more trials of a stopped study
    again = dataclasses.replace(config, stop=Stop(patience=50))
    assert work(WorkerTask(url, again, 0)).counts == {}


def test_the_sweep_file_checks_the_budget_and_stop_keys(tmp_path):
    cases = {
        'budget = "30 minutes"\n': (
            r"'budget' must be a duration such as \"90s\", \"30m\", \"2h\" or \"1h30m\", but got '30 minutes'"
        ),
        "trial_budget = 20\n": r"'trial_budget' must be a duration .* but got 20",
        "stop = 30\n": r"'stop' must be a table such as \{ patience = 30, min_delta = 0.0 \}, but got 30",
        "stop = { patience = 0 }\n": r"'stop.patience'",
        "stop = { min_delta = 0.1 }\n": r"'stop.patience' is needed",
        "stop = { patience = 3, min_delta = -1 }\n": r"'stop.min_delta' must be a finite number >= 0, but got -1",
        "stop = { patience = 3, mindelta = 1 }\n": r"unknown key 'stop.mindelta' \(did you mean 'stop.min_delta'\?\)",
        'objective = ["val_cost", "parameters"]\nstop = { patience = 3 }\n': r"'stop' needs one objective",
    }
    for i, (extra, message) in enumerate(cases.items()):
        path = tmp_path / f"k{i}.toml"
        pruner = '[pruner]\nname = "none"\n' if "objective" in extra else ""
        path.write_text(f'name = "k"\ndatasets = ["circle"]\n{extra}[train]\nepochs = 3\n{pruner}')
        with pytest.raises(SweepsError, match=message):
            load_spec(str(path))
    path = tmp_path / "ok.toml"
    path.write_text(
        'name = "k"\ndatasets = ["circle"]\nbudget = "1h30m"\ntrial_budget = "20s"\nstop = { patience = 30 }\n'
    )
    config = load_spec(str(path))
    assert (config.budget, config.trial_budget, config.stop) == (5400.0, 20.0, Stop(30, 0.0))
    assert load_spec(str(path)).to_dict()["budget"] == "1h30m"


def test_a_stopped_study_gives_its_slots_to_the_others(sweep_file, tmp_path, handlers):
    config = _config(sweep_file, "slots", stack=4, trials=8, stop=Stop(patience=1000))
    url = str(tmp_path / "sweeps.journal")
    studies = open_sweep(config, open_storage(url))
    studies[0].set_user_attr(STOPPED_ATTR, stopped_record(0, config.stop))  # as a resume finds it
    result = work(WorkerTask(url, config, 0))
    storage = open_storage(url)
    counts = {s.dataset: (s.finished, s.stopped is not None) for s in summarize(storage, "slots")}
    assert counts == {"circle": (0, True), "xor": (8, False)}
    assert sum(result.counts.values()) == 8 and all(s.done() for s in summarize(storage, "slots"))


def test_the_parent_run_says_the_budget_what_it_cut_and_the_stop():
    from studies.sweep import StudySummary
    from studies.tracking.runs import parent_content

    summary = StudySummary(
        study="s/circle",
        dataset="circle",
        total=10,
        direction="minimize",
        counts={"complete": 3, "cut": 2},
        budget=budget_record(60.0, now=1000.0),
        stopped=stopped_record(4, Stop(3), now=1000.0),
        cuts={"budget": 1, "stop": 1},
    )
    _, tags = parent_content(summary)
    tags = {t.key: t.value for t in tags}
    assert tags["cut"] == "budget 1, stop 1"
    assert tags["stopped"] == "converged at trial 4, 1970-01-01T00:16:40+00:00"
    assert '"seconds": 60.0' in tags["budget"]
    assert summary.done(now=1059.0) and StudySummary("s/x", "x", 10, "minimize").done(now=0) is False


def test_at_the_deadline_a_pool_stops_without_another_epoch(sweep_file):
    from studies.search import Pool

    config = _config(sweep_file, "pool", stack=8)
    study = optuna.create_study()
    dataset = config.datasets[0].load(seed=0)
    pool = Pool(config, limits=Limits())
    for _ in range(3):
        study.enqueue_trial({"learning_rate": 0.1})  # not 80: no trial diverges before the deadline
    pool.add(0, study.sampler, dataset, [study.ask() for _ in range(3)])
    assert pool.step() == [] and pool.step() == []
    fresh = [study.ask() for _ in range(2)]
    pool.add(0, study.sampler, dataset, fresh)
    done, unstarted = pool.expire()
    assert len(pool) == 0 and [t for _, t in unstarted] == fresh
    assert len(done) == 3 and {f.result.outcome for f in done} == {"cut"}
    assert all(len(f.trial.user_attrs["run"]["curves"]["train_cost"]) == 2 for f in done)
    assert all(f.trial.user_attrs["cut"] == "budget" for f in done)


def test_at_the_deadline_a_trial_with_repeated_seeds_leaves_with_all_its_seeds(sweep_file):
    from studies.search import Pool

    config = _config(sweep_file, "poolrep", stack=2, repeats=3)
    study = optuna.create_study()
    dataset = config.datasets[0].load(seed=0)
    pool = Pool(config, limits=Limits())
    for _ in range(2):
        study.enqueue_trial({"learning_rate": 0.1})
    trials = [study.ask() for _ in range(2)]
    pool.add(0, study.sampler, dataset, trials)
    assert len(pool.entries) == 6 and len(pool) == 2  # 2 configurations x 3 seeds
    assert pool.step() == []
    fresh = [study.ask()]
    pool.add(0, study.sampler, dataset, fresh)
    done, unstarted = pool.expire()
    assert len(pool) == 0 and not pool.entries and [t for _, t in unstarted] == fresh
    assert sorted(f.trial.number for f in done) == [t.number for t in trials]  # each trial once
    for f in done:
        assert f.result.outcome == "cut" and f.trial.user_attrs["cut"] == "budget"
        seeds = f.trial.user_attrs["repeats"]
        assert len(seeds["seeds"]) == 3 and all(len(c["train_cost"]) == 1 for c in seeds["curves"])


def test_trials_the_sweep_cut_are_no_verdict_on_convergence():
    # The deadline cuts a stack of trials at once: they must not use up the patience, or a budget
    # would mark a study 'stopped on convergence' for good (a resume could never continue it).
    trials = [_trial(0, 0.5, 0), _trial(1, 0.6, 1)]
    trials += [_trial(2 + i, None, 2 + i, TrialState.PRUNED, cut="budget") for i in range(3)]
    trials += [_trial(5, None, 5, TrialState.PRUNED, cut="stop")]
    assert converged(trials, Stop(patience=2), "minimize") is None
    # a trial cut by its own time limit is a finished trial that did not improve
    assert (
        converged([*trials, _trial(6, None, 6, TrialState.PRUNED, cut="trial_budget")], Stop(patience=2), "minimize")
        == 6
    )
    # an infeasible trial's value is no improvement
    worse = [_trial(0, 0.5, 0), _trial(1, 0.1, 1, feasible=False)]
    assert converged(worse, Stop(patience=1), "minimize") == 1
