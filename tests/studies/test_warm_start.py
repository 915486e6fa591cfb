"""Warm starts: what fits a search space, the best configurations of another sweep enqueued
once per study (across runs and concurrent processes), cold starts, validation, the report."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from studies.search.warming import fitting
from studies.sweep.pareto import ranked
from studies.sweep.space import Choice, Range, SearchSpace, Subsets
from sweeps.cli import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SPACE = SearchSpace(
    fixed={"optimizer": "adam"},
    searched={
        "learning_rate": Range(1e-3, 0.5, log=True),
        "hidden_layers": Range(1, 2, integer=True),
        "hidden_units": Range(4, 32, integer=True),
        "activation": Choice(("tanh", "relu")),
        "regularization": Choice(("none", "l2")),
        "regularization_rate": Range(1e-5, 1e-1, log=True),
        "features": Subsets(("linear", "sines")),
    },
)
GOOD = {
    "learning_rate": 0.1,
    "hidden_layers": 2,
    "hidden_units_1": 8,
    "hidden_units_2": 16,
    "activation": "relu",
    "regularization": "l2",
    "regularization_rate": 1e-3,
    "features_linear": True,
    "features_sines": False,
}


def test_a_configuration_of_the_same_space_fits_whole():
    assert fitting(SPACE, dict(GOOD)) == GOOD


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        # A value out of range is left to the sampler; nothing depends on it.
        ({"learning_rate": 0.9}, set(GOOD) - {"learning_rate"}),
        # A layer count the space can't take: the units of layers it may not have go too
        # (the first layer's are asked whatever the count).
        ({"hidden_layers": 3, "hidden_units_3": 8}, set(GOOD) - {"hidden_layers", "hidden_units_2"}),
        # A regularization the space does not offer: its rate goes too (not asked with 'none').
        ({"regularization": "l1"}, set(GOOD) - {"regularization", "regularization_rate"}),
        # A choice of another type (1 is not 'relu', True is not 1).
        ({"activation": 1}, set(GOOD) - {"activation"}),
        # A width beyond the range in one layer only.
        ({"hidden_units_2": 64}, set(GOOD) - {"hidden_units_2"}),
        # Parameters the space does not search are dropped.
        ({"momentum": 0.5, "optimizer": "sgd"}, set(GOOD)),
    ],
)
def test_only_what_fits_is_kept_and_conditional_parameters_stay_consistent(change, kept):
    params = {**GOOD, **change}
    got = fitting(SPACE, params)
    assert set(got) == kept
    assert all(got[k] == params[k] for k in got)


def test_a_configuration_without_regularization_keeps_no_rate_and_fixed_settings_are_not_enqueued():
    params = {**GOOD, "regularization": "none"}
    del params["regularization_rate"]
    assert fitting(SPACE, params) == params
    fixed = SearchSpace(fixed={"activation": "tanh"}, searched={"learning_rate": Range(1e-3, 0.5, log=True)})
    assert fitting(fixed, GOOD) == {"learning_rate": 0.1}
    stepped = SearchSpace(searched={"learning_rate": Range(0.1, 0.5, step=0.1)})
    assert fitting(stepped, {"learning_rate": 0.3}) == {"learning_rate": 0.3}
    assert fitting(stepped, {"learning_rate": 0.25}) == {}


SHORT = """
name = "{name}"
datasets = {datasets}
trials = {trials}
jobs = 2
seed = {seed}
objective = {objective}
batch = 4

[train]
epochs = 6
batch_size = 16
optimizer = "adam"

[search]
learning_rate = {{ low = 1e-3, high = 1.0, log = true }}
hidden_layers = {{ low = 1, high = 3 }}
hidden_units = {{ low = 2, high = 16 }}
activation = ["tanh", "relu"]

[sampler]
name = "random"

