"""``datasets``: each one named, loaded once, described, and checked against the features,
the objectives and the machine's memory."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from engine import DATASETS, check_features, dataset_name
from studies.sweep import DatasetRef, SearchSpace, Subsets
from sweeps.limits import check_fits
from sweeps.spec.values import NAME_MAX, NAME_RE, Where, shown_name, unknown_key

if TYPE_CHECKING:
    from engine import Dataset


DATASET_OPTIONS = ("label", "n_samples", "noise", "task", "test_fraction", "val_fraction")
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


def _datasets(where: Where, value: object, seed: int) -> tuple[tuple[DatasetRef, ...], list]:
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
                    raise unknown_key(where, k, list(DATASET_OPTIONS), prefix=f"{key}.")
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


def _check_features_fit(where: Where, space: SearchSpace, refs: tuple[DatasetRef, ...], loaded: list) -> None:
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


def checked_datasets(
    where: Where, data: dict, space: SearchSpace, objectives: tuple[str, ...], *, seed: int, jobs: int, stack: int
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
