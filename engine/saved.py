"""A trained network kept as a file: weights, architecture and the inputs it expects, in an
``.npz`` of plain arrays (``np.savez``, read back with ``allow_pickle=False``: loading a file
runs no code).

The file holds everything a prediction needs: the network (its layer sizes, activation,
output layer, weights and biases), the raw input columns it was trained on (by name), the
feature families computed from them and the training split's standardization of those
columns, and for classification the class names (for regression the target's scale). A
file says what it is (:data:`MODEL_FORMAT`, :data:`MODEL_VERSION`); another format or
version is refused in one line.

Example:
    >>> import io, tempfile, os
    >>> from engine import MLP, load_dataset, train
    >>> ds = load_dataset("xor", seed=0)
    >>> model = MLP(ds.n_features, (4,), ds.n_outputs, activation="tanh")
    >>> _ = train(model, ds, learning_rate=0.1, epochs=2, batch_size=10)
    >>> path = os.path.join(tempfile.mkdtemp(), "xor.npz")
    >>> _ = save_model(path, model, ds)
    >>> load_model(path).predict(ds.raw[2][:3]).shape
    (3,)
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.datasets import Dataset
from engine.data.features import check_features, expand
from engine.errors import SweepsError
from engine.network import MLP

__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "SavedModel", "load_model", "model_bytes", "read_rows", "save_model"]

MODEL_FORMAT = "sweeps-model"
MODEL_VERSION = 1


@dataclass(frozen=True)
class SavedModel:
    """A trained network with the inputs it expects.

    Attributes:
        model: the network (its ``predict`` takes standardized input columns).
        raw_names: the raw input columns, by name, in the order :meth:`predict` takes them.
        features: the feature families computed from them.
        input_mean, input_scale: the training split's standardization of the expanded columns.
        task: ``binary``, ``multiclass`` or ``regression``.
        class_names: a classification's classes, by label.
        target_mean, target_scale: a regression target's standardization (undone by :meth:`predict`).
        dataset: the name of the data it was trained on.
    """

    model: MLP
    raw_names: tuple[str, ...]
    features: tuple[str, ...]
    input_mean: np.ndarray
    input_scale: np.ndarray
    task: str
    class_names: tuple[str, ...] = ()
    target_mean: float = 0.0
    target_scale: float = 1.0
    dataset: str = ""

    def inputs(self, rows: object) -> np.ndarray:
        """The network's inputs for raw rows (rows x :attr:`raw_names`): expanded and standardized."""
        X = np.asarray(rows, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.raw_names):
            raise SweepsError(
                f"rows must have {len(self.raw_names)} columns ({', '.join(self.raw_names)}), but got shape {X.shape}."
            )
        if not np.isfinite(X).all():
            raise SweepsError("rows contain NaN or infinity; clean or impute the data first.")
        return (expand(X, self.features) - self.input_mean) / self.input_scale

    def predict(self, rows: object) -> np.ndarray:
        """Class labels (integers ``0..n_classes-1``; :attr:`class_names` names them) or, for
        regression, values in the target's own units."""
        out = self.model.predict(self.inputs(rows))
        if self.task == "regression":
            return np.asarray(out, dtype=np.float64) * self.target_scale + self.target_mean
        return out

    def predict_names(self, rows: object) -> list[str]:
        """Predictions as text: a class's name, or a regression value (``repr``: exact)."""
        pred = self.predict(rows)
        if self.task == "regression":
            return [repr(float(v)) for v in pred]
        return [self.class_names[int(i)] if int(i) < len(self.class_names) else str(int(i)) for i in pred]


