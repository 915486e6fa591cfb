"""`--budget` on the command line, and what `sweep status` says of a budget and a stopped study."""

from __future__ import annotations

import dataclasses
import json
import os

import optuna
from click.testing import CliRunner

from studies.execution.runner import open_sweep, set_budget
from studies.storage.opening import open_storage
from studies.sweep import STOPPED_ATTR, Stop, stopped_record
from sweeps.cli import cli
from sweeps.spec import load_spec

SPEC = 'name = "{name}"\ndatasets = ["circle", "xor"]\ntrials = 5\n[train]\nepochs = 3\n'


def test_a_bad_budget_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(SPEC.format(name="bad"))
    for command in (["run", "s.toml", "--budget", "30 minutes"], ["run", "s.toml", "--budget", "1m1h", "--check"]):
        result = CliRunner().invoke(cli, [*command, "--no-mlflow"])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "'budget' must be a duration such as \"90s\"" in lines[0], result.output
        assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]


def test_status_shows_the_budget_and_the_stopped_studies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(SPEC.format(name="shown"))
    config = load_spec(str(tmp_path / "s.toml"))
    config = dataclasses.replace(config, budget=5400.0, stop=Stop(7, 0.5))
    storage = open_storage(str(tmp_path / "sweeps.journal"))
    studies = open_sweep(config, storage)
    set_budget(config, studies, create=True)
    studies[1].set_user_attr(STOPPED_ATTR, stopped_record(3, config.stop))
    result = CliRunner().invoke(cli, ["status", "shown"])
    assert result.exit_code == 0, result.output
    assert "budget 1h30m from" in result.output and "ends at" in result.output
    assert "xor: stopped on convergence at trial 3" in result.output and "in 7 finished trials" in result.output
    assert "circle: stopped" not in result.output
    data = json.loads(CliRunner().invoke(cli, ["status", "shown", "--json"]).output)
    circle, xor = data["studies"]
    assert circle["budget"]["seconds"] == 5400.0 and "stopped" not in circle
    assert xor["stopped"]["trial"] == 3 and xor["stopped"]["patience"] == 7
    study = optuna.load_study(study_name="shown/xor", storage=open_storage(str(tmp_path / "sweeps.journal")))
    assert study.user_attrs[STOPPED_ATTR]["min_delta"] == 0.5


def test_check_says_what_may_stop_the_sweep_short(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SPEC.format(name="chk").replace("trials = 5\n", 'trials = 5\ntrial_budget = "20s"\n')
    (tmp_path / "s.toml").write_text(text)
    result = CliRunner().invoke(cli, ["run", "s.toml", "--check", "--budget", "2h"])
    assert result.exit_code == 0, result.output
    assert "Limits: a budget of 2h from the start of the run; at most 20s per trial." in result.output
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]