[pruner]
name = "none"
"""


def _write(path, *, name, datasets, trials=8, seed=0, objective='"val_cost"', extra="", space=None):
    text = SHORT.format(name=name, datasets=json.dumps(datasets), trials=trials, seed=seed, objective=objective)
    if space is not None:
        text = text.replace("hidden_layers = { low = 1, high = 3 }", space)
    path.write_text(extra + text.lstrip() if extra.startswith("warm_start") else text + extra)
    return path


def _warm_line(sweep: str, top: int, storage: str | None = None) -> str:
    where = "" if storage is None else f', storage = "{storage}"'
    return f'warm_start = {{ sweep = "{sweep}", top = {top}{where} }}\n'


def _journal():
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend("sweeps.journal"))


def _warm_trials(storage, study_name):
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study, [t for t in study.get_trials() if "warm_start" in t.user_attrs]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.mark.slow
def test_warm_start_end_to_end_once_across_runs_and_cold_for_unmatched(in_tmp):
    short = _write(in_tmp / "short.toml", name="short", datasets=["iris", "wine"], trials=10)
    assert CliRunner().invoke(cli, ["run", str(short), "--no-mlflow"]).exit_code == 0
    # The full sweep: layers up to 2 only (the short one's 3-layer trials fit in part), and a
    # dataset the short sweep has no study of.
    full = _write(
        in_tmp / "full.toml",
        name="full",
        datasets=["iris", "wine", "breast_cancer"],
        trials=8,
        seed=1,
        extra=_warm_line("short", 3),
        space="hidden_layers = { low = 1, high = 2 }",
    )
    r = CliRunner().invoke(cli, ["run", str(full), "--check"])
    assert r.exit_code == 0, r.output
    assert (
        "warm start from sweep 'short' in sweeps.journal: its best 3 configuration(s) per dataset for iris, "
        "wine; breast_cancer start(s) cold (no study there)."
    ) in r.output
    r = CliRunner().invoke(cli, ["run", str(full), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    assert r.output.count("sweep 'short' has no study of dataset 'breast_cancer'; it starts cold.") == 1
    storage = _journal()
    from sweeps.spec import load_spec

    space = load_spec(str(full)).space
    for dataset in ("iris", "wine"):
        source = optuna.load_study(study_name=f"short/{dataset}", storage=storage)
        study, warm = _warm_trials(storage, f"full/{dataset}")
        assert [t.number for t in warm] == [0, 1, 2]  # enqueued first, taken first
        # The best distinct configurations of the source, in order, each what fits the space.
        expected, seen = [], set()
        for t in ranked(source.get_trials(), ["minimize"], 100):
            key = json.dumps(fitting(space, t.params), sort_keys=True)
            if key not in seen:
                seen.add(key)
                expected.append(t.number)
        assert [t.user_attrs["warm_start"]["trial"] for t in warm] == expected[:3]
        for t in warm:
            assert t.user_attrs["warm_start"]["sweep"] == "short"
            assert t.user_attrs["warm_start"]["study"] == f"short/{dataset}"
            src = source.trials[t.user_attrs["warm_start"]["trial"]]
            fit = fitting(space, src.params)
            assert {k: t.params[k] for k in fit} == fit  # trained with the source's parameters that fit
        assert study.user_attrs["warm_start"]["trials"] == expected[:3]
        assert f"full/{dataset} starts with 3 configuration(s) of short/{dataset}" in r.output
    study, warm = _warm_trials(storage, "full/breast_cancer")
    assert warm == [] and study.user_attrs["warm_start"] == {"cold": True, "sweep": "short"}
    # A warm-started trial is a trial like any other: it reproduces bit for bit.
    r = CliRunner().invoke(cli, ["reproduce", "full", "--dataset", "wine", "--trial", "0"])
    assert r.exit_code == 0 and r.output.startswith("reproduced:"), r.output

    # Run again, with more trials: nothing enqueued twice, nothing said again.
    r = CliRunner().invoke(cli, ["run", str(full), "--no-mlflow", "--trials", "10"])
    assert r.exit_code == 0, r.output
    assert "warm start" not in r.output
    for dataset in ("iris", "wine"):
        study, warm = _warm_trials(_journal(), f"full/{dataset}")
        assert len(warm) == 3 and len([t for t in study.get_trials() if t.state.is_finished()]) >= 10

    # The report says which trials came from where.
    r = CliRunner().invoke(cli, ["report", "full", "--out", "out", "--no-mlflow"])
    assert r.exit_code == 0, r.output
    md = (in_tmp / "out" / "report.md").read_text()
    assert "trials from it per dataset: iris 3, wine 3, breast_cancer 0" in md
    assert md.count("### Warm start") == 2 and "short/iris #" in md
    with open(in_tmp / "out" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    warm_rows = [r for r in rows if r["warm_start"]]
    assert len(warm_rows) == 6 and all(re.fullmatch(r"short/(iris|wine) #\d+", r["warm_start"]) for r in warm_rows)

    # The warm start is not the sweep's identity: changed on resume, it is allowed and does nothing.
    full.write_text(full.read_text().replace("top = 3", "top = 5"))
    r = CliRunner().invoke(cli, ["run", str(full), "--no-mlflow"])
    assert r.exit_code == 0 and "warm start" not in r.output, r.output
    assert len(_warm_trials(_journal(), "full/iris")[1]) == 3


@pytest.mark.slow
def test_a_multi_objective_source_gives_its_front_first(in_tmp):
    short = _write(
        in_tmp / "short.toml", name="mshort", datasets=["iris"], trials=12, objective='["val_cost", "parameters"]'
    )
    assert CliRunner().invoke(cli, ["run", str(short), "--no-mlflow"]).exit_code == 0
    full = _write(
        in_tmp / "full.toml", name="mfull", datasets=["iris"], trials=6, seed=1, extra=_warm_line("mshort", 4)
    )
    r = CliRunner().invoke(cli, ["run", str(full), "--no-mlflow"])
    assert r.exit_code == 0, r.output
    storage = _journal()
    source = optuna.load_study(study_name="mshort/iris", storage=storage)
    front = sorted(t.number for t in source.best_trials)
    _, warm = _warm_trials(storage, "mfull/iris")
    got = [t.user_attrs["warm_start"]["trial"] for t in warm]
    n = min(4, len(front))
    assert got[:n] == front[:n] or len(set(got[:n])) < n  # the front first, by number (unless duplicates)
    assert set(got) <= {t.number for t in ranked(source.get_trials(), ["minimize", "minimize"], 100)}


@pytest.mark.slow  # runs a whole sweep
def test_an_interrupted_warm_start_is_completed_and_a_study_with_its_own_trials_is_left_alone(in_tmp):
    from studies.execution.runner import open_sweep
    from studies.search.warming import open_source, warm_start
    from studies.storage.opening import open_storage
    from sweeps.spec import load_spec

    storage_url = str(in_tmp / "sweeps.journal")
    storage = open_storage(storage_url)
    src_config = load_spec(str(_write(in_tmp / "s.toml", name="src", datasets=["iris", "wine"])))
    for study in open_sweep(src_config, storage):
        for i, lr in enumerate((0.5, 0.01, 0.1, 0.2)):  # values: best trials 1, 2, 3, 0
            study.add_trial(
                optuna.trial.create_trial(
                    params={"learning_rate": lr, "hidden_layers": 1, "hidden_units_1": 4 + i, "activation": "tanh"},
                    distributions={
                        "learning_rate": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True),
                        "hidden_layers": optuna.distributions.IntDistribution(1, 3),
                        "hidden_units_1": optuna.distributions.IntDistribution(2, 16),
                        "activation": optuna.distributions.CategoricalDistribution(["tanh", "relu"]),
                    },
                    value=[0.4, 0.1, 0.2, 0.3][i],
                )
            )
    config = load_spec(
        str(_write(in_tmp / "d.toml", name="dst", datasets=["iris", "wine"], extra=_warm_line("src", 3)))
    )
    iris, wine = open_sweep(config, storage)
    # iris: a warm start cut short after its first configuration; wine: trials of its own already.
    iris.enqueue_trial(
        {"learning_rate": 0.01, "hidden_layers": 1, "hidden_units_1": 5, "activation": "tanh"},
        user_attrs={"warm_start": {"sweep": "src", "study": "src/iris", "trial": 1}},
    )
    wine.enqueue_trial({"learning_rate": 0.3})
    said: list[str] = []
    records = warm_start(
        config, [iris, wine], open_source(config, storage_url), storage_url=storage_url, say=said.append
    )
    assert [t.user_attrs["warm_start"]["trial"] for t in iris.get_trials()] == [1, 2, 3]
    assert records["dst/iris"]["trials"] == [1, 2, 3]
    assert records["dst/wine"] == {"skipped": "the study had trials before its warm start"}
    assert len(wine.get_trials()) == 1
    assert said == [
        "warm start: dst/iris starts with 3 configuration(s) of src/iris (its trials [1, 2, 3]).",
        "warm start: dst/wine already has trials of its own; not warm-started.",
    ]
    # Done: a second call does nothing, and says nothing.
    assert (
        warm_start(config, [iris, wine], open_source(config, storage_url), storage_url=storage_url, say=said.append)
        == records
    )
    assert len(said) == 2 and len(iris.get_trials()) == 3


BAD = [
    ('warm_start = "short"\n', "'warm_start' must be a table such as { sweep = \"NAME\", top = 5 }, but got 'short'"),
    (
        'warm_start = { sweep = "short", tops = 3 }\n',
        "unknown key 'warm_start.tops' (did you mean 'warm_start.top'?); allowed keys are ['storage', 'sweep', 'top']",
    ),
    ('warm_start = { sweep = "short", top = 0 }\n', "'warm_start.top' must be an integer >= 1, but got 0"),
    ('warm_start = { sweep = "short", top = 2.5 }\n', "'warm_start.top' must be an integer >= 1, but got 2.5"),
    (
        "warm_start = { top = 3 }\n",
        "'warm_start.sweep' must be the name of another sweep (at most 100 letters, digits, '-', '_', '.'), "
        "but got None",
    ),
    ('warm_start = { sweep = "full" }\n', "'warm_start.sweep' names this sweep itself ('full'); name another sweep"),
    (
        'warm_start = { sweep = "short", storage = "ftp://me:hunter2secret@host/x" }\n',
        "'warm_start.storage' must be a journal file path or a URL with a scheme in",
    ),
    (
        'warm_start = { sweep = "short", storage = "" }\n',
        "'warm_start.storage' must be a journal file path or a storage URL, but got ''",
    ),
]


@pytest.mark.parametrize(("line", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_warm_starts_raise_value_errors_and_exit_2_writing_nothing(in_tmp, line, message):
    import tomllib

    from sweeps.spec import spec_from_dict

    path = _write(in_tmp / "full.toml", name="full", datasets=["iris"], extra=line)
    with pytest.raises(ValueError, match=re.escape(message)):
        spec_from_dict(tomllib.loads(path.read_text()), origin="t")
    for extra in ([], ["--check"]):
        r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", *extra])
        assert r.exit_code == 2 and r.output.count("\n") == 1 and message in r.output, r.output
        assert "hunter2secret" not in r.output
        assert sorted(os.listdir(in_tmp)) == ["full.toml"]


@pytest.mark.slow  # runs a whole sweep
def test_a_warm_start_from_a_sweep_that_is_not_there_is_one_line_and_writes_nothing(in_tmp):
    path = _write(in_tmp / "full.toml", name="full", datasets=["iris"], extra=_warm_line("short", 2))
    for extra in ([], ["--check"]):
        r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", *extra])
        assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
        assert "'warm_start.sweep': no sweep named 'short': there is no storage 'sweeps.journal' here." in r.output
        assert sorted(os.listdir(in_tmp)) == ["full.toml"]
    other = _write(in_tmp / "other.toml", name="other", datasets=["iris"], trials=2)
    assert CliRunner().invoke(cli, ["run", str(other), "--no-mlflow"]).exit_code == 0
    before = (in_tmp / "sweeps.journal").read_bytes()
    for extra in ([], ["--check"]):
        r = CliRunner().invoke(cli, ["run", str(path), "--no-mlflow", *extra])
        assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
        assert (
            "'warm_start.sweep': no sweep named 'short' in the storage sweeps.journal; it holds ['other']." in r.output
        )
    assert (in_tmp / "sweeps.journal").read_bytes() == before  # nothing written


@pytest.mark.slow
def test_warm_start_exactly_once_with_two_concurrent_runs_on_postgresql(in_tmp, pg_database):
    url = pg_database()
    secret = url.replace("postgres@", "postgres:pw-hunter2@")  # trust authentication: any password works
    short = _write(in_tmp / "short.toml", name="short", datasets=["iris", "wine"], trials=6)
    r = CliRunner().invoke(cli, ["run", str(short), "--no-mlflow", "--storage", url])
    assert r.exit_code == 0, r.output
    # The full sweep in a database of its own, warm-started from the other (a password in its URL).
    target = pg_database()
    full = _write(
        in_tmp / "full.toml",
        name="full",
        datasets=["iris", "wine"],
        trials=8,
        seed=1,
        extra=_warm_line("short", 4, secret),
    )
    r = CliRunner().invoke(cli, ["run", str(full), "--check", "--storage", target])
    assert r.exit_code == 0 and "pw-hunter2" not in r.output and "postgres:***@" in r.output, r.output
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sweeps", "run", str(full), "--no-mlflow", "--storage", target, "--jobs", "1"],
            cwd=in_tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    text = "".join(outputs)
    assert "pw-hunter2" not in text
    for dataset in ("iris", "wine"):
        assert text.count(f"full/{dataset} starts with 4 configuration(s) of short/{dataset}") == 1, text
    storage = optuna.storages.RDBStorage(target)
    for dataset in ("iris", "wine"):
        study, warm = _warm_trials(storage, f"full/{dataset}")
        sources = [t.user_attrs["warm_start"]["trial"] for t in warm]
        assert len(sources) == 4 == len(set(sources)) and study.user_attrs["warm_start"]["trials"] == sources
        assert "pw-hunter2" not in json.dumps(study.user_attrs) and "postgres:***@" in study.user_attrs["sweep"]
        finished = [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 8


@pytest.mark.slow
def test_the_benchmark_runs_quick(tmp_path):
    """benchmarks/warm_start.py --quick: its table, warm beside cold (no figure is asserted)."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("MLFLOW_TRACKING_URI", None)
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "warm_start.py"), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "short sweep: 6 trials per dataset" in p.stdout and p.stdout.count("  seed ") == 2
    rows = [line.split() for line in p.stdout.splitlines() if line.split()[:1] in (["iris"], ["wine"])]
    assert len(rows) == 2 and all(len(r) == 11 for r in rows), p.stdout
    assert not os.listdir(tmp_path)  # it works in a scratch folder of its own
