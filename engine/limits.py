"""What the machine can hold: the memory a dataset, a network or a stack of networks needs,
estimated from their shapes and checked before anything is allocated.

An estimate counts the arrays the engine keeps and the largest temporaries it makes (a
copy per split, a forward pass over a whole split); it leaves out what is small beside
them (Python objects, the step's mini-batch), so a request refused would not have fit.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from engine.errors import SweepsError

__all__ = [
    "check_memory",
    "fits",
    "human_bytes",
    "machine_memory",
    "mlp_bytes",
    "stack_bytes",
    "train_bytes",
    "largest",
]

# Copies of a dataset's float64 features alive at once while it is split and standardized
# (the raw array, its float64 copy, the standardized one, the splits, a temporary).
DATA_COPIES = 6


@functools.lru_cache(maxsize=1)
def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its control group's limit if lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover - unreachable


def fits(need: float) -> bool:
    return need <= machine_memory()


def check_memory(what: str, need: float, *, advice: str = "") -> None:
    """Raise ``ValueError`` if ``need`` bytes exceed the machine's memory.

    The message reads ``{what} needs about 1.7 TiB of memory, but this machine has 23.5 GiB{advice}.``
    """
    if not fits(need):
        raise SweepsError(
            f"{what} needs about {human_bytes(need)} of memory, but this machine has "
            f"{human_bytes(machine_memory())}{advice}."
        )


def largest(need_of, value: int) -> int:
    """The largest ``v`` in ``[0, value]`` with ``need_of(v)`` within the machine's memory
    (``need_of`` grows with ``v``), for messages that say what would fit."""
    low, high = 0, value
    while low < high:
        mid = (low + high + 1) // 2
        if fits(need_of(mid)):
            low = mid
        else:
            high = mid - 1
    return low


def _n_params(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def mlp_bytes(sizes: Sequence[int], itemsize: int) -> int:
    """An MLP's parameters and gradients, and the float64 draw of its largest weight matrix."""
    largest_layer = max((a * b for a, b in zip(sizes[:-1], sizes[1:])), default=0)
    return 2 * _n_params(sizes) * itemsize + 8 * largest_layer


def train_bytes(sizes: Sequence[int], itemsize: int, *, n_train: int, n_val: int) -> int:
    """``engine.train``: the network and an optimizer's two moment buffers, a shuffled copy of
    the training split, and forward passes over the whole training split (its initial cost)."""
    units = sum(sizes[1:])
    return (
        mlp_bytes(sizes, itemsize)
        + 2 * _n_params(sizes) * itemsize
        + itemsize * (2 * n_train * sizes[0] + max(n_train, n_val) * units)
    )


def stack_bytes(
    layers: int,
    width: int,
    n_features: int,
    n_outputs: int,
    *,
    members: int,
    n_train: int,
    n_val: int,
    itemsize: int = 4,
) -> int:
    """A :class:`engine.Stack` of ``members`` networks, ``layers`` hidden layers of ``width``
    units: its parameter rows (parameters, gradients, moments, rates, masks; twice while
    members join), each member's shuffled training rows, and a forward pass over a whole
    split for every member. (Shapes, not lists: a request for 10**9 layers is refused
    without building anything of that length.)"""
    n_in = n_features + 1  # the inputs carry a column of ones
    if layers:
        n_params = n_in * width + (layers - 1) * (width + 1) * width + (width + 1) * n_outputs
    else:
        n_params = (n_in + 1) * n_outputs
    per_member = 14 * n_params + n_train * n_in + max(n_train, n_val) * (layers * width + n_outputs)
    return itemsize * members * per_member
