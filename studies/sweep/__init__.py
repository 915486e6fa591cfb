"""What a sweep is: its validated configuration and search space, its objectives and the
outcomes of its trials, the curves a trial records, the data it was started with, and what
it has done so far (read from the storage alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from studies.sweep.best import BestConfig, best_config, train_settings
    from studies.sweep.config import (
        ALL,
        DEFAULT_CURVE_POINTS,
        DEFAULT_STACK,
        RESUMABLE,
        DatasetRef,
        PluginSpec,
        StackShape,
        SweepConfig,
        WarmStart,
    )
    from studies.sweep.constraints import (
        CONSTRAINTS,
        MAX_REPEATS,
        Constraint,
        constraint_keys,
        constraint_values,
        feasible,
        is_feasible,
        mean_history,
        repeat_seeds,
    )
    from studies.sweep.curves import best_epoch, crossed, curve_rows, curve_stride, epochs_to_log
    from studies.sweep.fingerprints import DATA_ATTR, check_data, data_signatures
    from studies.sweep.objectives import (
        CURVE_OBJECTIVES,
        OBJECTIVES,
        Direction,
        Objective,
        Trained,
        directions_of,
        measure,
        parameter_count,
    )
    from studies.sweep.outcomes import FINISHED, OUTCOMES, outcome_of
    from studies.sweep.pareto import pareto_front, ranked
    from studies.sweep.space import (
        CHOICE_SETTINGS,
        INT_SETTINGS,
        REGULARIZATIONS,
        SETTINGS,
        Choice,
        Range,
        SearchSpace,
        Subsets,
        TrainArgs,
    )
    from studies.sweep.stopping import (
        BUDGET_ATTR,
        CUTS,
        STOPPED_ATTR,
        Stop,
        budget_record,
        converged,
        deadline_of,
        format_duration,
        parse_duration,
        stopped_record,
    )
    from studies.sweep.summary import (
        FrontTrial,
        StudySummary,
        SweepStudy,
        check_same_sweep,
        find_sweep,
        last_accuracy,
        require_sweep,
        summarize,
        summarize_study,
    )

__all__ = [
    "BestConfig",
    "best_config",
    "train_settings",
    "ALL",
    "BUDGET_ATTR",
    "CUTS",
    "STOPPED_ATTR",
    "Stop",
    "budget_record",
    "converged",
    "deadline_of",
    "format_duration",
    "parse_duration",
    "stopped_record",
    "CHOICE_SETTINGS",
    "CONSTRAINTS",
    "Constraint",
    "MAX_REPEATS",
    "constraint_keys",
    "constraint_values",
    "feasible",
    "is_feasible",
    "mean_history",
    "repeat_seeds",
    "CURVE_OBJECTIVES",
    "Choice",
    "DATA_ATTR",
    "DEFAULT_STACK",
    "DEFAULT_CURVE_POINTS",
    "DatasetRef",
    "Direction",
    "FINISHED",
    "FrontTrial",
    "INT_SETTINGS",
    "OBJECTIVES",
    "OUTCOMES",
    "Objective",
    "PluginSpec",
    "REGULARIZATIONS",
    "RESUMABLE",
    "Range",
    "SETTINGS",
    "SearchSpace",
    "StudySummary",
    "Subsets",
    "SweepConfig",
    "check_same_sweep",
    "SweepStudy",
    "TrainArgs",
    "Trained",
    "StackShape",
    "WarmStart",
    "best_epoch",
    "check_data",
    "crossed",
    "curve_rows",
    "curve_stride",
    "data_signatures",
    "directions_of",
    "epochs_to_log",
    "find_sweep",
    "last_accuracy",
    "measure",
    "outcome_of",
    "parameter_count",
    "pareto_front",
    "ranked",
    "require_sweep",
    "summarize",
    "summarize_study",
]

__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
