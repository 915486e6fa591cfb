"""The search: one trial (sample, train, report, record), trials trained stacked with
continuous batching, the samplers and pruners, the trial totals, warm starts from another
sweep, and retraining a recorded trial bit for bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.search.pool import Finished, Pool
    from studies.search.quota import Limits, is_surplus, live_counts, needs_work, scouting
    from studies.search.reproduce import (
        Retrained,
        find_trial,
        first_difference,
        recorded_data,
        retrain,
        retrain_seeds,
        seed_difference,
    )
    from studies.search.samplers import (
        MULTI_OBJECTIVE_SAMPLERS,
        PRUNERS,
        SAMPLERS,
        check_plugin,
        make_pruner,
        make_sampler,
        pruner_startup,
    )
    from studies.search.trial import Reporter, TrialResult, record, run_trial, tell
    from studies.search.warming import open_source, warm_start

__all__ = [
    "Finished",
    "Limits",
    "MULTI_OBJECTIVE_SAMPLERS",
    "PRUNERS",
    "Pool",
    "Reporter",
    "Retrained",
    "SAMPLERS",
    "TrialResult",
    "check_plugin",
    "find_trial",
    "first_difference",
    "is_surplus",
    "live_counts",
    "make_pruner",
    "make_sampler",
    "needs_work",
    "open_source",
    "pruner_startup",
    "record",
    "recorded_data",
    "retrain",
    "retrain_seeds",
    "seed_difference",
    "run_trial",
    "scouting",
    "tell",
    "warm_start",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
