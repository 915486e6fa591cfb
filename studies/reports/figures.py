"""The report's figures, drawn with matplotlib's object API (no global pyplot state) as PNG bytes."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
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
    "parallel_coordinates",
    "histories",
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


def _known(t: FrozenTrial, index: int) -> float:
    """The value of a trial picked for having one (see :func:`_value`)."""
    v = _value(t, index)
    assert v is not None
    return v


def _png(fig: Figure, *, tight: bool = True) -> bytes:
    """``tight=False``: a figure whose margins are set by hand is drawn once (a layout engine or
    a "tight" box draws it twice, which matters for thousands of lines)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # A figure laid out by its layout engine needs no second, "tight" pass (it doubles the cost).
    tight = tight and fig.get_layout_engine() is None
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def _log(ax, which: str) -> None:  # noqa: ANN001
    """A log scale on axis ``which`` ("x" or "y") with its major ticks only: minor ticks over
    many decades cost more to lay out than the rest of the figure, and say little."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.xaxis if which == "x" else ax.yaxis).set_minor_locator(NullLocator())


def curves(trials: list[FrozenTrial], title: str) -> bytes:
    """Train (dashed) and validation (solid) cost per epoch of each trial; a trial with repeated
    seeds shows its seeds' mean, and each seed's validation cost as a thin line."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, t in enumerate(trials):
        run = t.user_attrs.get("run", {})
        c = run.get("curves", {})
        color = f"C{i % 10}"
        label = _label(run.get("label", f"t{t.number}"))
        seeds = (t.user_attrs.get("repeats") or {}).get("curves") or []
        if c.get("val_cost"):
            epochs = np.arange(1, len(c["val_cost"]) + 1)
            mean = f", mean of {len(seeds)} seeds" if seeds else ""
            ax.plot(epochs, c["val_cost"], color=color, label=f"{label} (validation{mean})")
            ax.plot(epochs, c["train_cost"], color=color, linestyle="--", alpha=0.7)
        for sc in seeds:  # the spread over the seeds: one thin line each
            if sc.get("val_cost"):
                ax.plot(np.arange(1, len(sc["val_cost"]) + 1), sc["val_cost"], color=color, lw=0.6, alpha=0.35)
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
        ys = [_known(t, index) for t in done]
        best = np.minimum.accumulate(ys) if direction == "minimize" else np.maximum.accumulate(ys)
        ax.scatter(xs, ys, s=10, alpha=0.6, label="trial")
        ax.step(xs, best, where="post", color="C3", label="best so far")
        if direction == "minimize" and min(ys) > 0 and max(ys) / min(ys) > 10:  # within a decade: no tick
            _log(ax, "y")
        ax.legend(fontsize=8)
    ax.set_xlabel("trial number")
    ax.set_ylabel(objective)
    ax.set_title("Optimization history")
    return _png(fig)


