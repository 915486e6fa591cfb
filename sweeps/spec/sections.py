"""The sweep file's sections of one job each: ``objective``, ``warm_start``, ``[mlflow]``,
and the ``[sampler]`` and ``[pruner]`` plugins (checked against the objectives)."""

from __future__ import annotations

from engine.checks import MAX_EPOCHS
from studies.search import MULTI_OBJECTIVE_SAMPLERS, check_plugin
from studies.storage import redact, storage_kind
from studies.sweep import (
    ALL,
    CURVE_OBJECTIVES,
    DEFAULT_CURVE_POINTS,
    OBJECTIVES,
    PluginSpec,
    SearchSpace,
    WarmStart,
)
from sweeps.limits import check_grid
from sweeps.spec.values import NAME_MAX, NAME_RE, Where, read_int, shown_name, unknown_key

MLFLOW_KEYS = ("curve_points",)
WARM_START_KEYS = ("storage", "sweep", "top")


def read_objective(where: Where, value: object) -> str | tuple[str, ...]:
    """One objective's name, or a list of two or more distinct names (a one-element list is
    that single objective)."""
    allowed = sorted(OBJECTIVES)
    if isinstance(value, str):
        if value not in OBJECTIVES:
            raise where.error(f"'objective' must be one of {allowed} or a list of several of them, but got {value!r}.")
        if value not in CURVE_OBJECTIVES:
            raise where.error(
                f"'objective' = {value!r} alone is minimized by the smallest or fastest network, "
                f"whatever it learns: a single objective must be one of {list(CURVE_OBJECTIVES)}; "
                f"list it beside one to trade them off, e.g. ['val_cost', {value!r}]."
            )
        return value
    if not isinstance(value, list) or not value:
        raise where.error(f"'objective' must be one of {allowed} or a list of several of them, but got {value!r}.")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in OBJECTIVES:
            raise where.error(f"'objective[{i}]' must be one of {allowed}, but got {name!r}.")
    twice = next((name for name in value if value.count(name) > 1), None)
    if twice is not None:
        raise where.error(f"'objective' lists {twice!r} twice; list each objective once.")
    if len(value) == 1:
        return read_objective(where, value[0])
    if not any(name in CURVE_OBJECTIVES for name in value):
        raise where.error(
            f"'objective' = {value!r} needs one of {list(CURVE_OBJECTIVES)} among its objectives "
            f"(else the smallest, fastest network wins whatever it learns)."
        )
    return tuple(value)


def read_warm_start(where: Where, value: object, name: str) -> WarmStart | None:
    """``warm_start = { sweep = "NAME", top = 5, storage = "URL" }`` (top and storage optional)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.error(
            f"'warm_start' must be a table such as {{ sweep = \"NAME\", top = 5 }}, but got {redact(str(value))!r}."
        )
    for key in value:
        if key not in WARM_START_KEYS:
            raise unknown_key(where, key, WARM_START_KEYS, prefix="warm_start.")
    sweep = value.get("sweep")
    if not isinstance(sweep, str) or not NAME_RE.match(sweep):
        raise where.error(
            f"'warm_start.sweep' must be the name of another sweep (at most {NAME_MAX} letters, digits, '-', '_', "
            f"'.'), but got {shown_name(sweep)}."
        )
    top = read_int(where, "warm_start.top", value.get("top", 5), 1)
    storage = value.get("storage")
    if storage is not None:
        if not isinstance(storage, str) or not storage.strip():
            shown = redact(storage) if isinstance(storage, str) else storage
            raise where.error(f"'warm_start.storage' must be a journal file path or a storage URL, but got {shown!r}.")
        try:
            storage_kind(storage)
        except ValueError as exc:
            raise where.error(f"'warm_start.storage'{getattr(exc, 'rest', ': ' + str(exc))}") from None
    elif sweep == name:
        raise where.error(
            f"'warm_start.sweep' names this sweep itself ({sweep!r}); name another sweep (or give "
            f"'warm_start.storage', the storage of another sweep of this name)."
        )
    return WarmStart(sweep=sweep, top=top, storage=storage)


def read_mlflow(where: Where, value: object) -> int | str:
    """``[mlflow]``: ``curve_points``, the points per curve MLflow gets (or ``"all"``)."""
    if value is None:
        return DEFAULT_CURVE_POINTS
    if not isinstance(value, dict):
        raise where.error(
            f"'mlflow' must be a table such as [mlflow] curve_points = {DEFAULT_CURVE_POINTS}, but got {value!r}."
        )
    for key in value:
        if key not in MLFLOW_KEYS:
            raise unknown_key(where, key, MLFLOW_KEYS, prefix="mlflow.")
    points = value.get("curve_points", DEFAULT_CURVE_POINTS)
    if points == ALL:
        return ALL
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_EPOCHS:
        raise where.error(
            f"'mlflow.curve_points' must be \"all\" or an integer from 1 to {MAX_EPOCHS} (points per "
            f"curve in MLflow; the storage keeps every epoch), but got {points!r}."
        )
    return points


def _plugin(where: Where, kind: str, value: object, default: str) -> PluginSpec:
    if value is None:
        return PluginSpec(default)
    if not isinstance(value, dict):
        raise where.error(f"'{kind}' must be a table such as [{kind}] name = \"{default}\", but got {value!r}.")
    name = value.get("name", default)
    spec = PluginSpec(name, tuple(sorted((k, v) for k, v in value.items() if k != "name")))
    try:
        check_plugin(kind, spec)
    except ValueError as exc:
        raise where.error(str(exc)) from None
    return spec


def read_plugins(
    where: Where, data: dict, objectives: tuple[str, ...], space: SearchSpace, trials: int, *, jobs: int
) -> tuple[PluginSpec, PluginSpec]:
    """The sampler and the pruner, checked against the objectives (and a grid against ``trials``)."""
    sampler = _plugin(where, "sampler", data.get("sampler"), "tpe")
    # Optuna's pruners judge one objective: with several, no pruner unless one is asked for (refused).
    pruner = _plugin(where, "pruner", data.get("pruner"), "median" if len(objectives) == 1 else "none")
    if len(objectives) > 1:
        _check_multi(where, objectives, sampler, pruner)
    if sampler.name == "grid":
        try:
            datasets = data.get("datasets")
            size = check_grid(space, jobs=jobs, studies=len(datasets) if isinstance(datasets, list) else 1)
        except ValueError as exc:
            raise where.error(str(exc)) from None
        if trials > size:
            raise where.error(
                f"sampler 'grid' has {size} grid points, but 'trials' = {trials}; lower 'trials' to at most {size}."
            )
    return sampler, pruner


def _check_multi(where: Where, objectives: tuple[str, ...], sampler: PluginSpec, pruner: PluginSpec) -> None:
    """Several objectives: a sampler that supports them, and no pruner."""
    n = len(objectives)
    if sampler.name not in MULTI_OBJECTIVE_SAMPLERS:
        raise where.error(
            f"sampler {sampler.name!r} supports one objective, but 'objective' lists {n}; with several "
            f"use one of {sorted(MULTI_OBJECTIVE_SAMPLERS)} ('tpe' or 'nsgaii' learn from the trials)."
        )
    if pruner.name != "none":
        raise where.error(
            f"pruner {pruner.name!r}: Optuna's pruners support one objective, but 'objective' lists "
            f'{n}; set [pruner] name = "none" or leave [pruner] out (a diverging trial still stops '
            f"at once)."
        )
