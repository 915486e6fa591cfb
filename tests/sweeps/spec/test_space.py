"""``[train]`` and ``[search]``: the features fixed or searched, and the ranges' steps."""

from __future__ import annotations

import os
import tomllib

import pytest

from sweeps.spec import spec_from_dict
from tests.sweeps.spec.sweep_files import BAD, GOOD, edit, run_file

FEATURES_FIXED = edit('optimizer = "sgd"', 'optimizer = "sgd"\nfeatures = ["sines", "linear"]')


FEATURES_SEARCHED = edit("[search]", '[search]\nfeatures = { subsets = ["sines", "linear", "squares", "products"] }')


def test_features_fixed_or_searched_read_back_the_same(tmp_path):
    import json
    import tomllib

    from studies.sweep.config import SweepConfig
    from studies.sweep.space import Subsets

    fixed = spec_from_dict(tomllib.loads(FEATURES_FIXED), origin="t")
    assert fixed.space.fixed["features"] == ["linear", "sines"]  # the columns' order
    searched = spec_from_dict(tomllib.loads(FEATURES_SEARCHED), origin="t")
    assert searched.space.searched["features"] == Subsets(("linear", "squares", "products", "sines"))
    for config in (fixed, searched):
        assert spec_from_dict(config.to_dict()) == config
        assert SweepConfig.from_dict(json.loads(config.to_json())) == config  # as the storage keeps it


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for t, m in BAD if "features" in m], ids=[m[:40] for t, m in BAD if "features" in m]
)
def test_bad_features_raise_value_errors(text, message):
    import re
    import tomllib

    with pytest.raises(ValueError, match=re.escape(message)):
        spec_from_dict(tomllib.loads(text), origin="t")


def test_check_shows_the_input_features(in_tmp):
    for text, expected in (
        (FEATURES_FIXED, "input features linear+sines;"),
        (
            FEATURES_SEARCHED,
            "input features searched: each of linear, squares, products, sines on or off (at least one);",
        ),
        (GOOD, "input features linear;"),
    ):
        (in_tmp / "sweep.toml").write_text(text)
        r = run_file(in_tmp / "sweep.toml", "--check")
        assert r.exit_code == 0 and expected in r.output, r.output
        assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]


def test_a_step_that_divides_its_range_within_rounding_is_taken_and_a_stored_sweep_keeps_its_own():
    config = spec_from_dict(
        tomllib.loads(edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 0.1")), origin="t"
    )
    assert config.space.searched["learning_rate"].step == 0.1
    # A sweep stored before the rule existed still opens for 'sweep worker' (stored=True).
    text = edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 5.0")
    with pytest.raises(ValueError, match="must divide high - low"):
        spec_from_dict(tomllib.loads(text), origin="t")
    assert spec_from_dict(tomllib.loads(text), origin="t", stored=True).space.searched["learning_rate"].step == 5.0


def test_an_integer_step_divides_exactly_however_wide_the_range():
    data = tomllib.loads(GOOD)
    del data["train"]["batch_size"]
    data["search"]["batch_size"] = {"low": 1, "high": 10**10 + 1, "step": 3}  # 10**10 / 3: not a whole number
    with pytest.raises(
        ValueError,
        match=r"'search.batch_size.step' must divide high - low = 10000000000, but got 3 "
        r"\(Optuna would search only up to 10000000000\)",
    ):
        spec_from_dict(data, origin="t")
    data["search"]["batch_size"] = {"low": 1, "high": 10**10 + 3, "step": 3}
    assert spec_from_dict(data, origin="t").space.searched["batch_size"].step == 3
