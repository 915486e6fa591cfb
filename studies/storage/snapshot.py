"""A process's snapshot of one study's trials run by other processes, kept current incrementally.

Finished trials never change, so a refresh reads only what is new or unfinished. On an RDB
it first asks for the ids and states of the trials above the last finished one (plus the
older ones still unfinished): one small query; then it reads whole only the trials that are
new or changed. A snapshot that only counts unfinished trials (progress, MLflow) keeps
them as their state and number alone, and reads each trial whole once, when it finished.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable
from dataclasses import dataclass, field
from typing import cast

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from studies import _optuna_compat as compat

__all__ = ["Snapshot"]


def _stub(trial_id: int, state: TrialState, number: int) -> FrozenTrial:
    """An unfinished trial as a snapshot that only counts them shows it: its state and number."""
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=None,
        datetime_start=None,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs={},
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


@dataclass
class Snapshot:
    """The trials of one study that other processes run or ran, as last read."""

    trials: dict[int, FrozenTrial] = field(default_factory=dict)  # trial_id -> trial
    by_number: dict[int, int] = field(default_factory=dict)  # number -> trial_id
    unfinished: set[int] = field(default_factory=set)
    last_finished: int = -1
    read_at: float = -1e18
    version: int = 0  # changes whenever a trial does
    lists: dict[tuple | None, list[FrozenTrial]] = field(default_factory=dict)  # states -> trials, per version
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.trials and self.last_finished < 0

    def read(
        self,
        backend: optuna.storages.BaseStorage,
        study_id: int,
        *,
        kind: str | None,
        skip: Collection[int],
        whole_unfinished: bool,
    ) -> tuple[list[FrozenTrial], int]:
        """What changed since the last read (trials of ids in ``skip``, this process's own,
        never); and, on an RDB, the highest id of a finished trial seen."""
        if kind != "rdb" or not isinstance(backend, optuna.storages.RDBStorage):
            return backend.get_all_trials(study_id, deepcopy=False), -1
        probed = compat.rdb_probe_states(backend, study_id, include=self.unfinished, after=self.last_finished)
        others = {tid: sn for tid, sn in probed.items() if tid not in skip}
        wanted = {
            tid
            for tid, (state, _) in others.items()
            if tid not in self.trials or not state.is_finished() or self.trials[tid].state != state
        }
        top = max((tid for tid, (state, _) in others.items() if state.is_finished()), default=-1)
        stubs = []
        if not whole_unfinished:
            for tid in [tid for tid in wanted if not others[tid][0].is_finished()]:
                wanted.discard(tid)
                old = self.trials.get(tid)
                if old is None or old.state != others[tid][0]:
                    stubs.append(_stub(tid, *others[tid]))
        if not wanted:
            return stubs, top
        return stubs + compat.rdb_read_trials(backend, study_id, include=wanted, after=None), top

    def apply(self, fresh: list[FrozenTrial], top: int, *, kind: str | None, skip: Collection[int]) -> None:
        """Take in what :meth:`read` returned."""
        changed = False
        for t in fresh:
            tid = compat.trial_id(t)
            if tid in skip:
                continue
            old = self.trials.get(tid)
            if old is not t:
                self.trials[tid] = t
                self.by_number[t.number] = tid
                changed = (
                    changed
                    or old is None
                    or old.state != t.state
                    or old.intermediate_values != t.intermediate_values
                    or old.params != t.params
                    or old.user_attrs != t.user_attrs
                    or old.system_attrs != t.system_attrs
                )
                for name, dist in t.distributions.items():
                    self.distributions.setdefault(name, dist)
            if t.state.is_finished():
                self.unfinished.discard(tid)
                self.last_finished = max(self.last_finished, tid)
            else:
                self.unfinished.add(tid)
        if kind == "rdb":
            # Trials above the last finished one are probed each time: the window stays small,
            # and the unfinished set keeps the older ones still running in sight.
            self.last_finished = max(self.last_finished, top)
            self.unfinished = {
                tid for tid in self.unfinished if tid in self.trials and not self.trials[tid].state.is_finished()
            }
        if changed:
            self.changed()

    def changed(self) -> None:
        self.version += 1
        self.lists.clear()

    def add_finished(self, trial: FrozenTrial) -> None:
        """A trial this process has just written as finished."""
        tid = compat.trial_id(trial)
        self.trials[tid] = trial
        self.by_number[trial.number] = tid
        self.unfinished.discard(tid)
        self.changed()

    def select(self, states: Container[TrialState] | None, skip: Collection[int]) -> list[FrozenTrial]:
        """The trials in ``states`` (all: ``None``), by trial id, without those in ``skip``;
        the same list object until the snapshot changes."""
        # Optuna's get_all_trials types states as a Container; every caller passes a tuple or a list.
        key = tuple(sorted(int(s) for s in cast("Iterable[TrialState]", states))) if states is not None else None
        out = self.lists.get(key)
        if out is None:
            out = self.lists[key] = [
                t for tid, t in sorted(self.trials.items()) if tid not in skip and (states is None or t.state in states)
            ]
        return out
