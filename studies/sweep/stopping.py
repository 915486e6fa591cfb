"""When a sweep stops short of its totals: a time budget (a wall-clock deadline shared through
the storage, and a limit per trial) and a study's stop on convergence.

The deadline is a study attribute (:data:`BUDGET_ATTR`) of every study of the sweep, written by
``sweep run`` (or a ``sweep worker --budget`` that finds none running): every worker on any host
reads it from the storage, so they all stop together. It is wall-clock time (``time.time()``):
hosts sharing a budget need synchronized clocks (NTP). A study that converged keeps
:data:`STOPPED_ATTR` (which trial, when), so that a resumed sweep leaves it stopped.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from optuna.trial import FrozenTrial

from studies.errors import SweepsError
from studies.sweep.constraints import feasible
from studies.sweep.outcomes import FINISHED, outcome_of

__all__ = [
    "BUDGET_ATTR",
    "STOPPED_ATTR",
    "CUTS",
    "Stop",
    "parse_duration",
    "format_duration",
    "budget_record",
    "deadline_of",
    "converged",
    "stopped_record",
]

BUDGET_ATTR = "budget"  # {"seconds", "deadline" (Unix time), "set" (ISO time)} on every study of the sweep
STOPPED_ATTR = "stopped"  # {"trial", "at" (ISO time), "patience", "min_delta"} on a study that converged
# Why a running trial was cut short (its user attribute ``cut``): the sweep's deadline passed, the
# trial's own limit, or its study stopped on convergence.
CUTS = ("budget", "trial_budget", "stop")
DURATION_FORM = 'a duration such as "90s", "30m", "2h" or "1h30m"'
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
MAX_SECONDS = 366 * 24 * 3600


def parse_duration(key: str, value: object) -> float:
    """Seconds of a duration written ``"90s"``, ``"30m"``, ``"2h"`` or ``"1h30m"``.

    Raises:
        SweepsError: naming ``key``, the value and the allowed form.

    Example:
        >>> parse_duration("budget", "1h30m")
        5400.0
    """
    m = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or not any(m.groups()):
        raise SweepsError(f"{key!r} must be {DURATION_FORM}, but got {value!r}.")
    h, mins, s = (int(g or 0) for g in m.groups())
    seconds = 3600 * h + 60 * mins + s
    if not 0 < seconds <= MAX_SECONDS:
        raise SweepsError(f"{key!r} must be {DURATION_FORM} from 1s to {MAX_SECONDS // 3600}h, but got {value!r}.")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """The inverse of :func:`parse_duration`: ``5400`` -> ``"1h30m"``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    text = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return text or "0s"


@dataclass(frozen=True)
class Stop:
    """Stop a study once ``patience`` finished trials in a row did not improve its best value by
    more than ``min_delta`` (one objective only)."""

    patience: int
    min_delta: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"patience": self.patience, "min_delta": self.min_delta}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


def budget_record(seconds: float, *, now: float | None = None) -> dict[str, object]:
    """The :data:`BUDGET_ATTR` a run starting ``now`` with a budget of ``seconds`` writes."""
    now = time.time() if now is None else now
    return {"seconds": seconds, "deadline": now + seconds, "set": _iso(now)}


def deadline_of(attrs: dict[str, object]) -> float | None:
    """The sweep's deadline (Unix time) from a study's attributes; ``None``: no budget."""
    record = attrs.get(BUDGET_ATTR)
    if not isinstance(record, dict) or not isinstance(record.get("deadline"), (int, float)):
        return None
    return float(record["deadline"])


def converged(trials: list[FrozenTrial], stop: Stop, direction: str) -> int | None:
    """The number of the trial at which a study converged, or ``None``: its finished trials in the
    order they finished, counting those since the best value last improved by more than
    ``min_delta`` (the first complete trial is an improvement; before it nothing counts, so trials
    cut by their own time limit or pruned never stop a study that has no value yet)."""
    done = [
        t
        for t in trials
        if outcome_of(t) in FINISHED
        and t.datetime_complete is not None
        and t.user_attrs.get("cut") not in ("budget", "stop")  # stopped by the sweep, not a verdict on the search
    ]
    done.sort(key=lambda t: (t.datetime_complete, t.number))
    sign = -1.0 if direction == "maximize" else 1.0
    best, since = math.inf, 0
    for t in done:
        value = t.value if outcome_of(t) == "complete" and len(t.values or ()) == 1 and feasible(t) else None
        if value is not None and math.isfinite(value) and sign * value < best - stop.min_delta:
            best, since = sign * value, 0
        elif best < math.inf:  # patience runs from the first complete trial: none yet, nothing to converge to
            since += 1
            if since >= stop.patience:
                return t.number
    return None


def stopped_record(trial: int, stop: Stop, *, now: float | None = None) -> dict[str, object]:
    """The :data:`STOPPED_ATTR` of a study that converged at ``trial``."""
    return {"trial": trial, "at": _iso(time.time() if now is None else now), **stop.to_dict()}