def histories(series: list[tuple[str, list[tuple[int, float]]]], direction: str, objective: str) -> bytes:
    """Several sweeps' optimization histories overlaid: each one's complete values (faint) and
    best so far (a step line), by trial number; ``series``: (label, [(trial number, value)])."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    every = [v for _, points in series for _, v in points]
    for k, (label, points) in enumerate(series):
        if not points:
            continue
        xs = [n for n, _ in points]
        ys = np.array([v for _, v in points])
        best = np.minimum.accumulate(ys) if direction == "minimize" else np.maximum.accumulate(ys)
        color, style = f"C{k % 10}", ("-", "--", ":", "-.")[k % 4]  # two sweeps alike stay apart
        ax.scatter(xs, ys, s=8, alpha=0.25, color=color)
        ax.step(xs, best, where="post", color=color, linestyle=style, linewidth=1.6, label=_label(label))
    # A log axis only over more than a decade: within one it would have no tick to read.
    if every and direction == "minimize" and min(every) > 0 and max(every) / min(every) > 10:
        _log(ax, "y")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no complete trial yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("trial number")
    ax.set_ylabel(_label(objective))
    ax.set_title("Optimization histories: best so far (line), each trial (dots)")
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
        best = sorted((t for t in done if t.number in on), key=lambda t: (_known(t, i), _known(t, j)))
        if rest:
            ax.scatter(
                [_known(t, i) for t in rest],
                [_known(t, j) for t in rest],
                s=12,
                alpha=0.45,
                color=COLORS["complete"],
                label="trial",
            )
        if best:
            xs, ys = [_known(t, i) for t in best], [_known(t, j) for t in best]
            if len(objectives) == 2:  # the front of two objectives is a staircase
                ax.step(
                    xs, ys, where="post" if directions[j] == "minimize" else "pre", color="C3", alpha=0.5, linewidth=1
                )
            ax.scatter(xs, ys, s=30, color="C3", edgecolors="k", linewidths=0.4, label="Pareto front", zorder=3)
            if len(best) <= 12:
                for t, x, y in zip(best, xs, ys):
                    ax.annotate(f"t{t.number}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        _scale(ax, "x", [_known(t, i) for t in done])
        _scale(ax, "y", [_known(t, j) for t in done])
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


_GREY = "#9a9a9a"
_TOP_SHARE = 0.10  # the best tenth of the complete trials is highlighted


@dataclass(frozen=True)
class _Axis:
    """One vertical axis: how a value maps to [0, 1], and its ticks (position, label)."""

    name: str
    log: bool
    low: float
    high: float
    choices: tuple[object, ...] = ()

    def place(self, value: object) -> float:
        if self.choices:
            labels = [str(c) for c in self.choices]
            if str(value) not in labels:
                return math.nan
            return labels.index(str(value)) / max(1, len(labels) - 1) if len(labels) > 1 else 0.5
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (self.log and value <= 0):
            return math.nan
        lo, hi, v = (
            (math.log10(self.low), math.log10(self.high), math.log10(value))
            if self.log
            else (
                self.low,
                self.high,
                float(value),
            )
        )
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    def ticks(self) -> list[tuple[float, str]]:
        if self.choices:
            shown = self.choices if len(self.choices) <= 12 else self.choices[:: math.ceil(len(self.choices) / 12)]
            return [(self.place(c), _label(str(c))) for c in shown]
        if self.low == self.high:
            return [(0.5, f"{self.low:.3g}")]
        mid = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
        return [(self.place(v), f"{v:.3g}") for v in (self.low, mid, self.high)]


def _param_axis(name: str, trials: list[FrozenTrial]) -> _Axis:
    """A parameter's axis from its distribution (the searched range, log or not, or the choices)."""
    dist = next((t.distributions[name] for t in trials if name in t.distributions), None)
    if isinstance(dist, CategoricalDistribution):
        return _Axis(name, False, 0.0, 0.0, tuple(dist.choices))
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        return _Axis(name, bool(dist.log), float(dist.low), float(dist.high))
    seen = [t.params[name] for t in trials if name in t.params]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen) and seen:
        return _Axis(name, False, float(min(seen)), float(max(seen)))
    return _Axis(name, False, 0.0, 0.0, tuple(sorted({str(v) for v in seen})))


