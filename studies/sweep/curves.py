"""A trial's curves at chart resolution for MLflow, and every epoch as a table.

The storage keeps every epoch of every curve; MLflow gets each curve at a fixed stride per
sweep (the same epochs for every trial, so that runs line up in MLflow's compare charts),
plus, exactly, the first epoch, the last epoch trained, the best validation epoch and the
epoch that diverged. MLflow's SQL store costs about 60 us of CPU per metric point through
its public client, so a 200-epoch curve logged whole costs more than the run around it
(``benchmarks/bookkeeping.py mlflow``); its charts sample a line to a few hundred points anyway.

Example:
    >>> curve_stride(200, 50)
    4
    >>> epochs_to_log(10, stride=4, marks=(7,))
    [1, 4, 7, 8, 10]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "ALL",
    "DEFAULT_CURVE_POINTS",
    "CURVE_COLUMNS",
    "curve_stride",
    "epochs_to_log",
    "best_epoch",
    "crossed",
    "curve_rows",
]

ALL = "all"  # the sweep file's value for every epoch
# Points per curve in MLflow unless the sweep file says otherwise: the floor. 100
# points cost about 1.6x the CPU of 50 per run, and the writer then falls behind two workers
# on a 2-core machine (benchmarks/bookkeeping.py mlflow, curve_points 50 against 100).
DEFAULT_CURVE_POINTS = 50
# The curves a trial records (``studies.search.trial``), in the order of the table's columns.
CURVE_COLUMNS = ("train_cost", "val_cost", "val_accuracy", "val_r2")


def curve_stride(epochs: int, points: int | str) -> int:
    """The sweep's stride: MLflow gets every ``stride``-th epoch of every curve (1: all).

    ``epochs`` is the most any trial of the sweep trains, ``points`` the points wanted per
    curve (or ``"all"``): the stride gives at least ``points`` points (fewer than twice as many).
    """
    if points == ALL or not isinstance(points, int) or points <= 0 or epochs <= points:
        return 1
    return max(1, epochs // points)


def epochs_to_log(trained: int, *, stride: int, marks: Iterable[int | None] = ()) -> list[int]:
    """The epochs (from 1) of a curve of ``trained`` epochs that go to MLflow: every
    ``stride``-th, the first, the last, and the ``marks`` (the best epoch, say) within range."""
    if trained <= 0:
        return []
    chosen = set(range(stride, trained + 1, stride)) | {1, trained}
    chosen |= {m for m in marks if m is not None and 1 <= m <= trained}
    return sorted(chosen)


def best_epoch(curves: Mapping[str, Sequence[float]], objectives: Sequence[str]) -> int | None:
    """The epoch (from 1) of the best validation value: of the first objective with a curve
    (``val_cost`` lowest, ``val_accuracy`` highest), else of ``val_cost``; the earliest of equals."""
    name = next((o for o in objectives if o in ("val_cost", "val_accuracy")), "val_cost")
    values = curves.get(name) or []
    sign = -1.0 if name == "val_accuracy" else 1.0
    best: tuple[float, int] | None = None
    for epoch, v in enumerate(values, start=1):
        if isinstance(v, (int, float)) and math.isfinite(v) and (best is None or sign * v < best[0]):
            best = (sign * v, epoch)
    return None if best is None else best[1]


def crossed(divergence: Mapping[str, object] | None) -> tuple[str, int, float] | None:
    """(curve, epoch, value) of the cost that crossed the divergence threshold (NaN, inf or the
    exploding value), from a trial's ``divergence`` record; ``None`` if it has none (trials
    stored before it was recorded)."""
    if not isinstance(divergence, Mapping) or "cost" not in divergence or "epoch" not in divergence:
        return None
    try:
        value = float(divergence["cost"])  # type: ignore[arg-type]  # 'inf', 'nan' in words (JSON has neither)
        epoch = int(divergence["epoch"])  # type: ignore[call-overload]  # anything but an int fails here
    except (TypeError, ValueError):
        return None
    curve = divergence.get("curve", "train_cost")
    return (curve if curve in ("train_cost", "val_cost") else "train_cost"), epoch, value


def curve_rows(
    trials: Iterable[tuple[str, int, Mapping[str, Sequence[float]], Mapping[str, object] | None]],
) -> dict[str, list]:
    """Every epoch of every trial as columns (``dataset``, ``trial``, ``epoch`` and one per
    curve in :data:`CURVE_COLUMNS` that any trial has; ``None`` where a trial lacks it), from
    ``(dataset, trial number, curves, divergence record or None)``. A diverged trial's last row
    is the epoch that diverged, with the value that crossed the threshold in its curve."""
    items = list(trials)
    present = [c for c in CURVE_COLUMNS if any(c in curves for _, _, curves, _ in items)]
    for c in ("train_cost", "val_cost"):
        if c not in present and any((crossed(d) or ("",))[0] == c for *_, d in items):
            present.insert(CURVE_COLUMNS.index(c), c)
    table: dict[str, list] = {"dataset": [], "trial": [], "epoch": [], **{c: [] for c in present}}
    for dataset, number, curves, divergence in items:
        n = max((len(curves.get(c) or ()) for c in present), default=0)
        cross = crossed(divergence)
        rows = n + (cross is not None)
        table["dataset"] += [dataset] * rows
        table["trial"] += [number] * rows
        table["epoch"] += list(range(1, n + 1)) + ([cross[1]] if cross is not None else [])
        for c in present:
            values = list(curves.get(c) or ())
            table[c] += [float(v) for v in values] + [None] * (n - len(values))
            if cross is not None:
                table[c].append(cross[2] if cross[0] == c else None)
    return table
