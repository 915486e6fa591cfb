"""``sweep compare``: several sweeps side by side, escaped, written only under ``--out``."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from studies.reports.compare import bootstrap_best, trials_to_within
from sweeps.cli import cli
from sweeps.commands.compare import split_ref

HOSTILE = "<script>alert(1)</script>*b*|x"
HOSTILE_DATASET = "<img src=x onerror=alert(2)>_d"


def _storage(path) -> optuna.storages.BaseStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _sweep(path, name: str, values: list[float | None], *, lr: float, dataset: str = "circle") -> None:
    """A sweep as the storage holds it (one study), with trials told by hand: no training."""
    config = {"name": name, "datasets": [dataset], "trials": len(values), "seed": 0, "train": {"learning_rate": lr}}
    config["note"] = HOSTILE  # a string of the sweep file: it shows in the diff
    study = optuna.create_study(storage=_storage(path), study_name=f"{name}/{dataset}")
    for key, value in (("sweep", json.dumps(config)), ("dataset", dataset), ("trials", len(values)), ("index", 0)):
        study.set_user_attr(key, value)
    dist = {"learning_rate": FloatDistribution(1e-3, 1.0, log=True)}
    for v in values:
        state = TrialState.PRUNED if v is None else TrialState.COMPLETE
        study.add_trial(create_trial(params={"learning_rate": lr}, distributions=dist, value=v, state=state))


@pytest.fixture
def two_storages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _sweep(tmp_path / "sweeps.journal", HOSTILE, [0.9, 0.5, None, 0.42, 0.4], lr=0.1, dataset=HOSTILE_DATASET)
    _sweep(tmp_path / "other.journal", "plain", [0.8, 0.3, 0.31, 0.6], lr=0.2, dataset=HOSTILE_DATASET)
    return tmp_path


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def test_compare_escapes_hostile_names_and_writes_only_under_out(two_storages):
    before = _files(two_storages)
    r = CliRunner().invoke(cli, ["compare", HOSTILE, "plain@other.journal", "--out", "out", "--no-test"])
    assert r.exit_code == 0, r.output
    written = _files(two_storages) - before
    assert written == {"out/compare.html", "out/compare.md", "out/figures/0-histories.png"}
    page = (two_storages / "out" / "compare.html").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert "<h1>Comparison of &lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;_d" in page  # the dataset, escaped
    # The diff of the stored sweep files, escaped: the names and the learning rates differ.
    assert re.search(r"-learning_rate = 0\.1\n\+learning_rate = 0\.2", page)
    md = (two_storages / "out" / "compare.md").read_text()
    # Outside the diff's fence (where '<' is literal text) no '<' at all; the fence holds.
    outside = re.sub(r"^```diff\n.*?^```$", "", md, flags=re.S | re.M)
    assert "<" not in outside and outside.count("```") == 0
    assert "```diff" in md and '+name = "plain"' in md
    # The first sweep: best 0.4, within 5% of it at its fourth trial (0.42), of 5 finished (one pruned).
    row = next(line for line in md.splitlines() if line.startswith("| &lt;script>alert(1)&lt;/script>\\*b\\*\\|x |"))
    assert "| 0.4 |" in row and "| 4 of 5 |" in row
    row = next(line for line in md.splitlines() if line.startswith("| plain"))
    assert "| 0.3 |" in row and "| 2 of 4 |" in row


def test_compare_default_folder_keeps_hostile_names_inside_reports(two_storages):
    r = CliRunner().invoke(cli, ["compare", HOSTILE, "plain@other.journal", "--no-test"])
    assert r.exit_code == 0, r.output
    (folder,) = os.listdir(two_storages / "reports")
    assert re.fullmatch(r"compare-[A-Za-z0-9_.-]+", folder)
    assert (two_storages / "reports" / folder / "compare.html").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["compare", "plain@other.journal"], "at least two sweeps"),
        (["compare", "nope", "plain@other.journal"], "no sweep named 'nope'"),
        (["compare", "plain@missing.journal", HOSTILE], "there is no storage 'missing.journal'"),
        (["compare", "plain@", HOSTILE], "must be NAME or NAME@STORAGE"),
        (["compare", "plain@other.journal", "plain@other.journal"], "compared once"),
        (["compare", "plain@other.journal", "plain@./other.journal"], "compared once"),  # the same file
        (["compare", "plain@other.journal", "a" * 100_000], "(100000 characters)"),  # not repeated whole
        (["compare", "plain@other.journal", "x@/dev/zero"], "is not a journal file"),  # never read for ever
    ],
)
def test_compare_refuses_in_one_line_and_writes_nothing(two_storages, args, says):
    before = _files(two_storages)
    r = CliRunner().invoke(cli, [*args, "--out", "out", "--no-test"])
    assert r.exit_code == 2, r.output
    assert says in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert len(r.output) < 400 and _files(two_storages) == before


def test_split_ref_keeps_the_ats_of_a_url():
    assert split_ref("a@postgresql://me@db/s", None) == ("a", "postgresql://me@db/s")
    assert split_ref("a", "x.journal") == ("a", "x.journal")


def test_bootstrap_interval_is_seeded_and_holds_the_best():
    values = list(np.random.default_rng(1).uniform(0.1, 1.0, 40))
    a = bootstrap_best(values, "minimize", seed=3)
    assert a == bootstrap_best(values, "minimize", seed=3)
    low, high = a
    assert low == min(values) and min(values) <= high < float(np.median(values))
    low, high = bootstrap_best(values, "maximize", seed=3)
    assert high == max(values) and low > float(np.median(values))
    assert bootstrap_best([0.5], "minimize") is None


def test_trials_to_within_counts_finished_trials_in_order():
    values = [(0, 1.0), (2, 0.5), (5, 0.41), (7, 0.4)]
    finished = [0, 1, 2, 3, 4, 5, 6, 7]
    assert trials_to_within(values, finished, "minimize") == 6  # 0.41 is within 5% of 0.4
    assert trials_to_within(values, finished, "minimize", share=0.0) == 8
    assert trials_to_within([(0, 0.91), (3, 0.95)], [0, 1, 3], "maximize") == 1
    assert trials_to_within([], [], "minimize") is None


@pytest.mark.slow
def test_compare_two_run_sweeps_with_test_scores(sweep_file):
    for name, sampler in (("a", "random"), ("b", "tpe")):
        path = sweep_file(name, trials=6, jobs=1, epochs=4)
        path.write_text(path.read_text().replace('name = "random"', f'name = "{sampler}"'))
        r = CliRunner().invoke(cli, ["run", str(path)])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["compare", "a", "b", "--out", "cmp"])
    assert r.exit_code == 0, r.output
    md = open("cmp/compare.md").read()
    assert md.count("## Dataset ") == 2 and "accuracy" in md  # circle and xor, each best retrained
    assert '-name = "random"' in md and '+name = "tpe"' in md
    assert sorted(os.listdir("cmp/figures")) == ["0-histories.png", "1-histories.png"]
