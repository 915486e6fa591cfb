"""The report's figures, drawn with matplotlib's object API (no global pyplot state) as PNG bytes."""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from optuna.trial import FrozenTrial

from studies.sweep import outcome_of

__all__ = [
    "curves",
    "history",
    "importances",
    "slices",
    "divergence_map",
    "decision_boundary",
    "boundary_grid",
    "pareto",
]

LOG_PARAMS = ("learning_rate", "regularization_rate")
COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "diverged": "#d62728", "cut": "#9467bd", "failed": "#7f7f7f"}


def _label(text: str) -> str:
    """A user's string as matplotlib text: '$' would start mathtext."""
    return str(text).replace("$", r"\$")


def _value(t: FrozenTrial, index: int) -> float | None:
    """A complete trial's value of objective ``index`` (``None`` if none, or not finite)."""
    if outcome_of(t) != "complete" or not t.values or len(t.values) <= index:
        return None
    v = float(t.values[index])
    return v if math.isfinite(v) else None


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # A figure laid out by its layout engine needs no second, "tight" pass (it doubles the cost).
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if fig.get_layout_engine() is None else None)
    return buf.getvalue()


def _log(ax, which: str) -> None:  # noqa: ANN001
    """A log scale on axis ``which`` ("x" or "y") with its major ticks only: minor ticks over
    many decades cost more to lay out than the rest of the figure, and say little."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.xaxis if which == "x" else ax.yaxis).set_minor_locator(NullLocator())


def curves(trials: list[FrozenTrial], title: str) -> bytes:
    """Train (dashed) and validation (solid) cost per epoch of each trial."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, t in enumerate(trials):
        run = t.user_attrs.get("run", {})
        c = run.get("curves", {})
        color = f"C{i % 10}"
        label = _label(run.get("label", f"t{t.number}"))
        if c.get("val_cost"):
            epochs = np.arange(1, len(c["val_cost"]) + 1)
            ax.plot(epochs, c["val_cost"], color=color, label=f"{label} (validation)")
            ax.plot(epochs, c["train_cost"], color=color, linestyle="--", alpha=0.7)
        div = t.user_attrs.get("divergence")
        if div:
            ax.axvline(div["epoch"], color=color, linestyle=":", alpha=0.8)
    _log(ax, "y")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost (log scale); dashed: train")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no finished epoch to show", ha="center", va="center", transform=ax.transAxes)
    return _png(fig)


def history(trials: list[FrozenTrial], direction: str, objective: str, *, index: int = 0) -> bytes:
    """Each complete trial's value (of objective ``index``) by trial number, and the best so far."""
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    done = sorted((t for t in trials if _value(t, index) is not None), key=lambda t: t.number)
    if done:
        xs = [t.number for t in done]
        ys = [_value(t, index) for t in done]
        best = np.minimum.accumulate(ys) if direction == "minimize" else np.maximum.accumulate(ys)
        ax.scatter(xs, ys, s=10, alpha=0.6, label="trial")
        ax.step(xs, best, where="post", color="C3", label="best so far")
        if direction == "minimize" and min(ys) > 0:
            _log(ax, "y")
        ax.legend(fontsize=8)
    ax.set_xlabel("trial number")
    ax.set_ylabel(objective)
    ax.set_title("Optimization history")
    return _png(fig)


def importances(values: dict[str, float]) -> bytes:
    fig = Figure(figsize=(6, 0.5 + 0.35 * max(1, len(values))))
    ax = fig.add_subplot()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="C0")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("Hyperparameter importances")
    return _png(fig)


def slices(trials: list[FrozenTrial], params: list[str], objective: str, *, index: int = 0) -> bytes:
    """The objective (number ``index``) against each parameter (complete trials)."""
    done = [t for t in trials if _value(t, index) is not None]
    n = max(1, len(params))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    for i, p in enumerate(params):
        ax = fig.add_subplot(rows, cols, i + 1)
        pts = [(t.params[p], _value(t, index)) for t in done if p in t.params]
        if pts:
            xs, ys = zip(*pts)
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
                ax.scatter(xs, ys, s=9, alpha=0.6, c=[t.number for t in done if p in t.params], cmap="viridis")
                if p in LOG_PARAMS:
                    _log(ax, "x")
            else:
                labels = sorted({str(x) for x in xs})
                ax.scatter([labels.index(str(x)) for x in xs], ys, s=9, alpha=0.6)
                ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(p + (" (log)" if p in LOG_PARAMS else ""), fontsize=8)
        ax.set_ylabel(objective, fontsize=8)
    fig.suptitle("Slices: the objective against each parameter (colour: trial number)", fontsize=9)
    return _png(fig)


def _scale(ax, axis: str, values: list[float]) -> None:
    """A log axis for positive values spread over more than two decades (network sizes)."""
    if values and min(values) > 0 and max(values) / min(values) > 100:
        getattr(ax, f"set_{axis}scale")("log")


