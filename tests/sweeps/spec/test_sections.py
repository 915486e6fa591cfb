"""``objective`` (one or several, with the sampler and the pruner) and ``[mlflow]``."""

from __future__ import annotations

import os
import tomllib

import pytest

from sweeps.spec import spec_from_dict
from tests.sweeps.spec.sweep_files import BAD, GOOD, edit, run_file

OBJECTIVE_ERRORS = [
    (t, m) for t, m in BAD if "objective" in m or "nsgaii" in m or "population_size" in m or "mutation_prob" in m
]


@pytest.mark.parametrize(("text", "message"), OBJECTIVE_ERRORS, ids=[m[:40] for _, m in OBJECTIVE_ERRORS])
def test_bad_objectives_raise_value_errors(text, message):
    import re
    import tomllib

    with pytest.raises(ValueError, match=re.escape(message)):
        spec_from_dict(tomllib.loads(text), origin="t")


def test_several_objectives_read_back_the_same_and_one_in_a_list_is_that_one():
    import json
    import tomllib

    from studies.sweep.config import SweepConfig

    multi = spec_from_dict(
        tomllib.loads(
            edit('objective = "val_cost"', 'objective = ["val_accuracy", "parameters"]').replace(
                '[pruner]\nname = "median"\n', ""
            )
        ),
        origin="t",
    )
    assert multi.objective == ("val_accuracy", "parameters") and multi.multi
    assert multi.directions == ["maximize", "minimize"] and multi.pruner.name == "none"  # no pruner by default
    with pytest.raises(ValueError, match="has several objectives"):
        _ = multi.direction
    assert multi.to_dict()["objective"] == ["val_accuracy", "parameters"]
    assert spec_from_dict(multi.to_dict()) == multi
    assert SweepConfig.from_dict(json.loads(multi.to_json())) == multi  # as the storage keeps it
    assert (
        multi.identity() != spec_from_dict(multi.to_dict() | {"objective": ["parameters", "val_accuracy"]}).identity()
    )
    one = spec_from_dict(tomllib.loads(edit('objective = "val_cost"', 'objective = ["val_cost"]')), origin="t")
    assert one.objective == "val_cost" and not one.multi and one.to_dict()["objective"] == "val_cost"
    assert one == spec_from_dict(tomllib.loads(GOOD), origin="t")  # stored exactly as the single name


def test_check_names_several_objectives(in_tmp):
    (in_tmp / "sweep.toml").write_text(
        edit('objective = "val_cost"', 'objective = ["val_cost", "train_seconds"]').replace(
            'name = "median"', 'name = "none"'
        )
    )
    r = run_file(in_tmp / "sweep.toml", "--check")
    assert r.exit_code == 0, r.output
    assert "pruner none, objectives val_cost, train_seconds (minimize, minimize: a Pareto front)." in r.output
    assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]


def test_mlflow_curve_points_default_all_or_a_number_and_a_change_resumes(tmp_path):
    assert spec_from_dict(tomllib.loads(GOOD)).curve_points == 50
    for value, expected in (('"all"', "all"), ("200", 200), ("1", 1)):
        config = spec_from_dict(tomllib.loads(GOOD + f"\n[mlflow]\ncurve_points = {value}\n"))
        assert config.curve_points == expected
        assert spec_from_dict(config.to_dict()).curve_points == expected  # stored and read back
        # what MLflow shows is not the sweep's identity: a resumed sweep may change it
        assert config.identity() == spec_from_dict(tomllib.loads(GOOD)).identity()
    from studies.sweep.config import SweepConfig

    stored = spec_from_dict(tomllib.loads(GOOD)).to_dict()
    del stored["mlflow"]  # a sweep stored before the key existed
    assert SweepConfig.from_dict(stored).curve_points == 50
