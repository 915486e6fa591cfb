"""The sweep file: TOML read with tomllib, validated completely before anything is written.

Every problem is one ``ValueError`` naming the file, the key, the bad value and what is
allowed, e.g. ``demo.toml: 'search.activation' must be a list of ['linear', 'relu',
'sigmoid', 'tanh'], but got 'gelu'.``
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from engine import ACTIVATIONS, DATASETS, FEATURES, OPTIMIZERS, check_features, dataset_name
from engine.checks import MAX_EPOCHS, RULES, Interval
from studies.errors import SweepsError
from studies.search import MULTI_OBJECTIVE_SAMPLERS, check_plugin
from studies.storage import redact, storage_kind
from studies.sweep import (
    ALL,
    CONSTRAINTS,
    CURVE_OBJECTIVES,
    DEFAULT_CURVE_POINTS,
    DEFAULT_STACK,
    INT_SETTINGS,
    MAX_REPEATS,
    OBJECTIVES,
    REGULARIZATIONS,
    SETTINGS,
    Choice,
    Constraint,
    DatasetRef,
    PluginSpec,
    Range,
    SearchSpace,
    StackShape,
    Stop,
    Subsets,
    SweepConfig,
    WarmStart,
    parse_duration,
)
from sweeps.limits import JOBS_PER_CPU, MAX_STACK, check_fits, check_grid, check_shape_fits, cpu_count, max_jobs
from sweeps.presets import preset_text, presets

if TYPE_CHECKING:
    from optuna.distributions import CategoricalChoiceType

    from engine import Dataset

__all__ = ["load_spec", "spec_from_dict", "presets", "apply_overrides", "describe_dataset", "loading_once"]

TOP_KEYS = (
    "batch",  # the old name of "stack": stored sweeps and old files keep working
    "budget",
    "constraints",
    "datasets",
    "divergence_factor",
    "jobs",
    "mlflow",
    "name",
    "objective",
    "pruner",
    "repeats",
    "report_every",
    "sampler",
    "search",
    "seed",
    "stack",
    "stack_shape",
    "stop",
    "train",
    "trial_budget",
    "trials",
    "warm_start",
)
MLFLOW_KEYS = ("curve_points",)
WARM_START_KEYS = ("storage", "sweep", "top")
STOP_KEYS = ("min_delta", "patience")
NAME_MAX = 100  # characters in a sweep's or a dataset's name
NAME_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}$")


def shown_name(value: object) -> str:
    """A name as a message quotes it: whole when it could be one, else its start and its length
    (a name of 100,000 characters is not repeated)."""
    text = repr(value)
    if isinstance(value, str) and len(value) > NAME_MAX:
        return f"{value[:40]!r}... ({len(value)} characters, at most {NAME_MAX})"
    return text if len(text) <= NAME_MAX + 2 else f"{text[:40]}... (a {type(value).__name__})"


CHOICES: dict[str, tuple[str, ...] | tuple[bool, ...]] = {
    "activation": tuple(sorted(ACTIVATIONS)),
    "optimizer": tuple(sorted(OPTIMIZERS)),
    "regularization": REGULARIZATIONS,
    "nesterov": (False, True),
}
# The engine's rules for the numeric settings, with the sweep's own limit on epochs.
SETTING_RULES = {**RULES, "epochs": Interval(True, 1, MAX_EPOCHS)}
DATASET_OPTIONS = ("label", "n_samples", "noise", "task", "test_fraction", "val_fraction")


class _Where:
    """The origin of the values, for messages: a file name or a preset."""

    def __init__(self, origin: str, *, stored: bool = False) -> None:
        self.origin = origin
        self.stored = stored  # a sweep already in a storage: rules added since it was stored are not applied

    def error(self, message: str) -> ValueError:
        return SweepsError(f"{self.origin}: {message}")


def _read_source(source: str) -> tuple[str, str]:
    """(text, origin) of a sweep file path or a preset name."""
    path = Path(source)
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SweepsError(f"{source}: cannot read the file ({exc.strerror}).") from None
        if b"\x00" in raw:
            raise SweepsError(f"{source}: not a text file; a sweep file is TOML text.")
        try:
            return raw.decode("utf-8"), source
        except UnicodeDecodeError:
            raise SweepsError(f"{source}: not a UTF-8 text file; a sweep file is TOML text.") from None
    if path.is_dir():
        raise SweepsError(f"{source}: is a folder, not a sweep file.")
    if source in presets():
        return preset_text(source), f"preset {source!r}"
    raise SweepsError(f"no sweep file or preset named {source!r}; the presets are {sorted(presets())}.")


def load_spec(source: str, *, stored: bool = False) -> SweepConfig:
    """Read and validate a sweep file (or a built-in preset) into a :class:`SweepConfig`;
    ``stored``: by the rules of a sweep already stored (see :func:`spec_from_dict`)."""
    text, origin = _read_source(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepsError(f"{origin}: TOML syntax error: {exc}.") from None
    return spec_from_dict(data, origin=origin, stored=stored)


def _unknown(where: _Where, key: str, allowed: tuple[str, ...] | list[str], prefix: str = "") -> ValueError:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    return where.error(f"unknown key {prefix + key!r}{hint}; allowed keys are {sorted(allowed)}.")


def _int(where: _Where, key: str, value: object, low: int) -> int:
    try:
        return int(Interval(True, low).check(key, value))
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _families(where: _Where, key: str, value: object) -> tuple[str, ...]:
    """Check a list of feature families; returns them in the columns' order."""
    try:
        return check_features(value, key=key)  # type: ignore[arg-type]  # it checks any value
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _setting_value(where: _Where, key: str, name: str, value: object) -> CategoricalChoiceType | list[str]:
    """Check one value of a training setting (fixed, or an element of a list)."""
    if name == "features":
        return list(_families(where, key, value))
    return _choice_value(where, key, name, value)


