"""Datasets: playground generators, scikit-learn's bundled sets, and users' CSV/NPZ files.

Every dataset is split into train/validation/test by a seeded, stratified
permutation, and standardized with statistics of the training split only. A dataset
keeps its raw (unstandardized) inputs, so that :func:`with_features` can compute other
input feature families from them (see :mod:`engine.data.features`), standardized the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from engine.data.features import check_features, expand, expanded_names
from engine.data.files import FILE_SUFFIXES, read_file
from engine.data.playground import GENERATORS, REGRESSION_GENERATORS
from engine.errors import SweepsError
from engine.limits import check_memory, machine_memory

__all__ = ["Dataset", "load_dataset", "from_arrays", "with_features", "DATASETS", "TASKS", "dataset_name"]

TASKS = ("binary", "multiclass", "regression")
# Memory per generated row: the generator's temporaries and the split's copies of two features.
_GENERATED_ROW_BYTES = 192


class Loader(Protocol):
    """A built-in dataset's loader: called with ``seed`` and its ``options`` by keyword, it
    returns ``(X, y, feature_names, class_names)``."""

    options: tuple[str, ...]

    def __call__(self, *, seed: int, **options: Any) -> tuple: ...


def _loader(load: Callable[..., tuple], options: tuple[str, ...]) -> Loader:
    load.options = options  # type: ignore[attr-defined]  # a function takes attributes; Loader names this one
    return cast(Loader, load)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split into train, validation and test parts.

    ``y`` holds integer class labels (``0..n_classes-1``) or, for regression,
    standardized float targets (``target_mean`` and ``target_scale`` undo it).

    The inputs ``X_*`` are the columns of the feature families ``features`` (the raw features
    alone: ``("linear",)``) computed from the raw inputs ``raw`` (train, validation, test)
    and standardized with the training split's statistics ``input_mean`` and
    ``input_scale``; :meth:`inputs` does the same to any raw points.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_scale: float = 1.0
    fingerprint: str = ""  # sha256 of the raw features, the labels and the split (see ``signature``)
    features: tuple[str, ...] = ("linear",)
    raw: tuple[np.ndarray, ...] = ()  # train, validation and test (from_arrays sets all three)
    raw_names: tuple[str, ...] = ()
    input_mean: np.ndarray | None = None
    input_scale: np.ndarray | None = None
    label: str = ""  # a file's label column (a CSV's header name, an .npz's "y"); "" for a built-in set

    @property
    def n_features(self) -> int:
        """The network's inputs: the expanded columns."""
        return self.X_train.shape[1]

    @property
    def signature(self) -> dict[str, object]:
        """What identifies the data a sweep trains on: the content hash of its raw features,
        labels and split (before any expansion or standardization), and its shapes. JSON-ready."""
        return {
            "sha256": self.fingerprint,
            "task": self.task,
            "features": self.n_raw_features,
            "rows": [len(self.y_train), len(self.y_val), len(self.y_test)],
        }

    @property
    def n_raw_features(self) -> int:
        """The raw features the families are computed from."""
        return self.raw[0].shape[1]

    def inputs(self, points: np.ndarray) -> np.ndarray:
        """The network's inputs for raw points (rows x raw features): expanded by this
        dataset's families and standardized with its training statistics, as ``X_train`` is.

        Example:
            >>> ds = with_features(load_dataset("circle", seed=0), ("linear", "squares"))
            >>> bool(np.array_equal(ds.inputs(ds.raw[0]), ds.X_train))
            True
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != self.n_raw_features:
            raise SweepsError(
                f"dataset {self.name!r}: points must be rows of {self.n_raw_features} raw features, "
                f"but got shape {points.shape}."
            )
        return (expand(points, self.features) - self.input_mean) / self.input_scale

    @property
    def n_outputs(self) -> int:
        """Output units a network needs: 1 for binary and regression, else the class count."""
        return self.n_classes if self.task == "multiclass" else 1


def digest(*arrays: np.ndarray) -> str:
    """sha256 of arrays' dtypes, shapes and bytes: equal digests, equal arrays (the bytes of
    float64 values, not their printed form: the same on every machine)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.data)
    return h.hexdigest()


