"""Warm starts: a sweep's studies begin with the best configurations of another sweep.

``warm_start = { sweep = "short", top = 5 }`` (optionally ``storage = "..."``, else this
sweep's storage): before any trial of a study is asked, the best ``top`` distinct
configurations of the other sweep's study of the same dataset are enqueued
(``Study.enqueue_trial``), each marked with where it came from (user attribute
``warm_start``: sweep, study, trial number). A dataset the other sweep has no study of starts
cold.

- **The best**: the other study's complete trials by its own objective (with several
  objectives, its Pareto front first, then the next front, each by trial number), walked
  down until ``top`` distinct configurations are enqueued (at most this sweep's ``trials``).
- **Feasible first**: a sweep with ``[constraints]`` gives its feasible trials first, by the
  same order, and its infeasible ones only to make up ``top``.
- **What fits**: only the parameters this sweep's search space would take as they are (a
  value within its range or among its choices); a parameter that does not fit is left to
  the sampler, and so is every parameter that depends on it (the units of a layer whose
  count does not fit): the space's own ``suggest`` is replayed for each value the unfitting
  parameter could take, and only what every replay asks for is kept.
- **Once**: each study records its warm start (study attribute ``warm_start``), written under
  a lease of the study (:mod:`studies.storage.lease`): another ``sweep run`` at the same time waits
  for it, and a later run finds the record and does nothing. An interrupted warm start is
  completed by the next run (enqueued sources are recognized). A study that already has
  trials of its own is not warm-started (the record says so).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import optuna

from studies.errors import SweepsError
from studies.storage import Lease, open_storage, redact, storage_file
from studies.sweep import SearchSpace, SweepConfig, SweepStudy, WarmStart, feasible, find_sweep, ranked

__all__ = ["ATTR", "WarmSource", "fitting", "open_source", "warm_start", "WAIT_SECONDS"]

ATTR = "warm_start"  # the study attribute (its record) and the trial attribute (where it came from)
WAIT_SECONDS = 120.0  # how long a run waits for another process's warm start of the same study
_REPLAYS = 256  # replays of the space per configuration (branches of unfitting parameters)
_NO = object()  # "not kept" (a kept value may be None)


@dataclass(frozen=True)
class WarmSource:
    """The other sweep, found: its storage (opened) and its studies by dataset."""

    spec: WarmStart
    where: str  # its storage, as messages name it (no password)
    storage: optuna.storages.BaseStorage
    studies: dict[str, SweepStudy]

    def describe(self, datasets: list[str]) -> str:
        """One line: where from, and which datasets match (the rest start cold)."""
        matched = [d for d in datasets if d in self.studies]
        cold = [d for d in datasets if d not in self.studies]
        tail = f"; {', '.join(cold)} start(s) cold (no study there)" if cold else ""
        return (
            f"warm start from sweep {self.spec.sweep!r} in {self.where}: its best {self.spec.top} "
            f"configuration(s) per dataset for {', '.join(matched) or 'no dataset'}{tail}"
        )


def open_source(config: SweepConfig, storage_url: str) -> WarmSource:
    """Open the warm start's storage and find its sweep; a ``ValueError`` (one line, nothing
    written) when the storage is missing or holds no such sweep."""
    spec = config.warm_start
    assert spec is not None
    url = spec.storage or storage_url
    where = redact(url)
    key = "'warm_start.storage'" if spec.storage else "'warm_start.sweep'"
    path = storage_file(url)
    if path is not None and not os.path.isfile(path):  # looking must not create it (as opening would)
        raise SweepsError(f"{key}: no sweep named {spec.sweep!r}: there is no storage {where!r} here.")
    storage = open_storage(url)
    found = find_sweep(storage, spec.sweep)
    if not found:
        names = sorted({s.study_name.split("/", 1)[0] for s in storage.get_all_studies() if "/" in s.study_name})
        held = f"it holds {names}" if names else "it holds no sweep"
        raise SweepsError(f"'warm_start.sweep': no sweep named {spec.sweep!r} in the storage {where}; {held}.")
    return WarmSource(spec, where, storage, {s.dataset: s for s in found})


# -- what fits this sweep's search space ------------------------------------------------------


class _Unfit(Exception):
    pass


class _Probe:
    """Answers a search space's ``suggest_*`` calls from a recorded configuration: a value
    that fits is taken (and kept); one that does not (or is missing) is answered with the
    branch's choice among the alternatives, and noted."""

    def __init__(self, params: dict[str, object], branch: dict[str, object]) -> None:
        self.params, self.branch = params, branch
        self.kept: dict[str, object] = {}
        self.open: list[tuple[str, list[object]]] = []  # unfitting parameters not in the branch

    def _answer(self, name: str, fits: Callable[[object], bool], alternatives: list[object]) -> object:
        if name in self.params and fits(self.params[name]):
            self.kept[name] = self.params[name]
            return self.params[name]
        if name in self.branch:
            return self.branch[name]
        self.open.append((name, alternatives))
        return alternatives[0]

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        def fits(v: object) -> bool:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
                return False
            return step is None or abs((v - low) / step - round((v - low) / step)) < 1e-8

        ends: list[object] = [low, high]
        return float(cast(float, self._answer(name, fits, ends)))  # a fitting number, the branch's or an end

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        def fits(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high and (v - low) % step == 0

        ends: list[object] = [*sorted({low, high})]
        return int(cast(int, self._answer(name, fits, ends)))  # a fitting int, the branch's or an end

    def suggest_categorical(self, name: str, choices: list[object]) -> object:
        def fits(v: object) -> bool:
            return any(v == c and type(v) is type(c) for c in choices)

        return self._answer(name, fits, list(choices))


def fitting(space: SearchSpace, params: dict[str, object]) -> dict[str, object]:
    """The parameters of ``params`` this space takes as they are, consistently: each fits
    its range or choices, and is asked for whatever the sampler picks for the parameters
    that do not fit (the space's ``suggest`` replayed for each of their values: both ends of
    a range, every choice). ``{}`` when nothing fits."""
    branches: list[dict[str, object]] = [{}]
    kept: dict[str, object] | None = None
    replays = 0
    while branches:
        branch = branches.pop()
        replays += 1
        if replays > _REPLAYS:
            return {}  # too many combinations to tell what is consistent: nothing, safely
        probe = _Probe(params, branch)
        space.suggest(probe)  # type: ignore[arg-type]  # a trial in duck type: only its suggest_* are called
        kept = dict(probe.kept) if kept is None else {k: v for k, v in kept.items() if probe.kept.get(k, _NO) == v}
        if probe.open:
            name, alternatives = probe.open[0]  # branch on the first open parameter; the others follow
            branches += [{**branch, name: a} for a in alternatives]
    return kept or {}


# -- enqueueing, once per study ---------------------------------------------------------------


def _source_key(trial: optuna.trial.FrozenTrial) -> tuple[str, int] | None:
    w = trial.user_attrs.get(ATTR)
    return (str(w.get("study")), int(w.get("trial", -1))) if isinstance(w, dict) else None


def _enqueue(study: optuna.Study, config: SweepConfig, source: WarmSource, dataset: str) -> tuple[dict, str]:
    """Enqueue one study's warm start (under its lease); returns its record and a line saying what it did."""
    spec = source.spec
    trials = study.get_trials(deepcopy=False)
    if any(_source_key(t) is None for t in trials):
        return (
            {"skipped": "the study had trials before its warm start"},
            f"warm start: {study.study_name} already has trials of its own; not warm-started.",
        )
    src = source.studies.get(dataset)
    if src is None:
        return (
            {"cold": True, "sweep": spec.sweep},
            f"warm start: sweep {spec.sweep!r} has no study of dataset {dataset!r}; it starts cold.",
        )
    # An interrupted warm start left some: they count, and their configurations are not repeated.
    sources = [k[1] for t in trials if (k := _source_key(t)) is not None and k[0] == src.name]
    wanted = min(spec.top, config.trials)
    pool = source.storage.get_all_trials(src.study_id, deepcopy=False)
    seen = {json.dumps(fitting(config.space, dict(t.params)), sort_keys=True) for t in pool if t.number in sources}
    n = max(4 * wanted, wanted + 20)
    # The other sweep's feasible trials first (its best is its feasible best), then the others.
    ok = [t for t in pool if feasible(t)]
    candidates = ranked(ok, src.directions, n) + ranked([t for t in pool if not feasible(t)], src.directions, n)
    for t in candidates:
        if len(sources) >= wanted:
            break
        params = fitting(config.space, dict(t.params))
        key = json.dumps(params, sort_keys=True)
        if t.number in sources or not params or key in seen:
            continue
        seen.add(key)
        study.enqueue_trial(params, user_attrs={ATTR: {"sweep": spec.sweep, "study": src.name, "trial": t.number}})
        sources.append(t.number)
    record = {"sweep": spec.sweep, "storage": source.where, "study": src.name, "trials": sources}
    return record, (
        f"warm start: {study.study_name} starts with {len(sources)} configuration(s) of "
        f"{src.name} (its trials {sources})."
    )


def warm_start(
    config: SweepConfig,
    studies: list[optuna.Study],
    source: WarmSource,
    *,
    storage_url: str,
    say: Callable[[str], None],
    wait_seconds: float = WAIT_SECONDS,
) -> dict[str, dict]:
    """Warm-start every study of the sweep that has not been yet; returns each study's record.

    Under the study's lease (beside this sweep's storage at ``storage_url``): a process that
    finds it taken waits for the record (up to ``wait_seconds``, then goes on without it).
    ``say`` gets one line per study warm-started here (what was enqueued, or that it starts
    cold).
    """
    records: dict[str, dict] = {}
    for study, ref in zip(studies, config.datasets):
        record = study.user_attrs.get(ATTR)
        if record is not None:
            records[study.study_name] = record
            continue
        lease = Lease(storage_url, f"warm_start/{study.study_name}")
        deadline = time.monotonic() + wait_seconds
        while not lease.acquire():
            if study.user_attrs.get(ATTR) is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        try:
            record = study.user_attrs.get(ATTR)
            if record is None and lease.held:
                record, line = _enqueue(study, config, source, ref.name)
                study.set_user_attr(ATTR, record)
                say(line)
            if record is not None:
                records[study.study_name] = record
        finally:
            lease.release()
    return records
