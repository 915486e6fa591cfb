"""``run_sweep``: open (or resume) a sweep's studies and run joblib workers on them until each
study has its total, while the calling process shows progress and keeps MLflow current."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import uuid
import warnings
from collections.abc import Callable

import optuna

from studies.errors import ParameterError, SweepsError
from studies.execution import signals
from studies.execution.launching import BACKENDS, Launch, executor, run_round, stop_workers, warm_up
from studies.execution.recovery import fail_orphans, recover
from studies.execution.worker import HALT_AFTER, WorkerTask, halted
from studies.search import open_source, warm_start
from studies.storage import DEFAULT_STORAGE, StorageError, SweepStorage, open_storage, redact, storage_kind
from studies.sweep import DATA_ATTR, StudySummary, SweepConfig, check_data, data_signatures, find_sweep, summarize
from studies.tracking import MlflowStatus, MlflowWriter

__all__ = ["open_sweep", "run_sweep", "SweepHalted", "SweepInterrupted"]

MAX_ROUNDS = 3


class SweepInterrupted(SweepsError):
    """The sweep was stopped by SIGINT or SIGTERM; its studies are consistent and resumable."""


class SweepHalted(SweepsError):
    """Every trial of a study failed alike (a cause that would fail them all): the sweep
    stopped rather than burn its budget; the trials stay in the storage, and the next run
    tries again."""


def open_sweep(config: SweepConfig, storage: optuna.storages.BaseStorage) -> list[optuna.Study]:
    """Create the sweep's studies, or check that existing ones belong to this same sweep.

    Raises ``ValueError`` (before writing anything) when a sweep of this name exists with a
    different spec: only ``trials`` and ``jobs`` may change on resume.
    """
    existing = {s.name: s for s in find_sweep(storage, config.name)}
    identity = config.identity()
    for s in existing.values():
        stored = SweepConfig.identity_of(dict(s.config))
        if stored != identity:
            diff = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
            raise SweepsError(
                f"sweep {config.name!r} already exists in this storage with a different spec "
                f"(key {diff[0]!r} differs); give the new sweep another 'name', or restore the file."
            )
    data = data_signatures(config)  # the same data as when the studies were created, or refuse
    check_data(storage, config, [(s.dataset, s.study_id) for s in existing.values()], data)
    studies = []
    for index, ref in enumerate(config.datasets):
        study = optuna.create_study(
            study_name=config.study_name(ref),
            storage=storage,
            directions=config.directions,
            load_if_exists=True,
        )
        attrs = {
            "sweep": config.to_json(),
            "dataset": ref.name,
            "trials": config.trials,
            "index": index,
            DATA_ATTR: data[ref.name],
        }
        for key, value in attrs.items():
            if study.user_attrs.get(key) != value:
                study.set_user_attr(key, value)
        studies.append(study)
    return studies


def _complete(summaries: list[StudySummary]) -> bool:
    return all(s.finished >= s.total for s in summaries)


def run_sweep(
    config: SweepConfig,
    *,
    storage_url: str | None = None,
    tracking_uri: str | None = None,
    track: bool = True,
    launch: Launch = Launch(),
    create: bool = True,
    on_progress: Callable[[list[StudySummary]], None] | None = None,
    on_mlflow: Callable[[MlflowStatus], None] | None = None,
    warn: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
    poll_seconds: float = 1.0,
) -> list[StudySummary]:
    """Run (or resume, or join) a sweep until every study has its total; returns the summaries.

    Args:
        config: the validated sweep.
        storage_url: an Optuna storage (journal file path by default, or an RDB/redis URL).
        tracking_uri: MLflow tracking URI (``None``: MLflow's default).
        track: keep MLflow current (one process at a time does, see :class:`Tracker`).
        launch: the workers' backend and heartbeat.
        create: create the studies (``sweep run``); ``False`` joins existing ones (``sweep worker``).
        on_progress: called with fresh summaries about every ``poll_seconds``.
        on_mlflow: called with how far MLflow is behind the storage, as often (and while the
            last runs are written at the end).
        warn: called with a one-line message for non-fatal trouble (MLflow away, a worker died).
        note: called with a one-line message about what the run set up (a study's warm start).

    Raises:
        SweepInterrupted: on SIGINT/SIGTERM, after failing the trials in flight.
    """
    if launch.backend not in BACKENDS:
        raise ParameterError("backend", f" must be one of {sorted(BACKENDS)}, but got {launch.backend!r}.")
    if launch.backend == "dask" and not launch.scheduler:
        raise ParameterError(
            "scheduler", " is needed with backend 'dask' (the dask scheduler's address, tcp://HOST:PORT)."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage_url = _absolute(storage_url or DEFAULT_STORAGE)
    say = warn or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=2))
    token = uuid.uuid4().hex[:12]
    pool: list = []
    writer: MlflowWriter | None = None
    started = signals.received()
    # SIGTERM and SIGINT raise KeyboardInterrupt here, except in the middle of a storage write.
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    own = signals.install(launcher=True)
    try:
        with signals.armed() if own else contextlib.nullcontext():
            jobs = config.jobs or default_jobs(track=track)
            if launch.backend == "loky":  # the workers import while this process opens the studies
                ex = executor(jobs)
                pool.append(ex)
                for _ in range(jobs):
                    ex.submit(warm_up, storage_kind(storage_url))
            # The warm start's sweep must exist before anything is written (and is read from here).
            source = open_source(config, storage_url) if create and config.warm_start is not None else None
            storage = open_storage(
                storage_url, heartbeat_interval=launch.heartbeat_interval, grace_period=launch.grace_period
            )
            with signals.critical():
                studies = open_sweep(config, storage) if create else _load_studies(config, storage)
                for study in studies:
                    recover(study)
                if create:  # a new run tries the halted studies again
                    for dataset in halted(studies[0]):
                        studies[0].set_user_attr(f"halted.{dataset}", None)
            if source is not None:  # before any trial is asked: each study once, whoever runs it first
                warm_start(config, studies, source, storage_url=storage_url, say=note or (lambda msg: None))
            # The launcher's view: summaries read incrementally, whatever the size of the studies.
            view = SweepStorage(storage, refresh_seconds=0.0, name=redact(storage_url), read_unfinished=False)
            # MLflow is written by a process of its own, from the storage, while the workers train.
            writer = MlflowWriter(config.name, storage_url, tracking_uri, warn=say) if track else None

            def refresh() -> list[StudySummary]:
                summaries = summarize(view, config.name)
                if on_progress is not None:
                    on_progress(summaries)
                if writer is not None:
                    status = writer.poll()
                    if on_mlflow is not None:
                        on_mlflow(status)
                return summaries

            summaries = refresh()
            # loky's workers are this process's children: they watch this pid, which catches a
            # launcher killed before a worker's task began (its parent then is already init)
            launcher = os.getpid() if launch.backend == "loky" else 0
            tasks = [
                WorkerTask(
                    storage_url,
                    _absolute_datasets(config),
                    i,
                    launch.heartbeat_interval,
                    launch.grace_period,
                    token,
                    launcher,
                )
                for i in range(jobs)
            ]
            for _ in range(MAX_ROUNDS):
                if _complete(summaries):
                    break
                before = sum(s.finished for s in summaries)
                summaries, crashed = run_round(launch, tasks, pool, refresh, poll_seconds)
                if signals.received() != started:
                    raise KeyboardInterrupt  # a worker stopped by the same signal: not a crash
                with signals.critical():
                    for study in studies:
                        recover(study)
                if crashed:
                    say(f"a worker process died ({crashed}); its trial was marked failed and will be re-run.")
                    summaries = refresh()
                    continue
                if sum(s.finished for s in summaries) == before:
                    break  # no progress: failing trials; the summary shows them
            if writer is not None:
                if _finish_mlflow(writer, on_mlflow):
                    started = signals.received()  # Ctrl-C only skipped the wait for MLflow: the sweep is done
                writer = None
            summaries = refresh()
            if signals.received() != started:
                raise KeyboardInterrupt  # stopped while finishing: say so, never report success
            stopped = halted(studies[0])
            if stopped:
                dataset, why = sorted(stopped.items())[0]
                raise SweepHalted(
                    f"sweep {config.name!r} stopped: the first {HALT_AFTER} trials of dataset {dataset!r} all "
                    f"failed alike ({why}), so would the others. Fix the cause ('sweep status "
                    f"{config.name}' shows the counts), then run the same command again."
                )
            return summaries
    except StorageError:
        with signals.quiet():  # the storage failed under a worker or here: stop everything, say it once
            stop_workers(pool[-1] if pool and launch.backend == "loky" else None)
            if writer is not None:
                writer.stop()
        raise
    except KeyboardInterrupt:
        with signals.quiet():
            _interrupted(config, storage_url, launch, pool, writer, on_progress, say, token)
        raise SweepInterrupted(
            f"sweep {config.name!r} interrupted; its trials in flight were marked failed. "
            f"Run the same command again to resume."
        ) from None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


# A run's last MLflow sync draws summary figures only this long after it begins: the command
# returns within about two seconds of the last trial ('sweep sync' draws what was left).
FIGURES_AT_END_SECONDS = 1.0


def _finish_mlflow(writer: MlflowWriter, on_mlflow: Callable[[MlflowStatus], None] | None) -> bool:
    """Wait for the writer's last sync (the display says how far it is); Ctrl-C (or SIGTERM)
    stops the wait, leaving the rest to ``sweep sync``. Returns whether it was interrupted."""
    interrupted = False
    try:
        status = writer.finish(on_status=on_mlflow, figures_seconds=FIGURES_AT_END_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
        with signals.quiet():
            status = writer.stop(why="interrupted")
    if on_mlflow is not None:
        on_mlflow(status)
    return interrupted


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupted(
    config: SweepConfig,
    storage_url: str,
    launch: Launch,
    pool: list,
    writer: MlflowWriter | None,
    on_progress,
    say,
    token: str,
) -> None:
    """Stop the workers and leave the studies consistent after SIGINT/SIGTERM.

    The interrupt may have landed in the middle of a storage call, leaving that connection
    unusable: the clean-up opens the storage afresh. MLflow's writer stops after the run it
    is writing; the next run (or ``sweep sync``) writes the rest.
    """
    try:
        storage = open_storage(
            storage_url, heartbeat_interval=launch.heartbeat_interval, grace_period=launch.grace_period
        )
        studies = _load_studies(config, storage)
        studies[0].set_user_attr(f"stop.{token}", True)  # workers that can't be signalled (dask) stop too
    except Exception as exc:  # noqa: BLE001 - stopping must not fail; the next run recovers
        storage, studies = None, []
        say(f"could not record the stop in the storage ({type(exc).__name__}); the next 'sweep run' tidies up.")
    stop_workers(pool[-1] if pool and launch.backend == "loky" else None)
    if writer is not None:
        writer.stop()
    if storage is None:
        return
    try:
        for study in studies:
            fail_orphans(study)
        summaries = summarize(storage, config.name)
        if on_progress is not None:
            on_progress(summaries)
    except Exception as exc:  # noqa: BLE001
        say(f"could not finish tidying up ({type(exc).__name__}); the next 'sweep run' does it.")


def _load_studies(config: SweepConfig, storage: optuna.storages.BaseStorage) -> list[optuna.Study]:
    return [optuna.load_study(study_name=config.study_name(ref), storage=storage) for ref in config.datasets]


def _absolute(url: str) -> str:
    """Workers may run in another folder: a journal file path is made absolute."""
    if storage_kind(url) == "journal" and not url.startswith("file://"):
        return os.path.abspath(url)
    return url


def _absolute_datasets(config: SweepConfig) -> SweepConfig:
    """The same sweep with its dataset files' paths made absolute, for the workers."""
    refs = tuple(
        dataclasses.replace(ref, source=os.path.abspath(ref.source)) if os.path.isfile(ref.source) else ref
        for ref in config.datasets
    )
    return dataclasses.replace(config, datasets=refs)


def default_jobs(*, track: bool) -> int:
    """Worker processes when the sweep does not say: every core, but one for the MLflow writer
    when this process writes MLflow. A writer that shares its core with a worker falls behind
    and the sweep ends waiting for it: on 2 cores, 1 worker with MLflow on finishes sooner than 2
    (benchmarks/mlflow_pace.py onoff)."""
    from joblib import cpu_count

    cores = max(1, cpu_count())
    return max(1, cores - 1) if track else cores