def _choice_value(where: _Where, key: str, name: str, value: object) -> CategoricalChoiceType:
    """Check one value of a training setting other than the features."""
    if name in CHOICES:
        allowed = CHOICES[name]
        if name == "nesterov":
            if not isinstance(value, bool):
                raise where.error(f"{key!r} must be true or false, but got {value!r}.")
            return value
        if value not in allowed or not isinstance(value, str):
            raise where.error(f"{key!r} must be one of {sorted(allowed)}, but got {value!r}.")
        return value
    return _number_value(where, key, name, value)


def _number_value(where: _Where, key: str, name: str, value: object) -> float | int:
    """Check one value of a numeric training setting."""
    try:
        return SETTING_RULES[name].check(key, value)
    except ValueError as exc:
        raise where.error(str(exc)) from None


def _searched_features(where: _Where, value: object) -> Subsets:
    key = "search.features"
    if not isinstance(value, dict):
        raise where.error(
            f"{key!r} must be a table {{ subsets = {list(FEATURES)} }} (one yes/no parameter per "
            f"family), but got {value!r}; to fix the families, give the list as 'train.features'."
        )
    for k in value:
        if k != "subsets":
            raise _unknown(where, k, ["subsets"], prefix=f"{key}.")
    if "subsets" not in value:
        raise where.error(f"{key!r} needs 'subsets', the families searched, such as {{ subsets = {list(FEATURES)} }}.")
    return Subsets(_families(where, f"{key}.subsets", value["subsets"]))


