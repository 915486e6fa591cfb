"""What bounds a sweep: the machine's limits refused by ``--check``, the ``stack`` (and its
old name ``batch``), fixed widths per layer and the ``stack_shape``."""

from __future__ import annotations

import tomllib

import pytest

from engine.limits import human_bytes, machine_memory
from sweeps.limits import cpu_count, max_jobs
from sweeps.spec import spec_from_dict
from tests.sweeps.spec.sweep_files import GOOD, assert_clean_error, edit, run_file

MEMORY = human_bytes(machine_memory())


# What passed '--check' and then failed at run time, or crashed: refused by '--check' now,
# with the limit and the value in the message.
LIMITS = [
    (
        edit('datasets = ["circle", "xor"]', 'datasets = [{ name = "circle", n_samples = 10000000000 }]'),
        f"'datasets[0]': dataset 'circle': 'n_samples' = 10000000000 needs about 1.7 TiB of memory, but this machine "
        f"has {MEMORY}; at most about",
    ),
    (
        edit("trials = 4", "trials = 4\ndivergence_factor = inf"),
        "'divergence_factor' must be a finite number > 1, but got inf",
    ),
    (
        edit("trials = 4", "trials = 4\ndivergence_factor = nan"),
        "'divergence_factor' must be a finite number > 1, but got nan",
    ),
    (
        edit("low = 2, high = 64, log = true", "low = 2, high = 1000000000, log = true"),
        "'search.hidden_units' = 1000000000: 1 worker(s) x 8 stacked network(s) of up to 3 layer(s) of "
        "1000000000 units "
        "on dataset 'circle' need about",
    ),
    (
        edit(
            "hidden_layers = { low = 1, high = 3 }\nhidden_units = { low = 2, high = 64, log = true }",
            "hidden_layers = { low = 1, high = 3 }",
        ).replace("[train]", "[train]\nhidden_units = 1000000000"),
        "'train.hidden_units' = 1000000000: 1 worker(s) x 8 stacked network(s)",
    ),
    (
        edit("hidden_layers = { low = 1, high = 3 }", "hidden_layers = { low = 1, high = 1000000000 }"),
        "'search.hidden_layers' = 1000000000: 1 worker(s) x 8 stacked network(s) of up to 1000000000 layer(s)",
    ),
    (
        edit("trials = 4", "trials = 4\nbatch = 100000000"),
        "x 100000000 stacked network(s) of up to 3 layer(s) of 64 units",
    ),
    (
        edit("trials = 4", "trials = 4\nbatch = 5000"),
        "'batch' must be at most 1024 (trials a worker trains at once, each a running trial in the storage; the "
        "gain stops at about 64), but got 5000",
    ),
    (
        edit("trials = 4", "trials = 4\nstack = 1024").replace("high = 64, log = true", "high = 100000"),
        "'search.hidden_units' = 100000: 1 worker(s) x 1024 stacked network(s) of up to 3 layer(s) of 100000 units",
    ),
    (
        edit('name = "tpe"', 'name = "grid"')
        .replace("{ low = 1e-4, high = 10.0, log = true }", "{ low = 0.001, high = 1.0, step = 0.001 }")
        .replace("{ low = 1e-5, high = 1.0, log = true }", "{ low = 0.0, high = 1.0, step = 0.000001 }"),
        "'sampler' = 'grid': the search space has about 10^15 grid points ('search.regularization_rate' "
        "alone has 1000001 values), but at most ",
    ),
    (
        edit("epochs = 3", "epochs = 1000000000000000"),
        "'train.epochs' must be an integer in [1, 100000], but got 1000000000000000",
    ),
    (
        edit("jobs = 1", "jobs = 100000"),
        f"'jobs' must be at most {max_jobs()} (8 worker processes per CPU; this machine "
        f"has {cpu_count()}), but got 100000",
    ),
]


