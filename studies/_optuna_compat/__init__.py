"""Every use of Optuna's private names, in one place.

Optuna's public storage API writes one value per call, and on an RDB each call is a
transaction (a few round trips). A stack of K trials reporting every epoch would make K
transactions per epoch. The functions here write what the public calls would write, but
many at once: one transaction (RDB) or one append (journal) for a whole flush. They use
Optuna's own models, stored representations and record format, so that what they store is
what Optuna's public calls store (tests/studies/test_optuna_compat.py checks it against
Optuna itself, and fails loudly when a name here changes upstream).

The sampler side (studies/search/samplers.py) is here too: TPE's one sampling step, run with more
candidates for a batch of trials; the vectorized log Phi of TPE's truncated normal; the
percentile pruner's helpers. Each is checked against Optuna's own behaviour by the same tests.
"""

from __future__ import annotations

from studies._optuna_compat.ids import FrozenStudy, study_id, study_storage, trial_id
from studies._optuna_compat.journal import journal_worker_id, journal_write
from studies._optuna_compat.pruners import (
    percentile_at_step,
    percentile_best_so_far,
    percentile_first_in_interval,
)
from studies._optuna_compat.rdb import (
    preload_rdb,
    rdb_create_trials,
    rdb_probe_states,
    rdb_read_trials,
    rdb_record_heartbeats,
    rdb_write,
)
from studies._optuna_compat.tpe import (
    TPESamplerHooks,
    optuna_log_ndtr,
    set_tpe_search_space_group,
    tpe_candidates,
    tpe_search_space_group,
    vectorized_log_ndtr,
)
from studies._optuna_compat.writes import JournalOperation, TrialWrites, supports_bulk

__all__ = [
    "FrozenStudy",
    "study_id",
    "study_storage",
    "trial_id",
    "JournalOperation",
    "TPESamplerHooks",
    "TrialWrites",
    "journal_worker_id",
    "journal_write",
    "optuna_log_ndtr",
    "percentile_at_step",
    "percentile_best_so_far",
    "percentile_first_in_interval",
    "preload_rdb",
    "rdb_create_trials",
    "rdb_probe_states",
    "rdb_read_trials",
    "rdb_record_heartbeats",
    "rdb_write",
    "set_tpe_search_space_group",
    "supports_bulk",
    "tpe_candidates",
    "tpe_search_space_group",
    "vectorized_log_ndtr",
]
