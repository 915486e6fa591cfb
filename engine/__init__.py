"""The training engine: small neural networks in pure NumPy.

Example:
    >>> from engine import MLP, load_dataset, train
    >>> ds = load_dataset("circle", seed=0)
    >>> model = MLP(ds.n_features, (8, 8), ds.n_outputs, activation="tanh", seed=0)
    >>> history = train(model, ds, learning_rate=0.03, epochs=5, batch_size=10)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_face

if TYPE_CHECKING:
    from engine.activations import ACTIVATIONS, DERIVATIVES
    from engine.costs import OUTPUT_FOR_TASK, OUTPUTS
    from engine.data import (
        DATASETS,
        FEATURES,
        MAX_PRODUCT_FEATURES,
        TASKS,
        Dataset,
        check_features,
        dataset_name,
        from_arrays,
        load_dataset,
        with_features,
    )
    from engine.divergence import DIVERGENCE_CAUSES, Divergence
    from engine.errors import SweepsError
    from engine.network import MLP
    from engine.optimizers import OPTIMIZERS
    from engine.saved import MODEL_FORMAT, MODEL_VERSION, SavedModel, load_model, model_bytes, read_rows, save_model
    from engine.stack import Member, Stack, stack_widths, train_stacked
    from engine.training import History, train

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DERIVATIVES",
    "DIVERGENCE_CAUSES",
    "FEATURES",
    "Dataset",
    "Divergence",
    "History",
    "MAX_PRODUCT_FEATURES",
    "MLP",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "Member",
    "OPTIMIZERS",
    "OUTPUTS",
    "OUTPUT_FOR_TASK",
    "SavedModel",
    "TASKS",
    "check_features",
    "dataset_name",
    "from_arrays",
    "load_dataset",
    "load_model",
    "model_bytes",
    "read_rows",
    "save_model",
    "train",
    "Stack",
    "SweepsError",
    "stack_widths",
    "train_stacked",
    "with_features",
]

# Imported when first used: importing a module of the engine (its errors, say) costs nothing more.
__getattr__, __dir__ = lazy_face(__name__, __file__, __all__)
