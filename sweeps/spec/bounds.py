"""What bounds a sweep: ``budget``, ``trial_budget`` and ``stop``; the ``stack`` a worker
trains at once and the ``stack_shape``; the ``[constraints]`` on a trial's measures."""

from __future__ import annotations

import math

from studies.errors import SweepsError
from studies.sweep import CONSTRAINTS, Constraint, DatasetRef, SearchSpace, StackShape, Stop, parse_duration
from sweeps.limits import MAX_STACK
from sweeps.spec.values import Where, read_int, unknown_key

STOP_KEYS = ("min_delta", "patience")


def read_limits(where: Where, data: dict, objectives: tuple[str, ...]) -> dict:
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
            raise unknown_key(where, key, STOP_KEYS, prefix="stop.")
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
    limits["stop"] = Stop(read_int(where, "stop.patience", stop["patience"], 1), float(delta))
    return limits


def check_stack(where: Where, key: str, stack: int) -> None:
    if stack > MAX_STACK:
        raise where.error(
            f"'{key}' must be at most {MAX_STACK} (trials a worker trains at once, each a running trial "
            f"in the storage; the gain stops at about 64), but got {stack}."
        )


def read_stack_shape(where: Where, value: object, space: SearchSpace, loaded: list) -> StackShape | None:
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
        widths=tuple(read_int(where, f"stack_shape.widths[{i}]", w, 1) for i, w in enumerate(widths)),
        inputs=read_int(where, "stack_shape.inputs", value["inputs"], 1),
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


def read_constraints(where: Where, value: object) -> tuple[Constraint, ...]:
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
                raise unknown_key(where, k, ["max", "min"], prefix=f"{key}.")
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


def check_constraint_tasks(where: Where, constraints: tuple[Constraint, ...], refs: tuple[DatasetRef, ...]) -> None:
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
