"""``[train]`` and ``[search]``: the fixed and the searched settings, as a search space
(ranges checked by Optuna's rules: ``low <= high``, ``log`` needs ``low > 0``, ``step`` and
``log`` not together)."""

from __future__ import annotations

import math

from engine import FEATURES
from studies.sweep import INT_SETTINGS, SETTINGS, Choice, Range, SearchSpace, Subsets
from sweeps.spec.values import CHOICES, Where, choice_value, number_value, read_families, setting_value, unknown_key


def _searched_features(where: Where, value: object) -> Subsets:
    key = "search.features"
    if not isinstance(value, dict):
        raise where.error(
            f"{key!r} must be a table {{ subsets = {list(FEATURES)} }} (one yes/no parameter per "
            f"family), but got {value!r}; to fix the families, give the list as 'train.features'."
        )
    for k in value:
        if k != "subsets":
            raise unknown_key(where, k, ["subsets"], prefix=f"{key}.")
    if "subsets" not in value:
        raise where.error(f"{key!r} needs 'subsets', the families searched, such as {{ subsets = {list(FEATURES)} }}.")
    return Subsets(read_families(where, f"{key}.subsets", value["subsets"]))


def _searched(where: Where, name: str, value: object) -> Range | Choice | Subsets:
    key = f"search.{name}"
    if name == "features":
        return _searched_features(where, value)
    if isinstance(value, list):
        if not value:
            raise where.error(f"{key!r} must be a non-empty list of choices, but got [].")
        return Choice(tuple(choice_value(where, key, name, v) for v in value))  # not the features: above
    if not isinstance(value, dict):
        raise where.error(
            f"{key!r} must be a list of choices or a range table {{ low = .., high = .. }}, but got {value!r}."
        )
    if name in CHOICES:
        raise where.error(f"{key!r} must be a list of choices such as {list(CHOICES[name])}, not a range.")
    for k in value:
        if k not in ("high", "log", "low", "step"):
            raise unknown_key(where, k, ["high", "log", "low", "step"], prefix=f"{key}.")
    for k in ("low", "high"):
        if k not in value:
            raise where.error(f"{key!r} needs '{k}' (a range is {{ low = .., high = .. }}).")
    low = number_value(where, f"{key}.low", name, value["low"])  # a choice's name was refused above
    high = number_value(where, f"{key}.high", name, value["high"])
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


def read_space(where: Where, data: dict) -> SearchSpace:
    """``[train]`` (fixed settings) and ``[search]`` (searched ones) as a search space."""
    train, search = data.get("train", {}), data.get("search", {})
    for section, table in (("train", train), ("search", search)):
        if not isinstance(table, dict):
            raise where.error(f"'{section}' must be a table [{section}], but got {table!r}.")
        for key in table:
            if key not in SETTINGS:
                raise unknown_key(where, key, list(SETTINGS), prefix=f"{section}.")
    both = sorted(set(train) & set(search))
    if both:
        raise where.error(f"'{both[0]}' is both fixed in [train] and searched in [search]; keep one.")
    fixed = {
        k: _widths(where, train, search)
        if k == "hidden_units" and isinstance(v, list)
        else setting_value(where, f"train.{k}", k, v)
        for k, v in sorted(train.items())
    }
    searched = {k: _searched(where, k, v) for k, v in sorted(search.items())}
    return SearchSpace(fixed=fixed, searched=searched)


def _widths(where: Where, train: dict, search: dict) -> list[int]:
    """``train.hidden_units`` as a list: one width per hidden layer (the list sets the depth)."""
    widths = train["hidden_units"]
    if not widths:
        raise where.error(
            "'train.hidden_units' must list one width per hidden layer, but got []; for none set "
            "'train.hidden_layers' = 0."
        )
    checked = [int(number_value(where, f"train.hidden_units[{i}]", "hidden_units", w)) for i, w in enumerate(widths)]
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
