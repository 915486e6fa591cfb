"""The sweep file's limits: what this machine can run, stated in the errors and the README.

- ``epochs`` at most :data:`MAX_EPOCHS`: a trial keeps a curve point per epoch (in memory,
  in the storage, in MLflow) and reports to its pruner every ``report_every`` epochs.
- ``jobs`` at most :data:`JOBS_PER_CPU` worker processes per CPU of the machine.
- the widest networks of the search space, ``stack`` of them stacked in each of ``jobs``
  workers, with each worker's copy of the datasets, must fit in the machine's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.checks import MAX_EPOCHS  # one limit, the engine's rule
from engine.limits import human_bytes, largest, machine_memory, stack_bytes
from studies.errors import SweepsError

if TYPE_CHECKING:
    from engine import Dataset
    from studies.sweep import SearchSpace

__all__ = ["JOBS_PER_CPU", "MAX_EPOCHS", "check_fits", "cpu_count", "max_jobs"]

JOBS_PER_CPU = 8


def cpu_count() -> int:
    """CPUs this process may use (its affinity and control group's quota, as joblib counts)."""
    from joblib import cpu_count as joblib_cpus

    return max(1, joblib_cpus())


def max_jobs() -> int:
    return JOBS_PER_CPU * cpu_count()


def _need(
    space: SearchSpace,
    datasets: Sequence[Dataset],
    *,
    jobs: int,
    stack: int,
    width: int | None = None,
    layers: int | None = None,
) -> tuple[int, Dataset]:
    """Bytes the sweep's workers need at most, and the dataset whose stack needs the most."""
    data = sum(sum(a.nbytes for a in (d.X_train, d.y_train, d.X_val, d.y_val, d.X_test, d.y_test)) for d in datasets)
    worst, worst_ds = -1, datasets[0]
    for ds in datasets:
        most, wide = space.stack_shape(ds.n_features)
        need = stack_bytes(
            most if layers is None else layers,
            wide if width is None else width,
            ds.n_features,
            ds.n_outputs,
            members=stack,
            n_train=len(ds.y_train),
            n_val=len(ds.y_val),
        )
        if need > worst:
            worst, worst_ds = need, ds
    return jobs * (worst + 2 * data), worst_ds


def _key(space: SearchSpace, name: str) -> str:
    if name in space.searched:
        return f"search.{name}"
    return f"train.{name}" if name in space.fixed else f"{name} (default)"


def check_fits(space: SearchSpace, datasets: Sequence[Dataset], *, jobs: int, stack: int) -> None:
    """Raise ``ValueError`` if the sweep's workers would need more memory than the machine has;
    the message names the setting that asks for it and what would fit."""
    jobs = jobs or cpu_count()
    need, ds = _need(space, datasets, jobs=jobs, stack=stack)
    memory = machine_memory()
    if need <= memory:
        return
    layers, width = space.stack_shape(ds.n_features)
    head = (
        f"{jobs} worker(s) x {stack} stacked network(s) of up to {layers} layer(s) of {width} units on dataset "
        f"{ds.name!r} need about {human_bytes(need)} of memory, but this machine has {human_bytes(memory)}"
    )
    fit_width = largest(lambda w: _need(space, datasets, jobs=jobs, stack=stack, width=w)[0], width)
    if fit_width >= 1:
        raise SweepsError(
            f"{_key(space, 'hidden_units')!r} = {width}: {head}; at most {fit_width} units fit "
            f"(or lower 'stack' or 'jobs')."
        )
    fit_layers = largest(lambda n: _need(space, datasets, jobs=jobs, stack=stack, layers=n)[0], layers)
    if fit_layers < 1:
        raise SweepsError(f"{head}; lower 'stack' or 'jobs'.")
    raise SweepsError(
        f"{_key(space, 'hidden_layers')!r} = {layers}: {head}; at most {fit_layers} layers fit "
        f"(or lower 'stack' or 'jobs')."
    )
