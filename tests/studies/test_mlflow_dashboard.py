"""The dashboard in MLflow: each parent run's description, the best trial's tag, the summary
figures, and the shared views the printed links open."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from studies.execution.runner import open_sweep
from studies.storage.adaptor import SweepStorage
from studies.storage.opening import open_storage
from studies.sweep.summary import SweepStudy, find_sweep, summarize_study
from studies.tracking import dashboard as dash
from studies.tracking.runs import KIND
from studies.tracking.tracker import Tracker
from sweeps.spec import load_spec

LR = FloatDistribution(1e-4, 100.0, log=True)


def _trial(
    number: int,
    lr: float,
    state: TrialState,
    value: float | None = None,
    *,
    diverged: bool = False,
    activation: str = "relu",
):
    t = create_trial(
        params={"learning_rate": lr, "activation": activation},
        distributions={"learning_rate": LR, "activation": CategoricalDistribution([activation])},
        value=value,
        state=state,
        user_attrs={"diverged": True} if diverged else {},
    )
    t.number = number
    return t


def _study(dataset: str) -> SweepStudy:
    return SweepStudy(
        name=f"demo/{dataset}",
        dataset=dataset,
        study_id=0,
        direction="minimize",
        total=6,
        config={"name": "demo", "objective": "val_cost"},
        directions=("minimize",),
    )


def test_the_description_says_best_counts_boundary_and_where_to_look():
    study = _study("circle")
    trials = [
        _trial(0, 0.01, TrialState.COMPLETE, 0.5),
        _trial(1, 0.1, TrialState.COMPLETE, 0.2),
        _trial(2, 0.03, TrialState.PRUNED),
        _trial(3, 5.0, TrialState.PRUNED, diverged=True),
        _trial(4, 2.0, TrialState.PRUNED, diverged=True),
        _trial(5, 1.0, TrialState.FAIL),
    ]
    text = dash.describe(study, summarize_study(study, trials), trials, sweep="demo")
    assert "**Best val&#95;cost: 0.2** (trial 1" in text
    assert "| learning&#95;rate | 0.1 |" in text and "| activation | relu |" in text
    assert "complete 2, pruned 1, diverged 2, failed 1" in text
    assert "lowest learning rate that diverged is 2; the largest below it that trained without diverging is 0.1" in text
    assert "`figures/`" in text and "`sweep report demo`" in text and "report/report.html" in text
    none = dash.describe(study, summarize_study(study, trials[2:3]), trials[2:3], sweep="demo")
    assert "no complete trial yet" in none and "no trial diverged" in none


def test_user_strings_are_escaped_in_the_markdown():
    hostile = "a*b_<script>|[x](y)`#"
    study = _study(hostile)
    trials = [_trial(0, 0.01, TrialState.COMPLETE, 0.5, activation="re|lu**<b>")]
    text = dash.describe(study, summarize_study(study, trials), trials, sweep="s_<i>")
    for raw in ("<script>", "<b>", "re|lu", "**<", "[x](y)", "s_<i>", "a*b"):
        assert raw not in text, raw
    assert dash.md_escape(hostile) == "a&#42;b&#95;&#60;script&#62;&#124;&#91;x&#93;&#40;y&#41;&#96;&#35;"
    assert "| activation | re&#124;lu&#42;&#42;&#60;b&#62; |" in text
    assert dash.md_escape("two\nlines") == "two lines"


def test_several_objectives_describe_the_front_and_its_best_in_the_learned_objective():
    study = SweepStudy(
        name="demo/xor",
        dataset="xor",
        study_id=0,
        direction="minimize, minimize",
        total=3,
        config={"name": "demo", "objective": ["parameters", "val_cost"]},
        directions=("minimize", "minimize"),
    )
    trials = []
    for number, values in enumerate([(10.0, 0.5), (40.0, 0.1), (50.0, 0.3)]):
        t = create_trial(
            params={"learning_rate": 0.1 * (number + 1)},
            distributions={"learning_rate": LR},
            values=list(values),
            state=TrialState.COMPLETE,
        )
        t.number = number
        trials.append(t)
    summary = summarize_study(study, trials)
    assert dash.best_trial(study, summary) == (1, "val_cost", 0.1)
    assert dash.best_params(study, summary) == {"learning_rate": 0.2}
    text = dash.describe(study, summary, trials, sweep="demo")
    assert "**Best val&#95;cost: 0.1** (trial 1" in text and "**Pareto front**: 2 trial(s)" in text
    views = {k: json.loads(v) for k, v in dash.views(["learning_rate"], study.objectives).items()}
    assert views[dash.STUDIES_VIEW]["selectedColumns"][:3] == [
        "metrics.`best_parameters`",
        "metrics.`best_val_cost`",
        "metrics.`front_size`",
    ]
    assert "metrics.`value.val_cost`" in views[dash.BEST_VIEW]["selectedColumns"]


def test_figure_schedule():
    s = dash.FigureSchedule(seconds=60)
    assert not s.due("a", 0, 10, final=False, now=0)  # nothing to draw
    assert not s.due("a", 1, 10, final=False, now=0)  # first seen: not before a minute (a short sweep
    assert not s.due("a", 3, 10, final=False, now=59)  # draws once, at its end)
    assert s.due("a", 3, 10, final=False, now=60)
    s.drawn("a", 3, now=60)
    assert not s.due("a", 4, 10, final=False, now=90)  # too soon
    assert s.due("a", 4, 10, final=False, now=121)
    assert s.due("a", 10, 10, final=False, now=91)  # finished: at once
    s.drawn("a", 10, now=91)
    assert not s.due("a", 10, 10, final=True, now=92)  # nothing new
    assert s.due("b", 2, 10, final=True, now=0)  # a last sync draws what it has
    # closing (its last trials all running): drawn once then, so that the end need not wait for them
    assert s.due("c", 6, 10, final=False, running=4, now=1)
    s.drawn("c", 6, now=1)
    assert not s.due("c", 7, 10, final=False, running=3, now=2)
    assert s.due("c", 10, 10, final=False, now=3)  # and again once finished


def _tell(study: optuna.Study, lr: float, value: float | None, *, diverged: bool = False) -> None:
    study.enqueue_trial({"learning_rate": lr, "hidden_layers": 1})
    trial = study.ask()
    trial.suggest_float("learning_rate", 0.1, 80.0, log=True)
    trial.suggest_int("hidden_layers", 1, 2)
    trial.set_user_attr(
        "run",
        {"curves": {"train_cost": [1.0, value or 9.0], "val_cost": [1.0, value or 9.0]}, "label": f"t{trial.number}"},
    )
    if diverged:
        trial.set_user_attr("diverged", True)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, value)


@pytest.fixture
def tracked(sweep_file, tmp_path):
    config = load_spec(str(sweep_file("dash", trials=8, jobs=1, epochs=2)))
    url = str(tmp_path / "sweeps.journal")
    circle, xor = open_sweep(config, open_storage(url))
    for i, v in enumerate([0.5, 0.3, 0.4, 0.6]):
        _tell(circle, 0.1 + i, v)
        _tell(xor, 0.2 + i, v + 0.1)
    _tell(circle, 50.0, None, diverged=True)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker("dash", uri)
    view = SweepStorage(open_storage(url), refresh_seconds=0.0)
    assert tracker.sync(view, final=True) == 9
    from mlflow.tracking import MlflowClient

    return tracker, view, circle, MlflowClient(uri)


def _best(client, exp_id: str) -> dict[str, str]:
    runs = client.search_runs([exp_id], f"tags.`{KIND}` = 'trial' and tags.`{dash.BEST}` = 'true'")
    return {r.data.tags["dataset"]: r.data.tags["trial_number"] for r in runs}


def test_parents_hold_description_figures_and_the_best_tag_moves(tracked):
    tracker, view, circle, client = tracked
    exp = tracker.experiment_id
    parents = {r.data.tags["dataset"]: r for r in client.search_runs([exp], f"tags.`{KIND}` = 'study'")}
    assert sorted(parents) == ["circle", "xor"]
    note = parents["circle"].data.tags[dash.NOTE]
    assert "**Best val&#95;cost: 0.3** (trial 1" in note and "diverged 1" in note
    assert "lowest learning rate that diverged is 50" in note
    figures = sorted(a.path for a in client.list_artifacts(parents["circle"].info.run_id, "figures"))
    assert figures == [
        "figures/divergence_map.png",
        "figures/history.png",
        "figures/importances.png",
        "figures/parallel_coordinates.png",
    ]
    assert _best(client, exp) == {"circle": "1", "xor": "1"}
    _tell(circle, 0.15, 0.1)  # a new best
    assert tracker.sync(view, final=True) == 1
    assert _best(client, exp) == {"circle": "5", "xor": "1"}
    old = client.search_runs(
        [exp], f"tags.`{KIND}` = 'trial' and tags.`sweeps.study` = 'dash/circle' and tags.`trial_number` = '1'"
    )[0]
    assert old.data.tags[dash.BEST] == "false"
    again = Tracker("dash", tracker.mlflow.tracking_uri)  # a new writer reads what the last one tagged
    _tell(circle, 0.15, 0.05)
    assert again.sync(view, final=True) == 1
    assert _best(client, exp) == {"circle": "6", "xor": "1"}


def test_the_shared_views_and_links(tracked):
    tracker, _, _, client = tracked
    tags = client.get_experiment(tracker.experiment_id).tags
    studies = json.loads(tags[dash.SHARE_TAG + dash.STUDIES_VIEW])
    assert studies["searchFilter"] == f"tags.`{KIND}` = 'study'"
    assert studies["selectedColumns"][:3] == [
        "metrics.`best_value`",
        "tags.`best.learning_rate`",
        "tags.`best.hidden_layers`",
    ]
    best = json.loads(tags[dash.SHARE_TAG + dash.BEST_VIEW])
    assert best["searchFilter"] == "tags.`sweeps.best` = 'true'"
    assert {"metrics.`value`", "params.`learning_rate`", "tags.`dataset`"} <= set(best["selectedColumns"])
    links = dash.links("http://127.0.0.1:5000", tracker.experiment_id)
    assert links.studies.endswith(
        f"/#/experiments/{tracker.experiment_id}/runs?viewStateShareKey=sweeps-studies&workflowType=machine_learning"
    )
    assert "viewStateShareKey=sweeps-best-trials" in links.best


def test_no_dashboard_writes_none_of_it(sweep_file, tmp_path):
    config = load_spec(str(sweep_file("plain", trials=4, jobs=1, epochs=2)))
    url = str(tmp_path / "sweeps.journal")
    circle, _ = open_sweep(config, open_storage(url))
    _tell(circle, 0.2, 0.5)
    tracker = Tracker("plain", f"sqlite:///{tmp_path}/mlflow.db", dashboard=False)
    assert tracker.sync(SweepStorage(open_storage(url), refresh_seconds=0.0), final=True) == 1
    client = tracker.mlflow.client
    parent = client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'study'")[0]
    assert dash.NOTE not in parent.data.tags and not client.list_artifacts(parent.info.run_id, "figures")
    assert find_sweep(SweepStorage(open_storage(url), refresh_seconds=0.0), "plain")


def test_a_figure_that_fails_to_draw_never_stops_the_tracking(sweep_file, tmp_path, monkeypatch):
    config = load_spec(str(sweep_file("oops", trials=4, jobs=1, epochs=2)))
    url = str(tmp_path / "sweeps.journal")
    circle, _ = open_sweep(config, open_storage(url))
    _tell(circle, 0.2, 0.5)

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(dash, "figure", broken)
    said: list[str] = []
    tracker = Tracker("oops", f"sqlite:///{tmp_path}/mlflow.db", warn=said.append)
    assert tracker.sync(SweepStorage(open_storage(url), refresh_seconds=0.0), final=True) == 1
    assert not tracker.failing and len(said) == 1 and "RuntimeError: no fonts" in said[0], said
    parent = tracker.mlflow.client.search_runs([tracker.experiment_id], f"tags.`{KIND}` = 'study'")
    assert all(dash.NOTE in p.data.tags for p in parent)