def _text(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")


def model_bytes(model: MLP, dataset: Dataset) -> bytes:
    """The ``.npz`` file of ``model`` trained on ``dataset`` (with its feature families and
    standardization), as bytes: for a file (see :func:`save_model`) or an artifact."""
    if model.output is None:
        raise SweepsError("the model has no output layer yet: train it before saving it.")
    arrays: dict[str, np.ndarray] = {
        "format": np.array(MODEL_FORMAT),
        "version": np.array(MODEL_VERSION),
        "sizes": np.array(model.sizes, dtype=np.int64),
        "activation": np.array(model.activation),
        "output": np.array(model.output),
        "dtype": np.array(model.dtype.name),
        "raw_names": _text(dataset.raw_names),
        "features": _text(dataset.features),
        "input_mean": np.asarray(dataset.input_mean, dtype=np.float64),
        "input_scale": np.asarray(dataset.input_scale, dtype=np.float64),
        "task": np.array(dataset.task),
        "class_names": _text(dataset.class_names),
        "target": np.array([dataset.target_mean, dataset.target_scale], dtype=np.float64),
        "dataset": np.array(dataset.name),
    }
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # NumPy's stub: a ** key might be allow_pickle
    return buf.getvalue()


def save_model(path: str | Path, model: MLP, dataset: Dataset) -> str:
    """Write :func:`model_bytes` to ``path`` through a temporary file renamed into place (a
    crash leaves no half file; a symbolic link at ``path`` is replaced, not written through)."""
    from engine.data.files import write_atomic

    return write_atomic(str(path), model_bytes(model, dataset))


def _read(path: str) -> dict[str, np.ndarray]:
    where = repr(path)
    if not os.path.isfile(path):
        raise SweepsError(f"model file {where} does not exist.")
    if not zipfile.is_zipfile(path):
        raise SweepsError(f"{where} is not a {MODEL_FORMAT} file (not an .npz file); 'sweep report' writes them.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise SweepsError(f"{where} is not a {MODEL_FORMAT} file (not an .npz of plain arrays: {exc}).") from None
    fmt = str(arrays["format"]) if "format" in arrays and arrays["format"].dtype.kind == "U" else None
    if fmt != MODEL_FORMAT:
        raise SweepsError(f"{where} is not a {MODEL_FORMAT} file (its format is {fmt!r}); 'sweep report' writes them.")
    version = arrays.get("version")
    got = int(version) if version is not None and version.dtype.kind in "iu" and version.ndim == 0 else version
    if got != MODEL_VERSION:
        raise SweepsError(
            f"{where} is a {MODEL_FORMAT} file of version {got!r}; this sweeps reads version {MODEL_VERSION}."
        )
    return arrays


def load_model(path: str | Path) -> SavedModel:
    """Read a model file written by :func:`save_model` (``sweep report`` writes one per dataset).

    Raises:
        SweepsError: the file is missing, not an ``.npz``, of another format or version, or incomplete.
    """
    path = str(path)
    a = _read(path)
    try:
        sizes = tuple(int(s) for s in a["sizes"])
        # the arrays must be the network the sizes describe, before any memory is given to it
        if (
            len(sizes) < 2
            or min(sizes) < 1
            or any(
                a[f"W{i}"].shape != (n, m) or a[f"b{i}"].shape[-1:] != (m,)
                for i, (n, m) in enumerate(zip(sizes, sizes[1:]))
            )
        ):
            raise ValueError(f"its layers' sizes {list(sizes)[:8]} and weights differ")
        model = MLP(
            sizes[0],
            sizes[1:-1],
            sizes[-1],
            activation=str(a["activation"]),
            output=str(a["output"]),
            dtype=np.dtype(str(a["dtype"])),
        )
        for i, (w, b) in enumerate(zip(model.weights, model.biases)):
            w[...], b[...] = a[f"W{i}"], a[f"b{i}"]
        mean, scale = a["target"].astype(np.float64)
        saved = SavedModel(
            model=model,
            raw_names=tuple(str(n) for n in a["raw_names"]),
            features=check_features(tuple(str(f) for f in a["features"])),
            input_mean=a["input_mean"].astype(np.float64),
            input_scale=a["input_scale"].astype(np.float64),
            task=str(a["task"]),
            class_names=tuple(str(n) for n in a["class_names"]),
            target_mean=float(mean),
            target_scale=float(scale),
            dataset=str(a["dataset"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SweepsError(f"{path!r}: a damaged {MODEL_FORMAT} file ({exc}).") from None
    n_in = saved.input_mean.shape[0]
    if n_in != sizes[0] or saved.input_scale.shape != (n_in,):
        raise SweepsError(f"{path!r}: a damaged {MODEL_FORMAT} file (its inputs and standardization differ).")
    numbers = [*model.weights, *model.biases, saved.input_mean, saved.input_scale]
    if not all(np.isfinite(x).all() for x in numbers) or not (saved.input_scale > 0).all():
        raise SweepsError(
            f"{path!r}: a damaged {MODEL_FORMAT} file (weights or standardization not finite, or a zero scale)."
        )
    return saved


def read_rows(path: str | Path, names: Sequence[str]) -> np.ndarray:
    """The columns ``names`` of a CSV file (header row) as a float matrix, in that order; any
    other set of columns is refused in one line naming the missing and the extra ones."""
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise SweepsError(f"data file {path!r} does not exist.") from None
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        raise SweepsError(f"data file {path!r}: not a readable UTF-8 CSV file ({exc}).") from None
    if not rows:
        raise SweepsError(f"data file {path!r}: a CSV needs a header row naming its columns.")
    header = [h.strip() for h in rows[0]]
    missing = [n for n in names if n not in header]
    extra = [h for h in header if h not in names]
    if missing or extra or len(set(header)) != len(header):
        raise SweepsError(
            f"data file {path!r}: the columns must be the model's inputs {list(names)}, but "
            f"{'missing ' + repr(missing) if missing else ''}{'; ' if missing and extra else ''}"
            f"{'extra ' + repr(extra) if extra else ''}{'repeated names' if not (missing or extra) else ''}."
        )
    order = [header.index(n) for n in names]
    X = np.empty((len(rows) - 1, len(names)))
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise SweepsError(f"data file {path!r}: row {r} has {len(row)} fields, but the header has {len(header)}.")
        for j, col in enumerate(order):
            try:
                X[r - 2, j] = float(row[col])
            except ValueError:
                raise SweepsError(
                    f"data file {path!r}: column {names[j]!r} is not numeric (row {r} has {row[col].strip()!r})."
                ) from None
    return X
