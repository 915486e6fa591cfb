"""Starting the workers: joblib's loky processes (or tasks on a dask cluster), warmed up while
the launcher opens the studies, and stopped for good when the sweep stops."""

from __future__ import annotations

import contextlib
import threading
import time

from joblib.externals.loky import get_reusable_executor
from joblib.externals.loky.process_executor import BrokenProcessPool, TerminatedWorkerError

from studies.errors import SweepsError
from studies.execution._loky_compat import worker_processes
from studies.execution.launch import BACKENDS, Launch
from studies.execution.worker import WorkerTask, work
from studies.sweep import StudySummary

__all__ = ["BACKENDS", "Launch", "executor", "run_round", "stop_workers", "warm_up"]


# One BLAS thread per worker: the workers are the parallelism.
_WORKER_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}


def executor(jobs: int):
    """joblib's loky executor: worker processes (never threads, even for one job).

    The same arguments give back the same (reusable) executor; other ones would replace it.
    """
    return get_reusable_executor(max_workers=jobs, env=_WORKER_ENV, timeout=30)


def stop_workers(executor, grace: float = 10.0) -> int:
    """Ask the loky workers to stop (SIGTERM: each fails its trial), then make sure they are gone;
    returns how many had to be killed (their trials are left RUNNING for the caller to fail)."""
    if executor is None:
        return 0
    processes = worker_processes(executor)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + grace
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    killed = 0
    for p in processes:  # stuck in a long NumPy call: killed, and reaped before anyone looks for orphans
        if p.is_alive():
            killed += 1
            with contextlib.suppress(Exception):
                p.kill()
            p.join(5.0)
    executor.shutdown(wait=False, kill_workers=True)
    return killed


def warm_up(kind: str) -> None:
    """A worker process's imports, done while the launcher opens the studies."""
    import studies.execution.worker  # noqa: F401 - Optuna, NumPy, the engine

    if kind == "rdb":
        from studies import _optuna_compat

        _optuna_compat.preload_rdb()


def run_round(
    launch: Launch, tasks: list[WorkerTask], pool: list, refresh, poll_seconds: float
) -> tuple[list[StudySummary], str | None]:
    """Run the workers once; returns the summaries and, if a worker process died, why."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            if launch.backend == "dask":
                assert launch.scheduler is not None  # the run's checks require one with dask
                run_on_dask(launch.scheduler, tasks)
            else:
                pool_executor = executor(len(tasks))
                pool.append(pool_executor)
                futures = [pool_executor.submit(work, task) for task in tasks]
                for future in futures:
                    future.result()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="sweep-workers", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_seconds)
        refresh()
    if errors:
        if isinstance(errors[0], (TerminatedWorkerError, BrokenProcessPool)):
            return refresh(), str(errors[0]).splitlines()[0][:200]
        raise errors[0]
    return refresh(), None


def run_on_dask(scheduler: str, tasks: list[WorkerTask]) -> None:
    """The same workers as joblib tasks on a dask.distributed cluster (extra 'distributed')."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise SweepsError("'--backend dask' needs dask.distributed: pip install 'sweeps[distributed]'") from None
    from joblib import Parallel, delayed, parallel_config

    with Client(scheduler, timeout=30) as client, parallel_config(backend="dask", wait_for_workers_timeout=60):
        client.run(set_thread_limits)
        Parallel(n_jobs=len(tasks))(delayed(work)(task) for task in tasks)


def set_thread_limits() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
