"""The sweep file: TOML read with tomllib, validated completely before anything is written.

Every problem is one ``ValueError`` naming the file, the key, the bad value and what is
allowed, e.g. ``demo.toml: 'search.activation' must be a list of ['linear', 'relu',
'sigmoid', 'tanh'], but got 'gelu'.``

The rooms: ``values`` (where the values came from, and the readers of one value), ``space``
(``[train]`` and ``[search]``), ``datasets``, ``sections`` (``objective``, ``warm_start``,
``[mlflow]``, the sampler and the pruner), ``bounds`` (budgets, ``stop``, ``stack``,
``stack_shape``, ``[constraints]``) and ``load`` (the file as a whole, and the command
line's overrides). Other modules use only this face.
"""

from __future__ import annotations

from sweeps.presets import presets
from sweeps.spec.datasets import describe_dataset, loading_once
from sweeps.spec.load import apply_overrides, load_spec, spec_from_dict
from sweeps.spec.values import NAME_MAX, NAME_RE, shown_name

__all__ = [
    "load_spec",
    "spec_from_dict",
    "presets",
    "apply_overrides",
    "describe_dataset",
    "loading_once",
    "NAME_MAX",
    "NAME_RE",
    "shown_name",
]