def _generated(name: str, generator: Callable, default_n: int) -> Loader:
    def load(*, seed: int, n_samples: int = default_n, noise: float = 0.0) -> tuple:
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 10:
            raise SweepsError(f"dataset {name!r}: 'n_samples' must be an integer >= 10, but got {n_samples!r}.")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 0.5:
            raise SweepsError(f"dataset {name!r}: 'noise' must be a number in [0, 0.5], but got {noise!r}.")
        check_memory(
            f"dataset {name!r}: 'n_samples' = {n_samples}",
            n_samples * _GENERATED_ROW_BYTES,
            advice=f"; at most about {machine_memory() // _GENERATED_ROW_BYTES:,} rows fit",
        )
        X, y = generator(n_samples, float(noise), np.random.default_rng(seed))
        return X, y, ("x1", "x2"), None

    return _loader(load, ("n_samples", "noise"))


def _sklearn(loader_name: str) -> Loader:
    def load(*, seed: int) -> tuple:
        import sklearn.datasets  # lazily: only this code needs scikit-learn

        bunch = getattr(sklearn.datasets, loader_name)()
        names = tuple(str(f) for f in bunch.feature_names) if hasattr(bunch, "feature_names") else ()
        if not names:
            names = tuple(f"x{i + 1}" for i in range(bunch.data.shape[1]))
        classes = tuple(str(c) for c in bunch.target_names) if "target_names" in bunch else None
        return bunch.data, bunch.target, names, classes

    return _loader(load, ())


DATASETS: dict[str, Loader] = {
    **{n: _generated(n, g, 500) for n, g in GENERATORS.items()},
    **{n: _generated(n, g, 1200) for n, g in REGRESSION_GENERATORS.items()},
    "iris": _sklearn("load_iris"),
    "wine": _sklearn("load_wine"),
    "breast_cancer": _sklearn("load_breast_cancer"),
    "digits": _sklearn("load_digits"),
    "diabetes": _sklearn("load_diabetes"),
}
_REGRESSION = {"plane", "multigauss", "diabetes"}
_SPLIT_OPTIONS = ("val_fraction", "test_fraction")
_FILE_OPTIONS = ("label", "task")


def dataset_name(name_or_path: str) -> str:
    """The short name of a dataset: a built-in name, or a file's stem."""
    return name_or_path if name_or_path in DATASETS else Path(name_or_path).stem


def load_dataset(name_or_path: str | Path, *, seed: int = 0, **options: Any) -> Dataset:
    """Load a built-in dataset or a user's ``.csv``/``.npz`` file, split and standardized.

    Args:
        name_or_path: one of :data:`DATASETS`, or a path to a ``.csv`` (header row) or ``.npz``
            (arrays ``X`` and ``y``) file.
        seed: seed of the generated points and of the split.
        **options: ``n_samples`` and ``noise`` (generated sets); ``label`` (CSV label column,
            default the last) and ``task`` (files: ``auto``, ``binary``, ``multiclass``,
            ``regression``); ``val_fraction`` and ``test_fraction`` (default 0.2 each).

    Example:
        >>> ds = load_dataset("circle", seed=0, noise=0.1)
        >>> ds.task, ds.X_train.shape
        ('binary', (300, 2))
    """
    key = str(name_or_path)
    split = {k: options.pop(k) for k in _SPLIT_OPTIONS if k in options}
    if key in DATASETS:
        loader = DATASETS[key]
        _check_options(key, options, loader.options)
        X, y, features, classes = loader(seed=seed, **options)
        task = "regression" if key in _REGRESSION else None
        name = key
    elif Path(key).suffix.lower() in FILE_SUFFIXES:
        _check_options(key, options, _FILE_OPTIONS)
        X, y, features, classes, task, label = read_file(Path(key), **options)
        name = Path(key).stem
        ds = from_arrays(X, y, name=name, task=task, feature_names=features, class_names=classes, seed=seed, **split)
        return replace(ds, label=label)
    else:
        raise SweepsError(
            f"unknown dataset {key!r}: must be one of {sorted(DATASETS)} or a path to a .csv or .npz file."
        )
    return from_arrays(X, y, name=name, task=task, feature_names=features, class_names=classes, seed=seed, **split)