def _searched(where: _Where, name: str, value: object) -> Range | Choice | Subsets:
    key = f"search.{name}"
    if name == "features":
        return _searched_features(where, value)
    if isinstance(value, list):
        if not value:
            raise where.error(f"{key!r} must be a non-empty list of choices, but got [].")
        return Choice(tuple(_choice_value(where, key, name, v) for v in value))  # not the features: above
    if not isinstance(value, dict):
        raise where.error(
            f"{key!r} must be a list of choices or a range table {{ low = .., high = .. }}, but got {value!r}."
        )
    if name in CHOICES:
        raise where.error(f"{key!r} must be a list of choices such as {list(CHOICES[name])}, not a range.")
    for k in value:
        if k not in ("high", "log", "low", "step"):
            raise _unknown(where, k, ["high", "log", "low", "step"], prefix=f"{key}.")
    for k in ("low", "high"):
        if k not in value:
            raise where.error(f"{key!r} needs '{k}' (a range is {{ low = .., high = .. }}).")
    low = _number_value(where, f"{key}.low", name, value["low"])  # a choice's name was refused above
    high = _number_value(where, f"{key}.high", name, value["high"])
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise where.error(f"'{key}.log' must be true or false, but got {log!r}.")
    step = value.get("step")
    if low > high:
        raise where.error(f"{key!r}: `low <= high` must hold, but got (low={low!r}, high={high!r}).")
    if log and low <= 0:
        raise where.error(f"{key!r}: a log range needs `low > 0`, but got low={low!r}.")
    if step is not None:
        if log:
            raise where.error(f"{key!r}: 'step' and 'log' cannot be used together.")
        integer = name in INT_SETTINGS
        if isinstance(step, bool) or not isinstance(step, int if integer else (int, float)) or not step > 0:
            kind = "an integer" if integer else "a number"
            raise where.error(f"'{key}.step' must be {kind} > 0, but got {step!r}.")
        if integer:  # exact: a float's rounding tolerance would take a step off by one in a span over 1e9
            divides, top = (high - low) % step == 0, low + (high - low) // step * step
        else:
            span = (high - low) / step
            divides, top = abs(span - round(span)) <= 1e-9 * max(1.0, span), low + math.floor(span + 1e-9) * step
        if not where.stored and not divides:
            shown = str if integer else (lambda x: f"{x:g}")
            raise where.error(
                f"'{key}.step' must divide high - low = {shown(high - low)}, but got {step!r} "
                f"(Optuna would search only up to {shown(top)}); change 'step' or 'high'."
            )
    return Range(
        low=low,
        high=high,
        log=log,
        step=None if step is None else float(step) if name not in INT_SETTINGS else step,
        integer=name in INT_SETTINGS,
    )


def _plugin(where: _Where, kind: str, value: object, default: str) -> PluginSpec:
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


_reused: contextvars.ContextVar[dict | None] = contextvars.ContextVar("reused_datasets", default=None)


@contextlib.contextmanager
def loading_once() -> Iterator[None]:
    """While inside, a sweep validated twice (its file, then with the command line's overrides)
    loads each dataset once: a large file is read once."""
    token = _reused.set({})
    try:
        yield
    finally:
        _reused.reset(token)


