"""What a flush writes for each trial, and which storages take a flush at once."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages.journal._storage import JournalOperation  # re-exported: the journal's op codes
from optuna.trial import TrialState

__all__ = ["JournalOperation", "TrialWrites", "supports_bulk"]


@dataclass
class TrialWrites:
    """What a flush writes for one trial (of this process): each field what the public calls
    ``set_trial_param``, ``set_trial_intermediate_value``, ``set_trial_user_attr``,
    ``set_trial_system_attr`` and ``set_trial_state_values`` would have written."""

    trial_id: int
    params: list[tuple[str, float, BaseDistribution]] = field(default_factory=list)
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    updated_keys: set[str] = field(default_factory=set)  # attrs written before: update, not insert
    state: TrialState | None = None  # a finished state, or None (the trial keeps running)
    values: Sequence[float] | None = None
    datetime_complete: datetime.datetime | None = None

    def empty(self) -> bool:
        return not (self.params or self.intermediate or self.user_attrs or self.system_attrs or self.state)


def supports_bulk(storage: optuna.storages.BaseStorage) -> str | None:
    """``"rdb"`` or ``"journal"`` when the storage can take a flush at once, else ``None``."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return "rdb"
    if isinstance(storage, optuna.storages.JournalStorage):
        return "journal"
    return None
