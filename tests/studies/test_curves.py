"""Curves at chart resolution: the stride, the epochs MLflow gets, the best epoch, and every
epoch as a table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studies.sweep.curves import ALL, CURVE_COLUMNS, best_epoch, crossed, curve_rows, curve_stride, epochs_to_log


@given(epochs=st.integers(1, 100_000), points=st.integers(1, 5000))
def test_the_stride_gives_at_least_the_points_asked_and_fewer_than_twice_as_many(epochs, points):
    stride = curve_stride(epochs, points)
    logged = epochs_to_log(epochs, stride=stride)
    strided = len(range(stride, epochs + 1, stride))
    assert strided >= min(points, epochs)
    assert strided < 2 * points or stride == 1
    assert logged[0] == 1 and logged[-1] == epochs
    assert logged == sorted(set(logged))


def test_all_and_few_epochs_log_every_epoch():
    assert curve_stride(100_000, ALL) == 1
    assert curve_stride(50, 50) == 1 and curve_stride(49, 50) == 1
    assert epochs_to_log(5, stride=1) == [1, 2, 3, 4, 5]


def test_every_trial_of_a_sweep_shares_the_strided_epochs():
    stride = curve_stride(200, 50)
    assert stride == 4
    long = epochs_to_log(200, stride=stride, marks=(37,))
    short = epochs_to_log(23, stride=stride, marks=(5,))  # pruned at epoch 23, best at 5
    assert short == [1, 4, 5, 8, 12, 16, 20, 23]
    assert set(short) - {1, 5, 23} <= set(long)
    assert 37 in long and 200 in long and len(long) == 52


def test_marks_out_of_range_are_ignored():
    assert epochs_to_log(10, stride=5, marks=(None, 0, 11, 7)) == [1, 5, 7, 10]
    assert epochs_to_log(0, stride=5, marks=(3,)) == []


def test_the_best_epoch_follows_the_objective():
    curves = {"val_cost": [0.9, 0.3, 0.3, 0.5], "val_accuracy": [0.5, 0.7, 0.9, 0.9]}
    assert best_epoch(curves, ("val_cost",)) == 2  # the earliest of equals
    assert best_epoch(curves, ("val_accuracy",)) == 3
    assert best_epoch(curves, ("parameters", "val_accuracy")) == 3
    assert best_epoch(curves, ("parameters", "train_seconds")) == 2  # no curve objective: val_cost
    assert best_epoch({"val_cost": [math.nan, 2.0]}, ("val_cost",)) == 2
    assert best_epoch({}, ("val_cost",)) is None


def test_curve_rows_hold_every_epoch_of_every_trial_and_the_value_that_diverged():
    rows = curve_rows(
        [
            ("circle", 0, {"train_cost": [3.0, 2.0], "val_cost": [4.0, 1.0], "val_accuracy": [0.5, 0.75]}, None),
            (
                "circle",
                3,
                {"train_cost": [1.0], "val_cost": [2.0], "val_accuracy": [0.25]},
                {"epoch": 2, "cost": "inf", "curve": "val_cost", "cause": "inf"},
            ),
            ("circle", 4, {"train_cost": [], "val_cost": []}, {"epoch": 1, "cost": 1e9, "cause": "exploding"}),
            (
                "circle",
                5,
                {"train_cost": [1.0], "val_cost": [2.0]},
                {"epoch": 2, "cause": "nan"},
            ),  # stored before 'cost'
        ]
    )
    assert list(rows) == ["dataset", "trial", "epoch", "train_cost", "val_cost", "val_accuracy"]
    assert rows["trial"] == [0, 0, 3, 3, 4, 5] and rows["epoch"] == [1, 2, 1, 2, 1, 1]
    assert rows["val_cost"] == [4.0, 1.0, 2.0, math.inf, None, 2.0]
    assert rows["train_cost"] == [3.0, 2.0, 1.0, None, 1e9, 1.0]
    assert rows["val_accuracy"] == [0.5, 0.75, 0.25, None, None, None]
    regression = curve_rows([("plane", 1, {"train_cost": [1.0, 0.5], "val_cost": [1.5], "val_r2": [0.1, 0.2]}, None)])
    assert "val_accuracy" not in regression and regression["val_cost"] == [1.5, None]
    assert set(regression) <= {"dataset", "trial", "epoch", *CURVE_COLUMNS}
    assert crossed({"epoch": 3, "cost": "nan", "curve": "val_cost"})[0:2] == ("val_cost", 3)
    assert math.isnan(crossed({"epoch": 3, "cost": "nan"})[2]) and crossed({"epoch": 3, "cost": "x"}) is None


@pytest.mark.parametrize("points", [0, -1])
def test_a_non_positive_point_count_logs_every_epoch_rather_than_nothing(points):
    # the sweep file refuses these (test_spec); a stored value never makes the stride zero
    assert curve_stride(100, points) == 1