def _names(names: tuple[str, ...], most: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return f"[{shown}]" if len(names) <= most else f"[{shown}, ... {len(names) - most} more]"


def describe_dataset(ds: Dataset) -> str:
    """A dataset as the run will see it: rows, the feature columns, the label and the task."""
    train, val, test = len(ds.y_train), len(ds.y_val), len(ds.y_test)
    label = f"column {ds.label!r}" if ds.label else "the set's own"
    if ds.task == "regression":
        task = "regression"
    else:
        task = f"{ds.task} ({ds.n_classes} classes: {_names(ds.class_names, 5)[1:-1]})"
    return (
        f"dataset {ds.name!r}: {train + val + test} rows ({train} train, {val} validation, {test} test); "
        f"{len(ds.raw_names)} feature column(s) {_names(ds.raw_names)}; label {label}; task {task}"
    )


def _datasets(where: _Where, value: object, seed: int) -> tuple[tuple[DatasetRef, ...], list]:
    if not isinstance(value, list) or not value:
        raise where.error(f"'datasets' must be a non-empty list of dataset names or paths, but got {value!r}.")
    from sweeps.display import file_progress  # a line that moves while a large file loads

    refs, loaded, seen = [], [], {}
    for i, entry in enumerate(value):
        key = f"datasets[{i}]"
        if isinstance(entry, dict):
            if "name" not in entry or not isinstance(entry["name"], str):
                raise where.error(f"{key!r} must have a 'name' (a dataset name or path), but got {entry!r}.")
            for k in entry:
                if k != "name" and k not in DATASET_OPTIONS:
                    raise _unknown(where, k, list(DATASET_OPTIONS), prefix=f"{key}.")
            source, options = entry["name"], tuple(sorted((k, v) for k, v in entry.items() if k != "name"))
        elif isinstance(entry, str):
            source, options = entry, ()
        else:
            raise where.error(f"{key!r} must be a dataset name, a path, or a table with 'name', but got {entry!r}.")
        if not source.strip():
            raise where.error(
                f"{key!r} must be one of {sorted(DATASETS)} or a path to a .csv or .npz file, but got ''."
            )
        ref = DatasetRef(source=source, name=dataset_name(source), options=options)
        if ref.name in seen:
            raise where.error(f"{key!r}: dataset name {ref.name!r} appears twice (studies are named by it).")
        if not NAME_RE.match(ref.name):
            raise where.error(
                f"{key!r}: a dataset's name must be a plain name of at most {NAME_MAX} characters (letters, "
                f"digits, '-', '_', '.'), but got {shown_name(ref.name)}."
            )
        seen[ref.name] = i
        reused = _reused.get()
        try:
            if reused is not None and (ref, seed) in reused:
                ds = reused[ref, seed]
            else:
                with file_progress():
                    ds = ref.load(seed=seed)
        except ValueError as exc:
            raise where.error(f"{key!r}: {exc}") from None
        if reused is not None:
            reused[ref, seed] = ds
        loaded.append(ds)
        # The signature: checked later without a reload.
        refs.append(dataclasses.replace(ref, signature=ds.signature, described=describe_dataset(ds)))
    return tuple(refs), loaded


def _check_features_fit(where: _Where, space: SearchSpace, refs: tuple[DatasetRef, ...], loaded: list) -> None:
    """Every family the sweep may use must apply to every dataset (``products`` to at most
    ``engine.MAX_PRODUCT_FEATURES`` raw features)."""
    searched = space.searched.get("features")
    key, families = (
        ("search.features.subsets", searched.families)
        if isinstance(searched, Subsets)
        else ("train.features", tuple(space.fixed.get("features", ("linear",))))
    )
    for ref, ds in zip(refs, loaded):
        try:
            check_features(families, n_features=ds.n_raw_features, dataset=ref.name, key=key)
        except ValueError as exc:
            raise where.error(str(exc)) from None


def _objective(where: _Where, value: object) -> str | tuple[str, ...]:
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
        return _objective(where, value[0])
    if not any(name in CURVE_OBJECTIVES for name in value):
        raise where.error(
            f"'objective' = {value!r} needs one of {list(CURVE_OBJECTIVES)} among its objectives "
            f"(else the smallest, fastest network wins whatever it learns)."
        )
    return tuple(value)


def _warm_start(where: _Where, value: object, name: str) -> WarmStart | None:
    """``warm_start = { sweep = "NAME", top = 5, storage = "URL" }`` (top and storage optional)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.error(
            f"'warm_start' must be a table such as {{ sweep = \"NAME\", top = 5 }}, but got {redact(str(value))!r}."
        )
    for key in value:
        if key not in WARM_START_KEYS:
            raise _unknown(where, key, WARM_START_KEYS, prefix="warm_start.")
    sweep = value.get("sweep")
    if not isinstance(sweep, str) or not NAME_RE.match(sweep):
        raise where.error(
            f"'warm_start.sweep' must be the name of another sweep (at most {NAME_MAX} letters, digits, '-', '_', "
            f"'.'), but got {shown_name(sweep)}."
        )
    top = _int(where, "warm_start.top", value.get("top", 5), 1)
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


def _mlflow(where: _Where, value: object) -> int | str:
    """``[mlflow]``: ``curve_points``, the points per curve MLflow gets (or ``"all"``)."""
    if value is None:
        return DEFAULT_CURVE_POINTS
    if not isinstance(value, dict):
        raise where.error(
            f"'mlflow' must be a table such as [mlflow] curve_points = {DEFAULT_CURVE_POINTS}, but got {value!r}."
        )
    for key in value:
        if key not in MLFLOW_KEYS:
            raise _unknown(where, key, MLFLOW_KEYS, prefix="mlflow.")
    points = value.get("curve_points", DEFAULT_CURVE_POINTS)
    if points == ALL:
        return ALL
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_EPOCHS:
        raise where.error(
            f"'mlflow.curve_points' must be \"all\" or an integer from 1 to {MAX_EPOCHS} (points per "
            f"curve in MLflow; the storage keeps every epoch), but got {points!r}."
        )
    return points


def _check_multi(where: _Where, objectives: tuple[str, ...], sampler: PluginSpec, pruner: PluginSpec) -> None:
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


def _limits(where: _Where, data: dict, objectives: tuple[str, ...]) -> dict:
    """``budget`` and ``trial_budget`` (durations), and ``stop = { patience = N, min_delta = X }``."""
    limits: dict[str, object] = {}
    for key in ("budget", "trial_budget"):
        if key in data:
            try:
                limits[key] = parse_duration(key, data[key])
            except SweepsError as exc:
                raise where.error(str(exc)) from None
    stop = data.get("stop")
    if stop is None:
        return limits
    if not isinstance(stop, dict):
        raise where.error(f"'stop' must be a table such as {{ patience = 30, min_delta = 0.0 }}, but got {stop!r}.")
    for key in stop:
        if key not in STOP_KEYS:
            raise _unknown(where, key, STOP_KEYS, prefix="stop.")
    if "patience" not in stop:
        raise where.error("'stop.patience' is needed: the finished trials without improvement that stop a study.")
    delta = stop.get("min_delta", 0.0)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta < math.inf:
        raise where.error(f"'stop.min_delta' must be a finite number >= 0, but got {delta!r}.")
    if len(objectives) > 1:
        raise where.error(
            f"'stop' needs one objective (a best value to improve), but 'objective' lists {len(objectives)}; "
            "leave 'stop' out, or use 'budget' to bound the sweep."
        )
    limits["stop"] = Stop(_int(where, "stop.patience", stop["patience"], 1), float(delta))
    return limits


def spec_from_dict(data: dict, *, origin: str = "sweep", stored: bool = False) -> SweepConfig:
    """Validate the parsed sweep file; raises :class:`SweepsError` with one clear message.

    ``stored``: the sweep as a storage holds it (``sweep worker``), validated by the rules it
    was stored under: a rule added later (a ``step`` dividing its range) never strands it."""
    where = _Where(origin, stored=stored)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(where, key, TOP_KEYS)
    top = _top_level(where, data)
    objective = _objective(where, data.get("objective", "val_cost"))
    objectives = (objective,) if isinstance(objective, str) else objective
    space = _space(where, data)
    sampler, pruner = _plugins(where, data, objectives, space, top["trials"], jobs=top["jobs"])
    repeats = _int(where, "repeats", data.get("repeats", 1), 1)
    if repeats > MAX_REPEATS:
        raise where.error(
            f"'repeats' must be an integer from 1 to {MAX_REPEATS} (seeds per configuration), but got {repeats}."
        )
    constraints = _constraints(where, data.get("constraints"))
    refs, loaded = _checked_datasets(
        where, data, space, objectives, seed=top["seed"], jobs=top["jobs"], stack=top["stack"] * repeats
    )
    shape = _stack_shape(where, data.get("stack_shape"), space, loaded)
    if shape is not None:
        try:
            check_shape_fits(
                space, loaded, jobs=top["jobs"], stack=top["stack"] * repeats, widths=shape.widths, inputs=shape.inputs
            )
        except SweepsError as exc:
            raise where.error(str(exc)) from None
    _check_constraint_tasks(where, constraints, refs)
    return SweepConfig(
        datasets=refs,
        space=space,
        objective=objective,
        sampler=sampler,
        pruner=pruner,
        warm_start=_warm_start(where, data.get("warm_start"), top["name"]),
        curve_points=_mlflow(where, data.get("mlflow")),
        stack_shape=shape,
        repeats=repeats,
        constraints=constraints,
        **_limits(where, data, objectives),
        **top,
    )


def _stack_shape(where: _Where, value: object, space: SearchSpace, loaded: list) -> StackShape | None:
    """``stack_shape = { widths = [8, 8], inputs = 7 }``: every stack's hidden widths and input
    columns (as 'sweep best' writes them), at least what every network of the space needs."""
    if value is None:
        return None
    example = "{ widths = [8, 8], inputs = 2 }"
    if not isinstance(value, dict) or set(value) != {"widths", "inputs"}:
        raise where.error(f"'stack_shape' must be a table {example}, but got {value!r}.")
    widths = value["widths"]
    if not isinstance(widths, list) or not widths:
        raise where.error(f"'stack_shape.widths' must be a non-empty list of widths >= 1, but got {widths!r}.")
    shape = StackShape(
        widths=tuple(_int(where, f"stack_shape.widths[{i}]", w, 1) for i, w in enumerate(widths)),
        inputs=_int(where, "stack_shape.inputs", value["inputs"], 1),
    )
    for ds in loaded:
        inputs = space.input_width(ds.n_raw_features)
        layers, width = space.stack_shape(max(inputs, shape.inputs))
        if shape.inputs < inputs or len(shape.widths) < layers or min(shape.widths) < width:
            raise where.error(
                f"'stack_shape' = {shape.to_dict()} is too small for the networks of this sweep on dataset "
                f"{ds.name!r}: they need {layers} layer(s) of at least {width} units and {inputs} inputs."
            )
    return shape


def _constraints(where: _Where, value: object) -> tuple[Constraint, ...]:
    """``[constraints]``: ``name = { min = .., max = .. }`` for names of :data:`CONSTRAINTS`."""
    if value is None:
        return ()
    example = "[constraints] parameters = { max = 200 }"
    if not isinstance(value, dict):
        raise where.error(f"'constraints' must be a table such as {example}, but got {value!r}.")
    out = []
    for name, bounds in sorted(value.items()):
        key = f"constraints.{name}"
        if name not in CONSTRAINTS:
            raise where.error(f"{key!r}: the constraint's name must be one of {sorted(CONSTRAINTS)}, but got {name!r}.")
        if not isinstance(bounds, dict) or not bounds:
            raise where.error(f"{key!r} must be a table {{ min = .., max = .. }} (one or both), but got {bounds!r}.")
        for k in bounds:
            if k not in ("max", "min"):
                raise _unknown(where, k, ["max", "min"], prefix=f"{key}.")
        for k, v in bounds.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise where.error(f"'{key}.{k}' must be a finite number, but got {v!r}.")
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and high is not None and low > high:
            raise where.error(f"{key!r}: `min <= max` must hold, but got (min={low!r}, max={high!r}).")
        out.append(
            Constraint(name, low=None if low is None else float(low), high=None if high is None else float(high))
        )
    return tuple(out)


def _check_constraint_tasks(where: _Where, constraints: tuple[Constraint, ...], refs: tuple[DatasetRef, ...]) -> None:
    """``val_accuracy`` bounds classification sets only, ``val_r2`` regression sets only."""
    for c in constraints:
        if c.name not in ("val_accuracy", "val_r2"):
            continue
        wanted = "regression" if c.name == "val_r2" else None
        for ref in refs:
            task = (ref.signature or {}).get("task")
            if task is not None and (task == "regression") != (wanted == "regression"):
                kind = "classification" if wanted is None else "regression"
                raise where.error(
                    f"'constraints.{c.name}' needs {kind} datasets, but {ref.name!r} is a {task} set; "
                    f"bound 'val_cost' instead."
                )


def _top_level(where: _Where, data: dict) -> dict:
    """The top-level numbers and the name: ``name``, ``trials``, ``jobs``, ``seed``,
    ``report_every``, ``stack`` (or its old name ``batch``), ``divergence_factor``."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise where.error(
            f"'name' must be a plain name of at most {NAME_MAX} characters (letters, digits, '-', '_', '.', "
            f"starting with a letter or digit), but got {shown_name(name)}."
        )
    jobs = _int(where, "jobs", data["jobs"], 1) if "jobs" in data else 0
    if jobs > max_jobs():
        raise where.error(
            f"'jobs' must be at most {max_jobs()} ({JOBS_PER_CPU} worker processes per CPU; this "
            f"machine has {cpu_count()}), but got {jobs}."
        )
    if "stack" in data and "batch" in data:
        raise where.error("'stack' and 'batch' are the same key ('batch' is its old name); keep 'stack'.")
    stack_key = "batch" if "batch" in data else "stack"
    stack = _int(where, stack_key, data.get(stack_key, DEFAULT_STACK), 1)
    if not where.stored:
        _check_stack(where, stack_key, stack)
    factor = data.get("divergence_factor", 100.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 < factor < math.inf:
        raise where.error(f"'divergence_factor' must be a finite number > 1, but got {factor!r}.")
    return {
        "name": name,
        "trials": _int(where, "trials", data.get("trials", 40), 1),
        "jobs": jobs,
        "seed": _int(where, "seed", data.get("seed", 0), 0),
        "report_every": _int(where, "report_every", data.get("report_every", 1), 1),
        "stack": stack,
        "divergence_factor": float(factor),
    }


def _check_stack(where: _Where, key: str, stack: int) -> None:
    if stack > MAX_STACK:
        raise where.error(
            f"'{key}' must be at most {MAX_STACK} (trials a worker trains at once, each a running trial "
            f"in the storage; the gain stops at about 64), but got {stack}."
        )


def _space(where: _Where, data: dict) -> SearchSpace:
    """``[train]`` (fixed settings) and ``[search]`` (searched ones) as a search space."""
    train, search = data.get("train", {}), data.get("search", {})
    for section, table in (("train", train), ("search", search)):
        if not isinstance(table, dict):
            raise where.error(f"'{section}' must be a table [{section}], but got {table!r}.")
        for key in table:
            if key not in SETTINGS:
                raise _unknown(where, key, list(SETTINGS), prefix=f"{section}.")
    both = sorted(set(train) & set(search))
    if both:
        raise where.error(f"'{both[0]}' is both fixed in [train] and searched in [search]; keep one.")
    fixed = {
        k: _widths(where, train, search)
        if k == "hidden_units" and isinstance(v, list)
        else _setting_value(where, f"train.{k}", k, v)
        for k, v in sorted(train.items())
    }
    searched = {k: _searched(where, k, v) for k, v in sorted(search.items())}
    return SearchSpace(fixed=fixed, searched=searched)


def _widths(where: _Where, train: dict, search: dict) -> list[int]:
    """``train.hidden_units`` as a list: one width per hidden layer (the list sets the depth)."""
    widths = train["hidden_units"]
    if not widths:
        raise where.error(
            "'train.hidden_units' must list one width per hidden layer, but got []; for none set "
            "'train.hidden_layers' = 0."
        )
    checked = [int(_number_value(where, f"train.hidden_units[{i}]", "hidden_units", w)) for i, w in enumerate(widths)]
    if "hidden_layers" in search:
        raise where.error(
            "'train.hidden_units' lists one width per layer, so 'search.hidden_layers' can't search the depth; "
            "give 'train.hidden_units' one width, or leave 'search.hidden_layers' out."
        )
    layers = train.get("hidden_layers", len(checked))
    if layers != len(checked):
        raise where.error(
            f"'train.hidden_layers' = {layers!r}, but 'train.hidden_units' lists {len(checked)} width(s) "
            f"{checked}; they must agree (or leave 'train.hidden_layers' out)."
        )
    return checked


def _plugins(
    where: _Where, data: dict, objectives: tuple[str, ...], space: SearchSpace, trials: int, *, jobs: int
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


def _checked_datasets(
    where: _Where, data: dict, space: SearchSpace, objectives: tuple[str, ...], *, seed: int, jobs: int, stack: int
) -> tuple[tuple[DatasetRef, ...], list]:
    """The datasets, each loaded and checked against the features, the objectives and the
    machine's memory (with the loaded datasets)."""
    refs, loaded = _datasets(where, data.get("datasets"), seed)
    _check_features_fit(where, space, refs, loaded)
    if "val_accuracy" in objectives:
        for ref, ds in zip(refs, loaded):
            if ds.task == "regression":
                raise where.error(
                    f"'objective' = 'val_accuracy' needs classification datasets, but {ref.name!r} is a "
                    "regression set; use 'val_cost'."
                )
    try:
        check_fits(space, loaded, jobs=jobs, stack=stack)
    except ValueError as exc:
        raise where.error(str(exc)) from None
    return refs, loaded


def apply_overrides(
    config: SweepConfig,
    *,
    trials: int | None = None,
    jobs: int | None = None,
    seed: int | None = None,
    stack: int | None = None,
    budget: str | None = None,
    stored: bool = False,
) -> SweepConfig:
    """The command line's ``--trials/--jobs/--seed/--stack/--budget``, validated by the same rules as
    the file (``stored``: a sweep already stored, by the rules it was stored under)."""
    data = config.to_dict()
    for key, value in (("trials", trials), ("jobs", jobs), ("seed", seed), ("stack", stack), ("budget", budget)):
        if value is not None:
            data[key] = value
    if stack is not None and stored:  # a stored sweep keeps its own stack, but a new one is checked now
        _check_stack(_Where("command line"), "stack", stack)
    return spec_from_dict(data, origin="command line", stored=stored)