def pareto(
    trials: list[FrozenTrial], front: list[FrozenTrial], objectives: tuple[str, ...], directions: tuple[str, ...]
) -> bytes:
    """Every complete trial's objectives, the Pareto front highlighted (joined in order); two
    objectives in one plot, three or more pairwise."""
    on = {t.number for t in front}
    done = [t for t in trials if all(_value(t, i) is not None for i in range(len(objectives)))]
    pairs = [(i, j) for i in range(len(objectives)) for j in range(i + 1, len(objectives))]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    size = (6.4, 4.2) if len(pairs) == 1 else (3.6 * cols, 3.2 * rows)
    fig = Figure(figsize=size, layout="constrained")
    for k, (i, j) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, k + 1)
        rest = [t for t in done if t.number not in on]
        best = sorted((t for t in done if t.number in on), key=lambda t: (_value(t, i), _value(t, j)))
        if rest:
            ax.scatter(
                [_value(t, i) for t in rest],
                [_value(t, j) for t in rest],
                s=12,
                alpha=0.45,
                color=COLORS["complete"],
                label="trial",
            )
        if best:
            xs, ys = [_value(t, i) for t in best], [_value(t, j) for t in best]
            if len(objectives) == 2:  # the front of two objectives is a staircase
                ax.step(
                    xs, ys, where="post" if directions[j] == "minimize" else "pre", color="C3", alpha=0.5, linewidth=1
                )
            ax.scatter(xs, ys, s=30, color="C3", edgecolors="k", linewidths=0.4, label="Pareto front", zorder=3)
            if len(best) <= 12:
                for t, x, y in zip(best, xs, ys):
                    ax.annotate(f"t{t.number}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        _scale(ax, "x", [_value(t, i) for t in done])
        _scale(ax, "y", [_value(t, j) for t in done])
        ax.set_xlabel(f"{_label(objectives[i])} ({directions[i]})", fontsize=8)
        ax.set_ylabel(f"{_label(objectives[j])} ({directions[j]})", fontsize=8)
        if k == 0 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        if not done:
            ax.text(0.5, 0.5, "no complete trial yet", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"Pareto front: {len(front)} of {len(done)} complete trials", fontsize=9)
    return _png(fig)


def divergence_map(trials: list[FrozenTrial], stable_lr: float | None) -> bytes:
    """Learning rate against network width (total hidden units), diverged trials marked."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for outcome, marker in (("complete", "o"), ("pruned", "s"), ("failed", "^"), ("diverged", "x")):
        pts = [
            (t.params["learning_rate"], sum(v for k, v in t.params.items() if k.startswith("hidden_units_")) or 0)
            for t in trials
            if outcome_of(t) == outcome and "learning_rate" in t.params
        ]
        if pts:
            xs, ys = zip(*pts)
            jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(ys))  # fixed jitter: same picture every time
            ax.scatter(
                xs,
                np.asarray(ys) + jitter,
                marker=marker,
                s=22 if outcome == "diverged" else 12,
                color=COLORS[outcome],
                label=outcome,
                alpha=0.75,
            )
    if stable_lr is not None:
        ax.axvline(stable_lr, color="C2", linestyle="--", label=f"largest stable lr {stable_lr:.3g}")
    _log(ax, "x")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("hidden units in total")
    ax.set_title("Divergence map")
    ax.legend(fontsize=7)
    return _png(fig)


def boundary_grid(model, dataset, *, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ``n x n`` grid over the raw plane around the training points (half a standard
    deviation beyond them), and the network's class-1 probability at each point.

    The points become inputs as the training rows did (``dataset.inputs``: the dataset's
    feature families, then its training statistics), so the boundary is the trained network's.
    """
    X = dataset.raw[0]
    std = X.std(axis=0)
    margin = np.where(std > 0, 0.5 * std, 0.5)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    proba = model.predict_proba(dataset.inputs(np.column_stack([gx.ravel(), gy.ravel()])))
    p1 = proba[:, 1] if proba.shape[1] == 2 else proba.argmax(axis=1) / max(1, proba.shape[1] - 1)
    return gx, gy, p1.reshape(gx.shape)


def decision_boundary(model, dataset) -> bytes:
    """The network's class-1 probability over the plane, with the training points (2-D raw data,
    whatever input features the network was given)."""
    X, y = dataset.raw[0], dataset.y_train
    gx, gy, p1 = boundary_grid(model, dataset)
    fig = Figure(figsize=(4.6, 4), layout="constrained")
    ax = fig.add_subplot()
    cs = ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 21), cmap="RdBu", alpha=0.75)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu", edgecolors="k", linewidths=0.3, s=10, vmin=0, vmax=1)
    fig.colorbar(cs, ax=ax, label="P(class 1)")
    ax.set_xlabel(_label(dataset.raw_names[0]))
    ax.set_ylabel(_label(dataset.raw_names[1]))
    inputs = "" if dataset.features == ("linear",) else f"\ninputs: {'+'.join(dataset.features)}"
    ax.set_title(f"Decision boundary of the best network{inputs}")
    return _png(fig)
