"""The sweep file's limits: what this machine can run, stated in the errors and the README.

- ``epochs`` at most :data:`MAX_EPOCHS`: a trial keeps a curve point per epoch (in memory,
  in the storage, in MLflow) and reports to its pruner every ``report_every`` epochs.
- ``stack`` at most :data:`MAX_STACK` trials trained at once by a worker.
- ``jobs`` at most :data:`JOBS_PER_CPU` worker processes per CPU of the machine.
- ``sampler = "grid"`` at most :func:`max_grid_points` points: Optuna's grid sampler holds
  every point in each worker, and scans them all for each trial.
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

__all__ = [
    "JOBS_PER_CPU",
    "MAX_EPOCHS",
    "MAX_GRID_POINTS",
    "MAX_STACK",
    "check_fits",
    "check_shape_fits",
    "check_grid",
    "cpu_count",
    "max_grid_points",
    "max_jobs",
]

JOBS_PER_CPU = 8
# Trials a worker trains at once: each is a running trial in the storage, with its reports and
# its curves in memory; the gain of a larger stack stops at about 64 (docs/benchmarks.md).
MAX_STACK = 1024
# A grid sampler lists every point, shuffles them, and scans them for each trial it samples:
# beyond ten million points, a worker spends seconds per trial on the list alone.
MAX_GRID_POINTS = 10_000_000
# A grid point in Optuna's GridSampler: its tuple, its slot in the list, and the index lists and
# sets each sample builds over all points (measured with tracemalloc: ~73 bytes for 3 values);
# plus 8 bytes per value. Grids may take at most a quarter of the memory.
GRID_POINT_BYTES = 128
GRID_SHARE = 4
# A trial in a worker besides its stack's arrays: its Optuna trial and reports, and its
# curves (four Python floats an epoch in lists, and as many in the record written at its end).
TRIAL_BYTES = 16 * 1024
EPOCH_BYTES = 256


def cpu_count() -> int:
    """CPUs this process may use (its affinity and control group's quota, as joblib counts)."""
    from joblib import cpu_count as joblib_cpus

    return max(1, joblib_cpus())


def max_jobs() -> int:
    return JOBS_PER_CPU * cpu_count()


def max_grid_points(space: SearchSpace, *, jobs: int, studies: int = 1) -> int:
    """The most grid points a sweep of ``jobs`` workers (0: one per CPU) and ``studies``
    datasets may search: each worker holds a grid sampler, with every point, per study."""
    per_point = GRID_POINT_BYTES + 8 * space.grid_params()
    samplers = (jobs or cpu_count()) * max(1, studies)
    return max(1, min(MAX_GRID_POINTS, machine_memory() // (GRID_SHARE * samplers * per_point)))


def _count(n: int) -> str:
    """A count in digits, or its power of ten when it is too long to read."""
    return str(n) if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def check_grid(space: SearchSpace, *, jobs: int, studies: int = 1) -> int:
    """Raise if ``sampler = "grid"`` would have more points than :func:`max_grid_points`;
    returns the grid's size. Counted from the ranges' bounds, before anything is built."""
    size = space.grid_size()
    limit = max_grid_points(space, jobs=jobs, studies=studies)
    if size <= limit:
        return size
    counts = {name: searched.count() or 0 for name, searched in space.searched.items()}
    widest = max(sorted(counts), key=lambda name: counts[name])
    raise SweepsError(
        f"'sampler' = 'grid': the search space has {_count(size)} grid points ('search.{widest}' alone has "
        f"{counts[widest]} values), but at most {limit} fit (Optuna's grid sampler lists every point, for each "
        f"of {max(1, studies)} dataset(s) in each of {jobs or cpu_count()} worker(s); this machine has "
        f"{human_bytes(machine_memory())}); search fewer values, or use sampler 'random' or 'tpe'."
    )


def _need(
    space: SearchSpace,
    datasets: Sequence[Dataset],
    *,
    jobs: int,
    stack: int,
    width: int | None = None,
    layers: int | None = None,
    inputs: int | None = None,
) -> tuple[int, Dataset]:
    """Bytes the sweep's workers need at most, and the dataset whose stack needs the most."""
    data = sum(sum(a.nbytes for a in (d.X_train, d.y_train, d.X_val, d.y_val, d.X_test, d.y_test)) for d in datasets)
    worst, worst_ds = -1, datasets[0]
    for ds in datasets:
        most, wide = space.stack_shape(ds.n_features)
        need = stack_bytes(
            most if layers is None else layers,
            wide if width is None else width,
            ds.n_features if inputs is None else max(inputs, ds.n_features),
            ds.n_outputs,
            members=stack,
            n_train=len(ds.y_train),
            n_val=len(ds.y_val),
        )
        if need > worst:
            worst, worst_ds = need, ds
    trials = stack * (TRIAL_BYTES + EPOCH_BYTES * space.max_epochs())
    return jobs * (worst + trials + 2 * data), worst_ds


def check_shape_fits(
    space: SearchSpace, datasets: Sequence[Dataset], *, jobs: int, stack: int, widths: Sequence[int], inputs: int
) -> None:
    """Raise ``SweepsError`` if stacks of the sweep file's ``stack_shape`` would not fit in memory
    (its widths and inputs are the user's, not bounded by the search space)."""
    jobs = jobs or cpu_count()
    need, _ = _need(space, datasets, jobs=jobs, stack=stack, width=max(widths), layers=len(widths), inputs=inputs)
    memory = machine_memory()
    if need > memory:
        raise SweepsError(
            f"'stack_shape' = {{ widths = {list(widths)}, inputs = {inputs} }}: {jobs} worker(s) x {stack} stacked "
            f"network(s) of this shape need about {human_bytes(need)} of memory, but this machine has "
            f"{human_bytes(memory)}; give smaller widths or inputs (or lower 'stack' or 'jobs')."
        )


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
