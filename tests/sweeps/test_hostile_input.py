"""Property-based: any sweep file or CSV ends in success or in the clean error (exit 2, one
line), never a traceback, and a refused input writes nothing."""

from __future__ import annotations

import copy
import json
import os
import tempfile

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeps.cli import cli

BASE = {
    "name": "prop",
    "datasets": ["gauss"],
    "trials": 2,
    "jobs": 1,
    "seed": 0,
    "objective": "val_cost",
    "train": {"epochs": 2, "batch_size": 10, "optimizer": "sgd"},
    "search": {
        "learning_rate": {"low": 1e-3, "high": 1.0, "log": True},
        "hidden_layers": {"low": 1, "high": 2},
        "hidden_units": {"low": 2, "high": 4},
        "activation": ["tanh", "relu"],
    },
    "sampler": {"name": "tpe"},
    "pruner": {"name": "median"},
}
PATHS = [
    ("name",),
    ("datasets",),
    ("trials",),
    ("jobs",),
    ("seed",),
    ("objective",),
    ("train",),
    ("train", "epochs"),
    ("train", "batch_size"),
    ("train", "optimizer"),
    ("search",),
    ("search", "learning_rate"),
    ("search", "learning_rate", "low"),
    ("search", "learning_rate", "log"),
    ("search", "hidden_units", "high"),
    ("search", "activation"),
    ("sampler", "name"),
    ("pruner",),
    ("pruner", "n_warmup_steps"),
    ("report_every",),
    ("divergence_factor",),
    ("search", "momentum"),
    ("train", "regularization"),
    ("sampler", "gamma"),
    ("datasets", 0),
]

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _mutate(data: dict, path: tuple, value: object) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return data
    last = path[-1]
    if isinstance(node, dict):
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node) and value is not None:
        node[last] = value
    return data


def _toml(data: object) -> str | None:
    def clean(x):  # TOML has no null: drop Nones inside lists and tables
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items() if v is not None}
        if isinstance(x, list):
            return [clean(v) for v in x if v is not None]
        return x

    try:
        return tomli_w.dumps(clean(data))
    except (TypeError, ValueError):
        return None


def _check(text: str | bytes, *extra: str, expect_total: int | None = None) -> None:
    with tempfile.TemporaryDirectory() as d:
        old = os.getcwd()
        os.chdir(d)
        try:
            path = "sweep.toml"
            with open(path, "wb") as fh:
                fh.write(text.encode() if isinstance(text, str) else text)
            result = CliRunner().invoke(cli, ["run", path, "--no-mlflow", *extra])
            assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
            assert "Traceback" not in result.output
            if result.exit_code == 2:
                lines = [line for line in result.output.splitlines() if line.strip()]
                assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
                assert sorted(os.listdir(d)) == ["sweep.toml"], "a refused sweep wrote something"
            else:
                assert result.exception is None
            if expect_total is not None:
                assert result.exit_code == 0, result.output
                status = CliRunner().invoke(cli, ["status", "prop", "--json"])
                studies = json.loads(status.output)["studies"]
                assert [s["finished"] for s in studies] == [expect_total]
                assert "running" not in studies[0]["counts"]
        finally:
            os.chdir(old)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_mutated_sweep_files_are_accepted_or_cleanly_refused(mutations):
    data = BASE
    for path, value in mutations:
        data = _mutate(data, path, value)
    text = _toml(data)
    if text is not None:
        _check(text, "--check")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_as_a_sweep_file(content):
    _check(content, "--check")


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(
    trials=st.integers(1, 3),
    epochs=st.integers(1, 3),
    activations=st.lists(st.sampled_from(["linear", "relu", "sigmoid", "tanh"]), min_size=1, max_size=3, unique=True),
    lr_high=st.floats(1e-3, 100.0),
    sampler=st.sampled_from(["tpe", "random", "qmc"]),
)
def test_valid_sweeps_run_to_their_total(trials, epochs, activations, lr_high, sampler):
    data = copy.deepcopy(BASE)
    data.update(trials=trials, sampler={"name": sampler})
    data["train"]["epochs"] = epochs
    data["search"]["activation"] = activations
    data["search"]["learning_rate"] = {"low": 1e-4, "high": lr_high, "log": True}
    _check(tomli_w.dumps(data), expect_total=trials)


csv_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-9, 9).map(str),
    st.sampled_from(["", "a", "b", " ", "1e400", "-0", "x,y", '"q"']),
    st.text(max_size=4),
)


@settings(max_examples=120, deadline=None)
@given(
    header=st.lists(
        st.text(min_size=1, max_size=6).filter(lambda s: "\n" not in s and "\r" not in s), min_size=1, max_size=4
    ),
    rows=st.lists(st.lists(csv_cells, min_size=1, max_size=4), max_size=25),
)
def test_arbitrary_csv_files_train_or_are_cleanly_refused(header, rows):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.csv")
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
        result = CliRunner().invoke(cli, ["train", "--dataset", path, "--epochs", "1", "--hidden", "2", "--json"])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    else:
        assert result.exception is None
    assert "Traceback" not in result.output