def _check_options(name: str, options: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        ok = sorted(set(allowed) | set(_SPLIT_OPTIONS))
        raise SweepsError(f"dataset {name!r}: unknown option {unknown[0]!r}; allowed options are {ok}.")


def _infer_labels(
    y: np.ndarray, task: str | None, classes: tuple[str, ...] | None, name: str
) -> tuple[np.ndarray, str, int, tuple[str, ...]]:
    """Turn raw labels into (y, task, n_classes, class_names)."""
    if task not in (None, "auto", *TASKS):
        raise SweepsError(f"dataset {name!r}: 'task' must be one of {sorted(('auto', *TASKS))}, but got {task!r}.")
    numeric = np.issubdtype(y.dtype, np.number) or y.dtype == bool
    if task == "regression":
        if not numeric:
            raise SweepsError(f"dataset {name!r}: a regression target must be numeric, but got labels like {y[0]!r}.")
        return y.astype(np.float64), "regression", 0, ()
    if numeric:
        yf = y.astype(np.float64)
        if not np.isfinite(yf).all():
            raise SweepsError(f"dataset {name!r}: the labels contain NaN or infinity.")
        integral = bool(np.all(yf == np.round(yf)))
        if task in (None, "auto") and not (integral and len(np.unique(yf)) <= 50):
            return yf, "regression", 0, ()
    values, y_idx = np.unique(y, return_inverse=True)
    if len(values) < 2:
        only = values[0].item() if hasattr(values[0], "item") else values[0]
        raise SweepsError(f"dataset {name!r}: a classification dataset needs at least 2 classes, but got 1 ({only!r}).")
    n_classes = len(values)
    inferred = "binary" if n_classes == 2 else "multiclass"
    if task == "binary" and n_classes != 2:
        raise SweepsError(f"dataset {name!r}: task 'binary' needs 2 classes, but got {n_classes}.")
    if classes is None or len(classes) != n_classes:
        classes = tuple(str(v.item() if hasattr(v, "item") else v) for v in values)
    return y_idx.astype(np.int64), (task if task in TASKS else inferred), n_classes, tuple(classes)


def from_arrays(
    X: object,
    y: object,
    *,
    name: str = "data",
    task: str | None = None,
    feature_names: tuple[str, ...] | None = None,
    class_names: tuple[str, ...] | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> Dataset:
    """Check, split and standardize in-memory arrays into a :class:`Dataset`."""
    X, y = _checked_arrays(
        X, y, name=name, feature_names=feature_names, val_fraction=val_fraction, test_fraction=test_fraction
    )
    y, task, n_classes, classes = _infer_labels(y, task, class_names, name)
    if task == "regression" and not (np.isfinite(y).all() and (np.abs(y) <= MAX_ABS_VALUE).all()):
        row = int(np.flatnonzero(~(np.isfinite(y) & (np.abs(y) <= MAX_ABS_VALUE)))[0])
        raise SweepsError(
            f"dataset {name!r}: the regression target holds {y[row]:.3g} at row {row}: targets must be "
            f"finite and within +-{MAX_ABS_VALUE:.0e}; clean or rescale them."
        )
    if feature_names is None or len(feature_names) != X.shape[1]:
        feature_names = tuple(f"x{i + 1}" for i in range(X.shape[1]))

    train_idx, val_idx, test_idx = _split(
        y, task, n_classes, seed=seed, name=name, val_fraction=val_fraction, test_fraction=test_fraction
    )
    fingerprint = digest(X, y, train_idx, val_idx, test_idx)
    raw = (X[train_idx], X[val_idx], X[test_idx])
    (X_train, X_val, X_test), mean, std = _standardized(raw, ("linear",))
    t_mean, t_scale = 0.0, 1.0
    if task == "regression":
        t_mean = float(y[train_idx].mean())
        t_scale = float(y[train_idx].std()) or 1.0
        y = (y - t_mean) / t_scale
    return Dataset(
        name=name,
        task=task,
        X_train=X_train,
        y_train=y[train_idx],
        X_val=X_val,
        y_val=y[val_idx],
        X_test=X_test,
        y_test=y[test_idx],
        n_classes=n_classes,
        feature_names=tuple(feature_names),
        class_names=tuple(classes),
        target_mean=t_mean,
        target_scale=t_scale,
        fingerprint=fingerprint,
        features=("linear",),
        raw=raw,
        raw_names=tuple(feature_names),
        input_mean=mean,
        input_scale=std,
    )


def _checked_arrays(
    X: object, y: object, *, name: str, feature_names: tuple[str, ...] | None, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """X (as float64) and y, after every check that needs no labels: shapes, dtypes, finite and
    not too large values, the split's fractions."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] < 1:
        raise SweepsError(f"dataset {name!r}: X must be a 2-D array (rows x features), but got shape {X.shape}.")
    if y.ndim != 1:
        raise SweepsError(f"dataset {name!r}: y must be a 1-D array of labels, but got shape {y.shape}.")
    if X.shape[0] != y.shape[0]:
        raise SweepsError(
            f"dataset {name!r}: X and y must have the same number of rows, but got {X.shape[0]} and {y.shape[0]}."
        )
    if X.shape[0] == 0:
        raise SweepsError(f"dataset {name!r}: 0 rows are too few to split into train, validation and test.")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise SweepsError(f"dataset {name!r}: X must hold real numbers, but got dtype {X.dtype}.")
    if np.iscomplexobj(y):
        raise SweepsError(f"dataset {name!r}: y must hold real numbers or labels, but got dtype {y.dtype}.")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise SweepsError(
            f"dataset {name!r}: X contains NaN or infinity (row {row}, column {col}); clean or impute it first."
        )
    big = np.abs(X) > MAX_ABS_VALUE
    if big.any():
        row, col = np.argwhere(big)[0]
        label = f"column {col}" + (
            f" ({feature_names[col]!r})" if feature_names is not None and len(feature_names) == X.shape[1] else ""
        )
        raise SweepsError(
            f"dataset {name!r}: X holds {X[row, col]:.3g} at row {row}, {label}: values must be within "
            f"+-{MAX_ABS_VALUE:.0e} to be standardized and squared in float64; rescale that column."
        )
    for frac_name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < frac < 0.5:
            raise SweepsError(f"dataset {name!r}: {frac_name!r} must be a number in (0, 0.5), but got {frac!r}.")
    return X, y


def _split(
    y: np.ndarray, task: str, n_classes: int, *, seed: int, name: str, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test row indices, drawn by ``seed`` (stratified by class)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in range(n_classes)] if task != "regression" else [np.arange(len(y))]
    parts: list[list[np.ndarray]] = [[], [], []]
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train_idx, val_idx, test_idx = (rng.permutation(np.concatenate(p)) for p in parts)
    if min(len(train_idx), len(val_idx), len(test_idx)) < 1:
        raise SweepsError(f"dataset {name!r}: {len(y)} rows are too few to split into train, validation and test.")
    return train_idx, val_idx, test_idx


MAX_ABS_VALUE = 1e75  # the variances of squared and multiplied inputs stay finite in float64


def _standardized(raw: tuple[np.ndarray, ...], features: tuple[str, ...]):
    """The families' columns of each split, standardized with the training split's statistics."""
    cols = [expand(part, features) for part in raw]
    mean = cols[0].mean(axis=0)
    std = cols[0].std(axis=0)
    std[std == 0] = 1.0  # a constant column stays constant (zero) rather than dividing by zero
    return tuple((c - mean) / std for c in cols), mean, std


def with_features(dataset: Dataset, features: tuple[str, ...] | list[str]) -> Dataset:
    """The dataset with the inputs of the feature families ``features`` (see
    :mod:`engine.data.features`): computed from its raw inputs, in the families' fixed order, and
    standardized with the training split's statistics. Labels and split are unchanged;
    ``("linear",)`` gives the dataset as loaded.

    Raises:
        ValueError: for an unknown or repeated family, none at all, or ``products`` on data
            with more than :data:`engine.data.features.MAX_PRODUCT_FEATURES` raw features.

    Example:
        >>> ds = with_features(load_dataset("spiral", seed=0), ["sines", "linear"])
        >>> ds.feature_names
        ('x1', 'x2', 'sin(x1)', 'sin(x2)')
    """
    fams = check_features(features, n_features=dataset.n_raw_features, dataset=dataset.name)
    if fams == dataset.features:
        return dataset
    (X_train, X_val, X_test), mean, std = _standardized(dataset.raw, fams)
    return replace(
        dataset,
        X_train=X_train,
        X_val=X_val,
        X_test=X_test,
        features=fams,
        feature_names=expanded_names(dataset.raw_names, fams),
        input_mean=mean,
        input_scale=std,
    )