@pytest.mark.parametrize("check", [True, False])
@pytest.mark.parametrize(("text", "message"), LIMITS, ids=[m[:40] for _, m in LIMITS])
def test_what_the_machine_cannot_run_is_refused_by_check(in_tmp, text, message, check):
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    result = run_file(path, *(["--check"] if check else []))
    assert_clean_error(result, message, in_tmp)
    if "memory" in message:
        assert f"but this machine has {MEMORY}" in result.output


def test_stack_is_the_key_and_batch_its_old_name(tmp_path):
    base = tomllib.loads(GOOD)
    assert spec_from_dict({**base, "stack": 4}).stack == 4
    assert spec_from_dict({**base, "batch": 4}).stack == 4  # files and stored sweeps of before the rename
    assert spec_from_dict(base).stack == 8 and spec_from_dict(base).to_dict()["stack"] == 8
    with pytest.raises(ValueError, match=r"'stack' and 'batch' are the same key \('batch' is its old name\)"):
        spec_from_dict({**base, "stack": 4, "batch": 4})
    with pytest.raises(ValueError, match=r"'batch' must be an integer >= 1, but got 0"):
        spec_from_dict({**base, "batch": 0})
    from studies.sweep import SweepConfig

    old = spec_from_dict(base).to_dict()
    old["batch"] = old.pop("stack")  # as a storage kept it before the rename
    assert SweepConfig.from_dict(old).stack == 8
    assert SweepConfig.identity_of(old) == spec_from_dict(base).identity()  # it resumes as the same sweep


def test_fixed_widths_per_layer_and_the_stack_shape_round_trip():
    # What 'sweep best' writes: one width per layer, and the stacks' shape.
    data = tomllib.loads(GOOD)
    del data["search"]["hidden_layers"], data["search"]["hidden_units"]
    data["train"]["hidden_units"] = [16, 4, 9]
    data["stack_shape"] = {"widths": [20, 20, 20, 20], "inputs": 3}
    config = spec_from_dict(data)
    assert config.space.from_params({"learning_rate": 0.1, "activation": "tanh", "regularization": "none"}).hidden == (
        16,
        4,
        9,
    )
    assert config.space.max_layers() == 3 and config.space.stack_widths(2) == [16, 16, 16]
    again = spec_from_dict(config.to_dict())
    assert again == config and again.stack_shape.widths == (20, 20, 20, 20) and again.stack_shape.inputs == 3
    from studies.sweep import SweepConfig

    assert SweepConfig.from_dict(config.to_dict()) == config  # as a worker reads it from the storage


@pytest.mark.parametrize(
    ("train", "search", "shape", "message"),
    [
        ({"hidden_units": []}, {}, None, "'train.hidden_units' must list one width per hidden layer, but got []"),
        ({"hidden_units": [4, 0]}, {}, None, "'train.hidden_units[1]' must be an integer >= 1, but got 0"),
        ({"hidden_units": [4, 4], "hidden_layers": 3}, {}, None, "'train.hidden_layers' = 3, but"),
        ({"hidden_units": [4, 4]}, {"hidden_layers": [1, 2]}, None, "can't search the depth"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4]}, "'stack_shape' must be a table"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4], "inputs": 2}, "too small for the networks"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [4, 4], "inputs": 1}, "too small for the networks"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [], "inputs": 2}, "must be a non-empty list"),
        # a shape's widths and inputs are the user's: checked against the machine's memory too
        ({"hidden_units": [4, 4]}, {}, {"widths": [50_000_000, 8], "inputs": 2}, "stacked network(s) of this shape"),
        ({"hidden_units": [4, 4]}, {}, {"widths": [8, 8], "inputs": 10**12}, "give smaller widths or inputs"),
    ],
)
def test_bad_widths_and_stack_shapes(train, search, shape, message):
    data = {"name": "w", "datasets": ["xor"], "train": train, "search": search}
    if shape is not None:
        data["stack_shape"] = shape
    with pytest.raises(ValueError) as info:
        spec_from_dict(data)
    assert message in str(info.value)
