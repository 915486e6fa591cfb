"""Datasets: generators, bundled sets, users' files, splits, and errors that teach."""

from __future__ import annotations

import numpy as np
import pytest

from engine import DATASETS, from_arrays, load_dataset
from engine.data.playground import GENERATORS, REGRESSION_GENERATORS


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_builtin_dataset_loads_split_and_standardized(name):
    ds = load_dataset(name, seed=1)
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    assert ds.X_train.shape[0] == len(ds.y_train) and ds.X_val.shape[1] == ds.n_features
    assert len(ds.y_test) == pytest.approx(0.2 * n, abs=ds.n_classes + 1)
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-9)
    std = ds.X_train.std(axis=0)
    assert np.all((np.abs(std - 1.0) < 1e-9) | (std == 0.0))
    assert len(ds.feature_names) == ds.n_features
    if ds.task == "regression":
        assert ds.n_classes == 0 and ds.y_train.dtype == np.float64
    else:
        assert ds.y_train.dtype == np.int64
        assert set(np.unique(ds.y_train)) == set(range(ds.n_classes))
        assert set(np.unique(ds.y_test)) == set(range(ds.n_classes))  # stratified


def test_tasks_and_sizes():
    assert load_dataset("circle").task == "binary"
    assert load_dataset("iris").task == "multiclass" and load_dataset("iris").n_classes == 3
    assert load_dataset("digits").n_classes == 10
    assert load_dataset("diabetes").task == "regression"
    circle = load_dataset("circle")
    assert len(circle.y_train) + len(circle.y_val) + len(circle.y_test) == 500
    plane = load_dataset("plane")
    assert len(plane.y_train) + len(plane.y_val) + len(plane.y_test) == 1200
    assert load_dataset("xor", n_samples=100).X_train.shape[0] == 60


def test_split_is_fixed_by_the_seed():
    a, b, c = load_dataset("wine", seed=5), load_dataset("wine", seed=5), load_dataset("wine", seed=6)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.X_train, c.X_train)


def test_standardization_uses_training_statistics_only():
    X = np.arange(200, dtype=float).reshape(100, 2)
    y = np.arange(100) % 2
    ds = from_arrays(X, y, seed=0)
    assert abs(ds.X_val.mean()) > 0 or abs(ds.X_test.mean()) > 0  # not re-centred on their own
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_circle_labels_follow_the_radius(noise):
    X, y = GENERATORS["circle"](400, noise, np.random.default_rng(0))
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() <= 5.0 and y.sum() >= 1
    if noise == 0.0:
        np.testing.assert_array_equal(y, (r < 2.5).astype(int))
    else:
        assert 0 < np.mean(y != (r < 2.5)) < 0.5  # noise flips some, not most


def test_xor_points_keep_away_from_the_axes_and_label_by_sign():
    X, y = GENERATORS["xor"](400, 0.0, np.random.default_rng(0))
    assert np.abs(X).min() >= 0.3 and np.abs(X).max() <= 5.3
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(int))


def test_gauss_and_spiral_shapes():
    X, y = GENERATORS["gauss"](1000, 0.0, np.random.default_rng(0))
    assert X[y == 1].mean(axis=0) == pytest.approx([2, 2], abs=0.15)
    assert X[y == 1].var(axis=0) == pytest.approx([0.5, 0.5], rel=0.2)
    X, y = GENERATORS["spiral"](400, 0.0, np.random.default_rng(0))
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.max() < 5.0 and set(y) == {0, 1}
    np.testing.assert_allclose(r[:200], np.arange(200) / 200 * 5.0)