def _lines(rows: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Polylines over the axes (x = axis index), broken where a value is missing (a
    conditional parameter a trial did not have); and the row each piece belongs to."""
    segments, owners = [], []
    xs = np.arange(rows.shape[1], dtype=float)
    for i, row in enumerate(rows):
        ok = np.isfinite(row)
        if ok.all():
            segments.append(np.column_stack([xs, row]))
            owners.append(i)
            continue
        for j in range(rows.shape[1] - 1):
            if ok[j] and ok[j + 1]:
                segments.append(np.array([[xs[j], row[j]], [xs[j + 1], row[j + 1]]]))
                owners.append(i)
    return segments, owners


def _placed(group: list[FrozenTrial], axes: list[_Axis], values: list[float | None]) -> np.ndarray:
    """Each trial's position on each axis (the last: the objective's, ``values``), in [0, 1];
    NaN where a trial has no value."""
    out = np.full((len(group), len(axes)), np.nan)
    for i, t in enumerate(group):
        out[i, :-1] = [a.place(t.params[a.name]) if a.name in t.params else np.nan for a in axes[:-1]]
        if values[i] is not None:
            out[i, -1] = axes[-1].place(values[i])
    # Lines that share a choice would draw over each other: a fixed spread (same picture every time).
    spread = np.random.default_rng(0).uniform(-0.02, 0.02, out.shape)
    return out + spread * np.array([bool(a.choices) for a in axes], dtype=float)


def _draw_axes(ax, axes: list[_Axis]) -> None:  # noqa: ANN001
    """The vertical axes, their ticks' labels, and their names below."""
    for k, a in enumerate(axes):
        ax.axvline(k, color="k", linewidth=0.8)
        for y, text in a.ticks():
            box = {"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5}
            ax.text(k + 0.03, y, text, fontsize=6.5, va="center", ha="left", bbox=box)
    ax.set_xlim(-0.15, len(axes) - 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    names = [_label(a.name) + (" (log)" if a.log else "") for a in axes]
    ax.set_xticks(range(len(axes)), names, fontsize=7, rotation=20, ha="right")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def parallel_coordinates(
    trials: list[FrozenTrial], params: list[str], objective: str, direction: str, *, index: int = 0
) -> bytes:
    """One line per finished trial over the searched ``params`` and the objective (number
    ``index``): log axes for log ranges, categorical axes labelled with their choices; the
    pruned, diverged and failed trials in grey beneath (they have no value: their lines stop at
    the last parameter), the complete ones coloured by value, the best tenth highlighted.

    Readable at thousands of trials: one ``LineCollection`` per group, and transparency that
    falls as the number of lines grows.
    """
    finished = [t for t in trials if outcome_of(t) in ("complete", "pruned", "diverged", "failed")]
    done = [t for t in finished if _value(t, index) is not None]
    values = np.array([_value(t, index) for t in done], dtype=float)
    axes = [_param_axis(p, finished) for p in params]
    if len(values):
        lo, hi = float(values.min()), float(values.max())
        log = lo > 0 and hi / lo > 100
    else:
        lo, hi, log = 0.0, 1.0, False
    axes.append(_Axis(objective, log, lo, hi))
    width = max(6.0, 1.3 * len(axes) + 1.5)
    fig = Figure(figsize=(width, 4.2))
    # Margins by hand: drawn once, not twice as a layout engine would (see _png).
    fig.subplots_adjust(left=0.6 / width, right=1 - 0.2 / width, bottom=0.2, top=0.9)
    ax = fig.add_subplot()

    def rows(group: list[FrozenTrial], with_value: bool) -> np.ndarray:
        return _placed(group, axes, [_value(t, index) if with_value else None for t in group])

    alpha = float(np.clip(40.0 / max(1, len(finished)), 0.05, 0.6))
    others = [t for t in finished if _value(t, index) is None]
    if others:
        ax.add_collection(LineCollection(_lines(rows(others, False))[0], colors=_GREY, alpha=alpha, linewidths=0.8))
    order = np.argsort(values if direction == "minimize" else -values, kind="stable")
    n_top = max(1, math.ceil(_TOP_SHARE * len(done))) if len(done) else 0
    top = set(order[:n_top].tolist())
    rest = [i for i in range(len(done)) if i not in top]
    placed = rows(done, True)
    if rest:
        segments, owners = _lines(placed[rest])
        rest_lines = LineCollection(segments, cmap="viridis_r" if direction == "minimize" else "viridis", alpha=alpha)
        rest_lines.set_array(placed[rest][owners, -1] if owners else np.zeros(0))
        rest_lines.set_clim(0.0, 1.0)
        rest_lines.set_linewidth(0.8)
        ax.add_collection(rest_lines)
    if top:
        ax.add_collection(
            LineCollection(
                _lines(placed[sorted(top)])[0],
                colors="C3",
                alpha=float(np.clip(15.0 / n_top, 0.15, 0.9)),
                linewidths=1.6,
            )
        )
    _draw_axes(ax, axes)
    best = "lowest" if direction == "minimize" else "highest"
    ax.set_title(
        f"Parallel coordinates: {len(done)} complete trial(s), the {best} {n_top} in red; "
        f"{len(others)} pruned, diverged or failed in grey",
        fontsize=8,
    )
    return _png(fig, tight=False)
