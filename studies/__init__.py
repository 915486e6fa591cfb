"""The search floor: Optuna studies over the engine, joblib workers, storage, MLflow tracking."""

from studies.config import OBJECTIVES, DatasetRef, PluginSpec, SweepConfig, WarmStart
from studies.outcomes import FINISHED, OUTCOMES, outcome_of
from studies.runner import BACKENDS, Launch, SweepInterrupted, open_sweep, run_sweep
from studies.samplers import PRUNERS, SAMPLERS, check_plugin, make_pruner, make_sampler
from studies.space import Choice, Range, SearchSpace, Subsets, TrainArgs
from studies.storage import DEFAULT_STORAGE, open_storage, redact
from studies.summary import StudySummary, find_sweep, summarize
from studies.tracking import Tracker

__all__ = [
    "BACKENDS",
    "Launch",
    "DEFAULT_STORAGE",
    "FINISHED",
    "OBJECTIVES",
    "OUTCOMES",
    "PRUNERS",
    "SAMPLERS",
    "Choice",
    "DatasetRef",
    "PluginSpec",
    "Range",
    "SearchSpace",
    "StudySummary",
    "Subsets",
    "SweepConfig",
    "SweepInterrupted",
    "Tracker",
    "TrainArgs",
    "WarmStart",
    "check_plugin",
    "find_sweep",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_sweep",
    "outcome_of",
    "redact",
    "run_sweep",
    "summarize",
]