def test_regression_generators():
    X, t = REGRESSION_GENERATORS["plane"](300, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(t, (X[:, 0] + X[:, 1]) / 10)
    X, t = REGRESSION_GENERATORS["multigauss"](300, 0.0, np.random.default_rng(0))
    assert t.min() >= -1 and t.max() <= 1 and (t > 0).any() and (t < 0).any()


def test_csv_with_string_labels_and_label_option(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text(
        "colour,petal,width,species\n"
        + "".join(f"{i % 3},{i * 0.1},{(i * 7) % 5},{['zeta', 'alpha', 'mid'][i % 3]}\n" for i in range(60))
    )
    ds = load_dataset(str(path))
    assert ds.name == "flowers" and ds.task == "multiclass"
    assert ds.class_names == ("alpha", "mid", "zeta")  # sorted order
    assert ds.feature_names == ("colour", "petal", "width")
    with pytest.raises(ValueError, match="feature column 'species' is not numeric"):
        load_dataset(str(path), label="width")


def test_csv_label_column_choice_changes_features(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{i % 2},{i * 2.5}\n" for i in range(40)))
    ds = load_dataset(str(path), label="b")
    assert ds.feature_names == ("a", "c") and ds.task == "binary"
    reg = load_dataset(str(path))  # 'c' holds non-integers: regression
    assert reg.task == "regression"


def test_npz_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "arrays.npz"
    np.savez(path, X=rng.normal(size=(50, 3)), y=rng.integers(0, 2, 50))
    ds = load_dataset(str(path))
    assert ds.name == "arrays" and ds.task == "binary" and ds.n_features == 3


def test_npz_with_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([{"a": 1}] * 20, dtype=object), y=np.arange(20) % 2)
    with pytest.raises(ValueError, match="evil.npz"):
        load_dataset(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b,label\n1,x,0\n2,3,1\n", r"feature column 'b' is not numeric \(line 2 has 'x'\)"),
        ("a,b,label\n1,,0\n2,3,1\n", "feature column 'b' has a missing value on line 2"),
        ("a,b,label\n1,2,0\n2,3\n", "line 3 has 2 fields, but the header has 3"),
        ("a,label\n", "needs a header row and at least one data row"),
        ("a,label\n1,0\n2,0\n3,0\n", "needs at least 2 classes, but got 1"),
        ("a,b,label\n1,nan,0\n2,3,1\n", "feature column 'b' has a missing or infinite value on line 2"),
        # blank lines are skipped, but a message names the line of the file
        ("a,b,label\n\n\n1,2,0\n\n2,x,1\n", r"feature column 'b' is not numeric \(line 6 has 'x'\)"),
        ("a,b,label\n\n1,,0\n2,3,1\n", "feature column 'b' has a missing value on line 3\\."),
        ("a,b,label\n\n1,2,0\n\n2,3\n", "line 5 has 2 fields, but the header has 3"),
        ("a,b,label\n\n1,inf,0\n2,3,1\n", "feature column 'b' has a missing or infinite value on line 3"),
        ("a,b,label\n\n1,2,0\n2,3, \n", "label column 'label' has an empty value on line 4"),
        # a column is known by its name (the label option, `sweep predict`'s columns): unique, not empty
        ("a,a,label\n1,2,0\n2,3,1\n", r"column name 'a' appears twice \(columns 1 and 2\)"),
        ("a, a ,label\n1,2,0\n2,3,1\n", r"column name 'a' appears twice \(columns 1 and 2\)"),
        ("a,,label\n1,2,0\n2,3,1\n", "column 2 of the header has no name"),
    ],
)
def test_broken_csv_files(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(path))


def test_unknown_label_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,0\n2,1\n")
    with pytest.raises(ValueError, match=r"'label' must be one of the columns \['a', 'b'\], but got 'zz'"):
        load_dataset(str(path), label="zz")


def test_binary_file_is_not_a_csv(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(ValueError, match="not a UTF-8 text CSV file"):
        load_dataset(str(path))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_dataset("mnist"), r"unknown dataset 'mnist': must be one of \['breast_cancer', 'circle'"),
        (lambda: load_dataset("missing.csv"), "dataset file 'missing.csv' does not exist"),
        (lambda: load_dataset("circle", noise=0.9), r"'noise' must be a number in \[0, 0.5\], but got 0.9"),
        (
            lambda: load_dataset("circle", n_sample=10),
            r"unknown option 'n_sample'; allowed options are \['n_samples', 'noise'",
        ),
        (lambda: load_dataset("iris", noise=0.1), "unknown option 'noise'"),
        (lambda: from_arrays([[1.0], [np.nan]] * 5, [0, 1] * 5), "X contains NaN or infinity"),
        (lambda: from_arrays([[1.0]] * 10, [0, 1] * 4), "X and y must have the same number of rows, but got 10 and 8"),
        (lambda: from_arrays([[1.0]] * 10, [3] * 10), "needs at least 2 classes, but got 1"),
        (
            lambda: from_arrays([[1.0]] * 10, [0, 1] * 5, val_fraction=0.7),
            r"'val_fraction' must be a number in \(0, 0.5\)",
        ),
        (lambda: from_arrays([[1.0]] * 3, [0, 1, 0]), "too few to split"),
        (lambda: from_arrays(np.zeros((0, 2)), np.zeros(0)), "0 rows are too few to split"),
        (lambda: from_arrays(np.zeros((0, 2)), np.array([], dtype="<U1")), "0 rows are too few to split"),
        (lambda: from_arrays([[1.0]] * 10, np.zeros(10)), r"needs at least 2 classes, but got 1 \(0.0\)\.$"),
        (
            lambda: from_arrays([[1.0, 2.0]] * 9 + [[1.0, 1e300]], [0, 1] * 5, feature_names=["a", "b"]),
            r"X holds 1e\+300 at row 9, column 1 \('b'\): values must be within \+-1e\+75",
        ),
        (lambda: from_arrays([[1.0]] * 9 + [[-2e75]], [0, 1] * 5), r"X holds -2e\+75 at row 9, column 0:"),
        (
            lambda: from_arrays([[float(i)] for i in range(10)], [1.0] * 9 + [1e200], task="regression"),
            r"regression target holds 1e\+200 at row 9",
        ),
        (
            lambda: from_arrays([[float(i)] for i in range(10)], [1.0] * 9 + [np.nan], task="regression"),
            r"regression target holds nan at row 9",
        ),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_largest_values_allowed_take_every_feature_family_without_a_warning():
    """Inputs at the limit stay finite through squares and products and their standardization."""
    import warnings

    from engine.data.datasets import MAX_ABS_VALUE, with_features

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(40, 2)) * MAX_ABS_VALUE
    ds = from_arrays(X, [0, 1] * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wide = with_features(ds, ["linear", "squares", "products", "sines"])
    assert all(np.isfinite(part).all() for part in (wide.X_train, wide.X_val, wide.X_test))


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 12 cells or 40 bytes: every file below is read in many chunks, as a large one would be."""
    import engine.data.files as files

    monkeypatch.setattr(files, "_CHUNK_CELLS", 12)
    monkeypatch.setattr(files, "_PLAIN_CHUNK_BYTES", 40)
    return files


def test_a_csv_read_in_chunks_is_the_file(tmp_path, small_chunks):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(101, 3)).round(6)
    y = rng.integers(0, 3, 101)
    path = _csv(tmp_path / "d.csv", ["a", "b", "c", "y"], [[*x, v] for x, v in zip(X, y)])
    size = path.stat().st_size
    plain, careful = small_chunks._read_plain(path, None, size), small_chunks._read_careful(path, None, size)
    for X2, y2, header, label_col in (plain, careful):  # NumPy's parser and the csv module agree
        np.testing.assert_array_equal(X2, X)
        np.testing.assert_array_equal(y2, y.astype(float))
        assert header == ["a", "b", "c", "y"] and label_col == 3
    ds = load_dataset(str(path), label="b")
    assert ds.label == "b" and ds.feature_names == ("a", "c", "y")


_ROWS = [f"{i + 0.5},{i},{'xy'[i % 2]}" for i in range(20)]


@pytest.mark.parametrize(
    "text",
    [
        "a,b,y\n" + "\n".join(_ROWS) + "\n",  # string labels
        'a,b,y\n"0.5",0,x\n' + "\n".join(_ROWS[1:]) + "\n",  # quotes
        "a,b,y\n" + "\n   \n".join(_ROWS) + "\n",  # blank lines of spaces
        "\ufeffa,b,y\n0.5 , 0,x\n\n" + "\n".join(_ROWS[1:]),  # a BOM, spaces, no final newline
    ],
)
def test_csvs_beyond_plain_numbers_are_read_by_the_careful_reader(tmp_path, small_chunks, text):
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    assert small_chunks._read_plain(path, None, path.stat().st_size) is None
    ds = load_dataset(str(path))
    assert ds.task == "binary" and ds.feature_names == ("a", "b") and ds.label == "y"
    np.testing.assert_array_equal(np.sort(np.concatenate([r[:, 0] for r in ds.raw])), np.arange(20) + 0.5)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_large_csv_reports_its_rows_as_it_loads(tmp_path, small_chunks, monkeypatch, quoted):
    from engine import reading

    monkeypatch.setattr(small_chunks, "PROGRESS_BYTES", 0)
    q = '"' if quoted else ""  # quotes: the careful reader
    path = _csv(tmp_path / "d.csv", ["a", "b", "y"], [[f"{q}{i}{q}", -i, i % 2] for i in range(60)])
    seen = []
    with reading(lambda p, rows, done, size: seen.append((rows, done, size))):
        load_dataset(str(path))
    rows = [r for r, _, _ in seen]
    assert len(rows) > 5 and rows == sorted(set(rows)) and rows[-1] == 60
    if quoted:
        assert rows == list(range(4, 61, 4))  # 12 cells: 4 rows a chunk
    assert all(0 < done <= size == path.stat().st_size for _, done, size in seen)
    seen.clear()
    load_dataset(str(path))  # outside reading(): nobody is told
    assert seen == []


def test_a_label_in_the_first_column_is_not_guessed_away(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(4)
    path = _csv(tmp_path / "first.csv", ["y", "a", "b"], [[int(x[0] > 0), *x] for x in X])
    with pytest.raises(ValueError, match=r"which column is the label\? Without 'label' it is the last, 'b', "):
        load_dataset(str(path))
    assert load_dataset(str(path), label="y").task == "binary"
    assert load_dataset(str(path), label="b").task == "regression"
    assert load_dataset(str(path), task="regression").task == "regression"
    # A first column of row numbers is no label: the last column stays a regression target.
    _csv(path, ["id", "a", "b"], [[i, *x] for i, x in enumerate(X)])
    assert load_dataset(str(path)).task == "regression"


def test_a_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:
        load_dataset("data/none.csv")
    assert str(info.value) == (
        f"dataset file 'data/none.csv' does not exist (looked for '{tmp_path}/data/none.csv', relative to the "
        f"current folder '{tmp_path}')."
    )
