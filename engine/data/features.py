"""Input feature families, as the neural network playground offers them, for any numeric dataset.

Each family is a function of the raw (unstandardized) input matrix, keyed by the name users
type. The expanded inputs are the chosen families' columns in this table's order (whatever
order they were asked in), each family's columns in the raw features' order:

=============  ==========================================  on 2-D data
``linear``     the raw features ``x_i``                    X1, X2
``squares``    ``x_i ** 2``                                X1², X2²
``products``   ``x_i * x_j`` for every pair ``i < j``      X1·X2
``sines``      ``sin(x_i)``                                sin(X1), sin(X2)
=============  ==========================================  ============

so that on 2-D data all four families give the playground's seven inputs in its order: X1,
X2, X1², X2², X1·X2, sin(X1), sin(X2). ``engine.data.datasets.with_features`` standardizes the
expanded columns with the training split's statistics.

Example:
    >>> import numpy as np
    >>> expand(np.array([[1.0, 2.0]]), ("products", "linear"))
    array([[1., 2., 2.]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from engine.errors import SweepsError

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "MAX_PRODUCT_FEATURES",
    "check_features",
    "expand",
    "expanded_names",
    "n_columns",
]

# 'products' makes d * (d - 1) / 2 columns: 496 for 32 raw features, 2016 for digits' 64.
# Beyond 32 the first layer would be mostly products; leave the family out for such data.
MAX_PRODUCT_FEATURES = 32


def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(d, k=1)


def _linear(X: np.ndarray) -> np.ndarray:
    return X


def _squares(X: np.ndarray) -> np.ndarray:
    return X * X


def _products(X: np.ndarray) -> np.ndarray:
    i, j = _pairs(X.shape[1])
    return X[:, i] * X[:, j]


def _sines(X: np.ndarray) -> np.ndarray:
    return np.sin(X)


FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": _linear,
    "squares": _squares,
    "products": _products,
    "sines": _sines,
}


def _product_names(names: tuple[str, ...]) -> tuple[str, ...]:
    i, j = _pairs(len(names))
    return tuple(f"{names[a]}*{names[b]}" for a, b in zip(i.tolist(), j.tolist()))


FEATURE_NAMES: dict[str, Callable[[tuple[str, ...]], tuple[str, ...]]] = {
    "linear": lambda names: tuple(names),
    "squares": lambda names: tuple(f"{n}^2" for n in names),
    "products": _product_names,
    "sines": lambda names: tuple(f"sin({n})" for n in names),
}


def check_features(
    features: Sequence[str], *, n_features: int | None = None, dataset: str | None = None, key: str = "features"
) -> tuple[str, ...]:
    """Check a set of families and return it in the table's (the columns') order.

    Args:
        features: family names, each once, at least one.
        n_features: the raw features of the data they apply to (checks what ``products`` needs).
        dataset: the data's name, for messages.
        key: the setting's name, for messages (e.g. ``'train.features'``).

    Raises:
        ValueError: naming the bad value and the families allowed, sorted.
    """
    allowed = sorted(FEATURES)
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise SweepsError(f"{key!r} must be a non-empty list of families from {allowed}, but got {features!r}.")
    seen: set[str] = set()
    for f in features:
        if not isinstance(f, str) or f not in FEATURES:
            raise SweepsError(f"{key!r} must be a list of families from {allowed}, but got {f!r}.")
        if f in seen:
            raise SweepsError(f"{key!r} lists {f!r} twice; each family is on or off.")
        seen.add(f)
    if "products" in seen and n_features is not None:
        where = f"dataset {dataset!r}" if dataset else "the dataset"
        if n_features < 2:
            raise SweepsError(f"{key!r}: 'products' needs at least 2 raw features, but {where} has {n_features}.")
        if n_features > MAX_PRODUCT_FEATURES:
            raise SweepsError(
                f"{key!r}: 'products' takes at most {MAX_PRODUCT_FEATURES} raw features "
                f"({MAX_PRODUCT_FEATURES * (MAX_PRODUCT_FEATURES - 1) // 2} pairwise products), but {where} has "
                f"{n_features} ({n_features * (n_features - 1) // 2} products); leave 'products' out for it."
            )
    return tuple(f for f in FEATURES if f in seen)


def expand(X: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """The columns of ``features`` computed from the raw inputs ``X`` (rows x raw features), in
    the table's order; ``("linear",)`` returns ``X`` itself."""
    fams = check_features(features, n_features=X.shape[1])
    if fams == ("linear",):
        return X
    return np.hstack([FEATURES[f](X) for f in fams])


def n_columns(n_features: int, features: Sequence[str]) -> int:
    """How many input columns ``features`` make from ``n_features`` raw features."""
    fams = check_features(features, n_features=n_features)
    return sum(n_features * (n_features - 1) // 2 if f == "products" else n_features for f in fams)


def expanded_names(names: Sequence[str], features: Sequence[str]) -> tuple[str, ...]:
    """The expanded columns' names, e.g. ``('x1', 'x2', 'sin(x1)', 'sin(x2)')``."""
    fams = check_features(features, n_features=len(names))
    return tuple(n for f in fams for n in FEATURE_NAMES[f](tuple(names)))
