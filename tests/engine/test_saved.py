"""A trained network kept as an .npz model file: what it holds, how it predicts, what it refuses."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine import (
    MLP,
    MODEL_FORMAT,
    MODEL_VERSION,
    SweepsError,
    load_dataset,
    load_model,
    model_bytes,
    read_rows,
    save_model,
    train,
    with_features,
)


def _trained(name: str, features: tuple[str, ...], hidden: tuple[int, ...] = (5, 3)):
    ds = with_features(load_dataset(name, seed=1), features)
    model = MLP(ds.n_features, hidden, ds.n_outputs, activation="tanh", seed=1)
    train(model, ds, learning_rate=0.05, epochs=3, batch_size=16, seed=1)
    return model, ds


@pytest.mark.parametrize(
    ("name", "features"),
    [("circle", ("linear", "squares", "sines")), ("iris", ("linear", "products")), ("diabetes", ("linear",))],
)
def test_a_saved_network_predicts_on_raw_rows_as_it_did_on_its_inputs(tmp_path, name, features):
    model, ds = _trained(name, features)
    path = save_model(tmp_path / "m.npz", model, ds)
    saved = load_model(path)
    assert saved.raw_names == ds.raw_names and saved.features == ds.features and saved.task == ds.task
    assert saved.model.sizes == model.sizes and saved.model.activation == "tanh"
    for a, b in zip(saved.model.params, model.params):
        assert np.array_equal(a, b)
    expected = model.predict(ds.X_test)  # the dataset's own expanded, standardized test inputs
    got = saved.predict(ds.raw[2])  # the raw test rows, through the file's families and statistics
    if ds.task == "regression":  # in the target's own units
        assert np.array_equal(got, expected.astype(np.float64) * ds.target_scale + ds.target_mean)
        assert saved.predict_names(ds.raw[2][:2]) == [repr(float(v)) for v in got[:2]]
    else:
        assert np.array_equal(got, expected)
        assert saved.predict_names(ds.raw[2][:3]) == [ds.class_names[i] for i in expected[:3]]


def test_the_file_is_plain_arrays_with_a_format_and_version(tmp_path):
    model, ds = _trained("xor", ("linear",))
    path = tmp_path / "m.npz"
    path.write_bytes(model_bytes(model, ds))
    with np.load(path, allow_pickle=False) as data:  # no object arrays: loads without pickle
        assert str(data["format"]) == MODEL_FORMAT and int(data["version"]) == MODEL_VERSION
        assert {"W0", "b0", "W1", "b1", "W2", "b2", "input_mean", "input_scale", "raw_names"} <= set(data.files)


def _rewritten(tmp_path, **changes):
    model, ds = _trained("xor", ("linear",))
    path = tmp_path / "m.npz"
    save_model(path, model, ds)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": np.array(MODEL_VERSION + 1)}, f"of version {MODEL_VERSION + 1}; this sweeps reads version 1"),
        ({"format": np.array("other-model")}, "its format is 'other-model'"),
    ],
)
def test_another_format_or_version_is_refused_in_one_line(tmp_path, changes, message):
    with pytest.raises(SweepsError, match=message) as info:
        load_model(_rewritten(tmp_path, **changes))
    assert "\n" not in str(info.value)


def test_files_that_are_not_model_files_are_refused(tmp_path):
    text = tmp_path / "data.csv"
    text.write_text("x1,x2\n1,2\n")
    with pytest.raises(SweepsError, match="not an .npz file"):
        load_model(text)
    pickled = tmp_path / "p.npz"
    np.savez(pickled, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SweepsError, match="not a sweeps-model file"):
        load_model(pickled)
    with pytest.raises(SweepsError, match="does not exist"):
        load_model(tmp_path / "missing.npz")


def test_saving_replaces_a_link_and_never_writes_through_it(tmp_path):
    model, ds = _trained("xor", ("linear",))
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "m.npz"
    os.symlink(target, link)
    save_model(link, model, ds)
    assert target.read_text() == "keep me" and not link.is_symlink()
    assert load_model(link).model.sizes == model.sizes
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_read_rows_takes_the_columns_by_name_and_names_the_wrong_ones(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("b,a\n1,2\n3,4\n")
    assert read_rows(path, ["a", "b"]).tolist() == [[2.0, 1.0], [4.0, 3.0]]
    with pytest.raises(SweepsError, match=r"missing \['c'\]; extra \['b'\]"):
        read_rows(path, ["a", "c"])
    path.write_text("a,b\n1,x\n")
    with pytest.raises(SweepsError, match="column 'b' is not numeric"):
        read_rows(path, ["a", "b"])


@pytest.mark.parametrize(
    "sizes", [np.array([2, 10**12, 1]), np.array([2]), np.array([2, 0, 1]), np.array([3, 4, 4, 1])]
)
def test_sizes_that_are_not_the_weights_are_refused_before_any_memory(tmp_path, sizes):
    # a crafted file must not make the loader allocate what its sizes claim
    with pytest.raises(SweepsError, match=r"damaged .*\(its layers' sizes") as info:
        load_model(_rewritten(tmp_path, sizes=sizes))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("change", ["nan_weight", "zero_scale", "inf_mean"])
def test_weights_or_standardization_not_finite_are_a_damaged_file(tmp_path, change):
    model, ds = _trained("xor", ("linear",))
    path = tmp_path / "m.npz"
    save_model(path, model, ds)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if change == "nan_weight":
        arrays["W0"] = arrays["W0"].copy()
        arrays["W0"][0, 0] = np.nan
    elif change == "zero_scale":
        arrays["input_scale"] = np.zeros_like(arrays["input_scale"])
    else:
        arrays["input_mean"] = np.full_like(arrays["input_mean"], np.inf)
    np.savez(path, **arrays)
    with pytest.raises(SweepsError, match="a damaged sweeps-model file"):
        load_model(path)
