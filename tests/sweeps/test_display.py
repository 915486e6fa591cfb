"""The run's live display: elapsed time, pace and ETA per dataset and overall, a study waiting
for a worker said so, and where to look at the end (in process, on a fake clock)."""

from __future__ import annotations

import dataclasses
import io

import pytest

from studies.sweep import StudySummary
from sweeps.display import Pace, Progress, format_duration, next_steps


def _summary(dataset: str, finished: int, running: int, total: int = 20) -> StudySummary:
    counts = {"complete": finished, "running": running} if running else {"complete": finished}
    return StudySummary(study=f"s/{dataset}", dataset=dataset, total=total, direction="minimize", counts=counts)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.4, "59 s"), (65, "1 min 05 s"), (7440, "2 h 04 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_pace_counts_this_runs_trials_only():
    pace = Pace()
    pace.see(finished=8, working=False, now=0.0)  # a resumed study, not yet at work
    assert pace.since is None
    pace.see(finished=8, working=True, now=10.0)
    assert pace.per_minute(8, 40.0) is None  # nothing finished in this run yet
    assert pace.per_minute(11, 70.0) == pytest.approx(3.0)  # 3 trials in a minute
    assert pace.eta(11, 20, 70.0) == pytest.approx(180.0)  # 9 left at 3 a minute


def test_progress_lines_show_pace_eta_and_waiting_for_a_slot():
    p = Progress(io.StringIO(), sweep="s")
    p.started = 0.0
    _, circle, xor = p.lines([_summary("circle", 0, 0), _summary("xor", 0, 0)], now=0.0)
    assert circle.endswith("starting") and xor.endswith("starting")  # no worker at work yet
    p.lines([_summary("circle", 0, 2), _summary("xor", 0, 0)], now=0.0)
    head, circle, xor = p.lines([_summary("circle", 6, 2), _summary("xor", 0, 0)], now=120.0)
    assert head == "elapsed 2 min 00 s, 6/40 trials, 3.0/min, ETA 11 min 20 s"
    assert circle.endswith("running  2  3.0/min, ETA 4 min 40 s")
    assert xor.endswith("running  0  waiting for a slot")
    head, circle, xor = p.lines([_summary("circle", 20, 0), _summary("xor", 1, 2)], now=240.0)
    assert circle.endswith("done") and xor.endswith("starting")
    assert head.startswith("elapsed 4 min 00 s, 21/40 trials, ")


def test_progress_without_a_terminal_writes_when_something_changed_only():
    out = io.StringIO()
    p = Progress(out, sweep="s", every=0.0)
    p.progress([_summary("circle", 1, 1)])
    p.progress([_summary("circle", 1, 1)])  # only the clock moved
    p.progress([_summary("circle", 2, 1)])
    assert out.getvalue().count("elapsed") == 2


def test_next_steps_names_the_report_and_the_storage():
    assert next_steps("s", None).startswith("Next: sweep report s  # the report: reports/s/")
    report, status = next_steps("s", "runs/my sweeps.journal").splitlines()
    assert report.startswith("Next: sweep report s --storage 'runs/my sweeps.journal'  # ")
    assert status.startswith("      sweep status s --storage 'runs/my sweeps.journal'  # ")


def test_summary_shows_validation_accuracy_beside_the_cost_for_classification():
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from studies.sweep import SweepStudy, summarize_study
    from sweeps.display import summary_table

    def trial(number: int, cost: float, accuracy: float | None):
        curves = {"val_cost": [cost]} | ({} if accuracy is None else {"val_accuracy": [0.5, accuracy]})
        t = create_trial(
            params={"learning_rate": 0.1},
            distributions={"learning_rate": FloatDistribution(0.01, 1.0)},
            value=cost,
            state=TrialState.COMPLETE,
            user_attrs={"run": {"curves": curves}},
        )
        t.number = number
        return t

    study = SweepStudy("s/circle", "circle", 0, "minimize", 2, {"name": "s", "objective": "val_cost"})
    classified = summarize_study(study, [trial(0, 0.4, 0.81), trial(1, 0.3, 0.875)])
    assert classified.best_accuracy == 0.875 and classified.to_dict()["best_val_accuracy"] == 0.875
    regression = summarize_study(study, [trial(0, 0.4, None)])
    assert regression.best_accuracy is None and "best_val_accuracy" not in regression.to_dict()
    table = summary_table([classified, regression], objective="val_cost").splitlines()
    assert "val accuracy" in table[0]
    assert "0.3         0.875" in table[2] and "0.4             -" in table[3]
    assert "val accuracy" not in summary_table([regression], objective="val_cost")


def test_the_mlflow_line_says_its_eta_as_the_studies_do():
    from studies.tracking import MlflowStatus
    from sweeps.display import mlflow_line

    status = MlflowStatus(behind=130, mine=130, rate=1.0)
    assert mlflow_line(status, "s") == "MLflow: 130 runs to write, ~2 min 10 s"


def test_progress_says_the_time_budget_left():
    p = Progress(io.StringIO(), sweep="s")
    p.started = 0.0
    budget = {"seconds": 600.0, "deadline": 1000.0 + 600.0, "set": "2026-12-03T12:00:00+00:00"}
    budgeted = dataclasses.replace(_summary("circle", 0, 1), budget=budget)
    head, _ = p.lines([budgeted], now=0.0, wall=1000.0 + 125.0)
    assert head.endswith("budget left 7 min 55 s")
    head, _ = p.lines([budgeted], now=0.0, wall=1000.0 + 600.5)
    assert head.endswith("budget ended")
    head, _ = p.lines([_summary("circle", 0, 1)], now=0.0, wall=0.0)
    assert "budget" not in head


def test_a_study_that_stopped_short_says_why_and_leaves_the_eta():
    p = Progress(io.StringIO(), sweep="s")
    p.started = 0.0
    stopped = dataclasses.replace(_summary("circle", 6, 0), stopped={"trial": 5, "at": "x", "patience": 3})
    head, circle, xor = p.lines([stopped, _summary("xor", 0, 1)], now=0.0, wall=0.0)
    assert circle.endswith("stopped (converged)") and head.endswith("6/26 trials")  # not 'waiting for a slot'
    budget = {"seconds": 60.0, "deadline": 100.0, "set": "2026-12-03T12:00:00+00:00"}
    late = dataclasses.replace(_summary("circle", 3, 0), budget=budget)
    _, circle = p.lines([late], now=0.0, wall=200.0)
    assert circle.endswith("budget ended")


def test_the_ui_hint_names_a_store_other_than_this_folders(tmp_path, monkeypatch):
    from sweeps.display import mlflow_links

    monkeypatch.chdir(tmp_path)

    def hint(uri):
        return mlflow_links("s", "1", uri)[-1]

    assert hint(None) == "  (served on 127.0.0.1:5000 by: sweep ui)"
    assert hint(f"sqlite:///{tmp_path}/mlflow.db") == "  (served on 127.0.0.1:5000 by: sweep ui)"
    spaced = hint("sqlite:////data/my runs.db")
    assert spaced == "  (served on 127.0.0.1:5000 by: sweep ui --tracking-uri 'sqlite:////data/my runs.db')"
    masked = hint("postgresql://bob:pw1234567@db/mlflow")
    assert "--tracking-uri 'postgresql://bob:***@db/mlflow')" in masked and "pw1234567" not in masked
    assert mlflow_links("s", "1", "http://mlflow-host:5000")[-1].startswith("  best trials: http://mlflow-host:5000/")
