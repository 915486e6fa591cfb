"""``run_sweep``: open (or resume) a sweep's studies and run joblib workers on them until each
study has its total, while the calling process shows progress and keeps MLflow current."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
import uuid
import warnings
from typing import Protocol

import optuna

from studies.errors import ParameterError, SweepsError
from studies.execution import signals
from studies.execution.launching import BACKENDS, Launch, executor, run_round, stop_workers, warm_up
from studies.execution.recovery import fail_orphans, recover
from studies.execution.worker import HALT_AFTER, WorkerTask, halted
from studies.search import open_source, warm_start
from studies.storage import (
    DEFAULT_STORAGE,
    StorageError,
    SweepStorage,
    open_storage,
    redact,
    storage_errors,
    storage_kind,
)
from studies.sweep import (
    BUDGET_ATTR,
    DATA_ATTR,
    StudySummary,
    SweepConfig,
    budget_record,
    check_data,
    check_same_sweep,
    data_signatures,
    deadline_of,
    find_sweep,
    summarize,
)
from studies.tracking import MlflowStatus, MlflowWriter

__all__ = [
    "QuietEvents",
    "RunEvents",
    "RunResult",
    "open_sweep",
    "run_sweep",
    "default_jobs",
    "SweepHalted",
    "SweepInterrupted",
]

MAX_ROUNDS = 3


class SweepInterrupted(SweepsError):
    """The sweep was stopped by SIGINT or SIGTERM; its studies are consistent and resumable."""


class SweepHalted(SweepsError):
    """Every trial of a study failed alike (a cause that would fail them all): the sweep
    stopped rather than burn its budget; the trials stay in the storage, and the next run
    tries again."""


def open_sweep(config: SweepConfig, storage: optuna.storages.BaseStorage) -> list[optuna.Study]:
    """Create the sweep's studies, or check that existing ones belong to this same sweep.

    Raises :class:`SweepsError` (before writing anything) when a sweep of this name exists with a
    different spec: only the keys in ``RESUMABLE`` (trials, jobs, stack, warm_start, mlflow) may change.
    """
    existing = {s.name: s for s in find_sweep(storage, config.name)}
    check_same_sweep(config, list(existing.values()))
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
    return all(s.done() for s in summaries)


def set_budget(config: SweepConfig, studies: list[optuna.Study], *, create: bool) -> None:
    """Write the sweep's deadline (:data:`~studies.sweep.BUDGET_ATTR`) in every study, shared by all
    its workers: ``sweep run`` (``create``) starts its budget now, or clears the deadline when it
    has none; ``sweep worker --budget`` starts one only when none is running (it joins it otherwise)."""
    if config.budget is None:
        if create and any(s.user_attrs.get(BUDGET_ATTR) is not None for s in studies):
            for study in studies:
                study.set_user_attr(BUDGET_ATTR, None)
        return
    deadline = deadline_of(studies[0].user_attrs)
    if not create and deadline is not None and deadline > time.time():
        return
    record = budget_record(config.budget)
    for study in studies:
        study.set_user_attr(BUDGET_ATTR, record)


class RunEvents(Protocol):
    """What a run tells its caller as it goes (the command line's display is one; the default,
    :class:`QuietEvents`, shows nothing and turns warnings into ``RuntimeWarning``)."""

    def progress(self, summaries: list[StudySummary]) -> None:
        """Fresh summaries, about every ``poll_seconds``."""

    def mlflow(self, status: MlflowStatus) -> None:
        """How far MLflow is behind the storage (also while the end waits for it)."""

    def warn(self, message: str) -> None:
        """One line of non-fatal trouble (MLflow away, a worker died)."""

    def note(self, message: str) -> None:
        """One line about what the run set up (a study's warm start)."""


class QuietEvents:
    """:class:`RunEvents` that show nothing; a warning is a ``RuntimeWarning``."""

    def progress(self, summaries: list[StudySummary]) -> None:
        pass

    def mlflow(self, status: MlflowStatus) -> None:
        pass

    def warn(self, message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def note(self, message: str) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class RunResult:
    """A finished run: each study's summary, and MLflow's state at the end (``None``: not tracked
    by this process; see :attr:`MlflowStatus.incomplete`)."""

    summaries: list[StudySummary]
    mlflow: MlflowStatus | None = None


def run_sweep(
    config: SweepConfig,
    *,
    storage_url: str | None = None,
    tracking_uri: str | None = None,
    track: bool = True,
    launch: Launch | None = None,
    create: bool = True,
    events: RunEvents | None = None,
    poll_seconds: float = 1.0,
) -> RunResult:
    """Run (or resume, or join) a sweep until every study has its total.

    Args:
        config: the validated sweep.
        storage_url: an Optuna storage (journal file path by default, or an RDB/redis URL).
        tracking_uri: MLflow tracking URI (``None``: MLflow's default).
        track: keep MLflow current, from a writer process of its own (:class:`MlflowWriter`).
        launch: the workers' backend and heartbeat (default: local loky workers).
        create: create the studies (``sweep run``); ``False`` joins existing ones (``sweep worker``).
        events: what the caller is told as the run goes (:class:`RunEvents`).
        poll_seconds: how often the progress is read.

    Returns:
        The summaries, and MLflow's state at the end.

    Raises:
        SweepInterrupted: on SIGINT/SIGTERM, after failing the trials in flight.
        SweepHalted: when every trial of a study failed alike.
        StorageError: when the storage fails (nothing that finished is lost).
    """
    launch = launch or Launch()
    _check_launch(launch)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    run = _Run(
        config,
        _absolute(storage_url or DEFAULT_STORAGE),
        tracking_uri,
        track=track,
        launch=launch,
        create=create,
        events=events or QuietEvents(),
        poll_seconds=poll_seconds,
    )
    # SIGTERM and SIGINT raise KeyboardInterrupt here, except in the middle of a storage write.
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    own = signals.install(launcher=True)
    try:
        with signals.armed() if own else contextlib.nullcontext():
            return run.run()
    except StorageError:
        with signals.quiet():  # the storage failed under a worker or here: stop everything, say it once
            run.stop_all()
        raise
    except KeyboardInterrupt:
        with signals.quiet():
            run.interrupted()
        raise SweepInterrupted(
            f"sweep {config.name!r} interrupted; its trials in flight were marked failed. "
            f"Run the same command again to resume."
        ) from None
    finally:
        with signals.quiet():
            run.release_workers()  # whatever happened above: no worker outlives the run
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _check_launch(launch: Launch) -> None:
    if launch.backend not in BACKENDS:
        raise ParameterError("backend", f" must be one of {sorted(BACKENDS)}, but got {launch.backend!r}.")
    if launch.backend == "dask" and not launch.scheduler:
        raise ParameterError(
            "scheduler", " is needed with backend 'dask' (the dask scheduler's address, tcp://HOST:PORT)."
        )


# A run's last MLflow sync draws summary figures for about this long once its runs are written:
# the command returns within about two seconds of the last trial ('sweep sync' draws what was left).
FIGURES_AT_END_SECONDS = 1.0


class _Run:
    """One run of a sweep, step by step: open the studies (:meth:`open`), start the MLflow
    writer, run the workers in rounds until the totals are reached (:meth:`rounds`), and finish
    (:meth:`finish`); :meth:`interrupted` and :meth:`stop_all` tidy up after a stop or a failure."""

    def __init__(
        self,
        config: SweepConfig,
        storage_url: str,
        tracking_uri: str | None,
        *,
        track: bool,
        launch: Launch,
        create: bool,
        events: RunEvents,
        poll_seconds: float,
    ) -> None:
        self.config, self.storage_url, self.tracking_uri = config, storage_url, tracking_uri
        self.track, self.launch, self.create, self.events = track, launch, create, events
        self.poll_seconds = poll_seconds
        self.token = uuid.uuid4().hex[:12]  # this launcher's: 'stop.<token>' in the storage stops its workers
        self.pool: list = []  # the loky executor, once started
        self.writer: MlflowWriter | None = None
        self.studies: list[optuna.Study] = []
        self.view: SweepStorage | None = None
        self.started = signals.received()
        self.jobs = config.jobs or default_jobs(track=track)

    def run(self) -> RunResult:
        self.open()
        if self.track:
            # A stop signal while the writer process spawns would cut its start-up data short (the
            # child then dies with a traceback on the console): it takes effect once the writer is ours.
            with signals.critical():
                self.writer = MlflowWriter(self.config.name, self.storage_url, self.tracking_uri, warn=self.events.warn)
        summaries = self.rounds()
        self.release_workers()  # idle from here: their CPU goes to MLflow's last sync
        return self.finish(summaries)

    def open(self) -> None:
        """Warm the workers up, open (or create) the studies, tidy what a killed run left, and
        warm-start new studies from another sweep."""
        config, launch = self.config, self.launch
        if launch.backend == "loky":  # the workers import while this process opens the studies
            ex = executor(self.jobs)
            self.pool.append(ex)
            for _ in range(self.jobs):
                ex.submit(warm_up, storage_kind(self.storage_url))
        # The warm start's sweep must exist before anything is written (and is read from here).
        source = open_source(config, self.storage_url) if self.create and config.warm_start is not None else None
        storage = open_storage(
            self.storage_url, heartbeat_interval=launch.heartbeat_interval, grace_period=launch.grace_period
        )
        # A storage that opens but can't be written (full, read-only): one line, no traceback.
        with signals.critical(), storage_errors(self.storage_url):
            self.studies = open_sweep(config, storage) if self.create else _load_studies(config, storage)
            for study in self.studies:
                recover(study)
            if self.create:  # a new run tries the halted studies again
                for dataset in halted(self.studies[0]):
                    self.studies[0].set_user_attr(f"halted.{dataset}", None)
            set_budget(config, self.studies, create=self.create)
        if source is not None:  # before any trial is asked: each study once, whoever runs it first
            warm_start(config, self.studies, source, storage_url=self.storage_url, say=self.events.note)
        # The launcher's view: summaries read incrementally, whatever the size of the studies.
        self.view = SweepStorage(storage, refresh_seconds=0.0, name=redact(self.storage_url), read_unfinished=False)

    def refresh(self) -> list[StudySummary]:
        """Fresh summaries and MLflow's state, told to the caller."""
        assert self.view is not None
        summaries = summarize(self.view, self.config.name)
        self.events.progress(summaries)
        if self.writer is not None:
            self.events.mlflow(self.writer.poll())
        return summaries

    def tasks(self) -> list[WorkerTask]:
        # loky's workers are this process's children: they watch this pid, which catches a
        # launcher killed before a worker's task began (its parent then is already init)
        launcher = os.getpid() if self.launch.backend == "loky" else 0
        config = _absolute_datasets(self.config)
        return [
            WorkerTask(
                self.storage_url,
                config,
                i,
                self.launch.heartbeat_interval,
                self.launch.grace_period,
                self.token,
                launcher,
            )
            for i in range(self.jobs)
        ]

    def rounds(self) -> list[StudySummary]:
        """Run the workers until every study has its total: again after a worker died (its trial
        re-run), at most ``MAX_ROUNDS`` times, and not again when a round made no progress."""
        summaries, tasks = self.refresh(), self.tasks()
        for _ in range(MAX_ROUNDS):
            if _complete(summaries):
                break
            before = sum(s.finished for s in summaries)
            summaries, crashed = run_round(self.launch, tasks, self.pool, self.refresh, self.poll_seconds)
            if signals.received() != self.started:
                raise KeyboardInterrupt  # a worker stopped by the same signal: not a crash
            with signals.critical():
                for study in self.studies:
                    recover(study)
            if crashed:
                self.events.warn(f"a worker process died ({crashed}); its trial was marked failed and will be re-run.")
                summaries = self.refresh()
                continue
            if sum(s.finished for s in summaries) == before:
                break  # no progress: failing trials; the summary shows them
        return summaries

    def finish(self, summaries: list[StudySummary]) -> RunResult:
        """Wait for MLflow's last sync (Ctrl-C there leaves it to 'sweep sync'), then say how the
        run ended: interrupted, halted, or done."""
        status = None
        if self.writer is not None:
            status, interrupted = _finish_mlflow(self.writer, self.events)
            if interrupted:
                self.started = signals.received()  # Ctrl-C only skipped the wait for MLflow: the sweep is done
            self.writer = None
        summaries = self.refresh()
        if signals.received() != self.started:
            raise KeyboardInterrupt  # stopped while finishing: say so, never report success
        stopped = halted(self.studies[0])
        if stopped:
            dataset, why = sorted(stopped.items())[0]
            raise SweepHalted(
                f"sweep {self.config.name!r} stopped: the first {HALT_AFTER} trials of dataset {dataset!r} all "
                f"failed alike ({why}), so would the others. Fix the cause ('sweep status "
                f"{self.config.name}' shows the counts), then run the same command again."
            )
        return RunResult(summaries, status)

    def release_workers(self) -> None:
        """Stop the loky workers for good (idempotent). Left to the interpreter's exit, an idle
        worker can wait for a lock loky's manager thread holds while it joins that worker: the
        process would hang at exit (seen after Ctrl-C once its output pipe had broken)."""
        if self.pool and self.launch.backend == "loky" and stop_workers(self.pool[-1]):
            # Some had to be killed (a loaded machine, a long NumPy call): their trials fail now,
            # not when the next run finds them; an interrupted run does it again on a fresh storage.
            with signals.quiet(), contextlib.suppress(Exception):
                for study in self.studies:
                    fail_orphans(study)
        self.pool.clear()

    def stop_all(self) -> None:
        """Stop the workers and the writer (after a storage failure)."""
        self.release_workers()
        if self.writer is not None:
            self.writer.stop()

    def interrupted(self) -> None:
        """Stop the workers and leave the studies consistent after SIGINT/SIGTERM.

        The interrupt may have landed in the middle of a storage call, leaving that connection
        unusable: the clean-up opens the storage afresh. MLflow's writer stops after the run it
        is writing; the next run (or ``sweep sync``) writes the rest.
        """
        config, launch, say = self.config, self.launch, self.events.warn
        try:
            storage = open_storage(
                self.storage_url, heartbeat_interval=launch.heartbeat_interval, grace_period=launch.grace_period
            )
            studies = _load_studies(config, storage)
            studies[0].set_user_attr(f"stop.{self.token}", True)  # workers that can't be signalled (dask) stop too
        except Exception as exc:  # noqa: BLE001 - stopping must not fail; the next run recovers
            say(f"could not record the stop in the storage ({type(exc).__name__}); the next 'sweep run' tidies up.")
            self.stop_all()
            return
        self.stop_all()
        try:
            for study in studies:
                fail_orphans(study)
            self.events.progress(summarize(storage, config.name))
        except Exception as exc:  # noqa: BLE001
            say(f"could not finish tidying up ({type(exc).__name__}); the next 'sweep run' does it.")


def _finish_mlflow(writer: MlflowWriter, events: RunEvents) -> tuple[MlflowStatus, bool]:
    """Wait for the writer's last sync (the display says how far it is); Ctrl-C (or SIGTERM)
    stops the wait, leaving the rest to ``sweep sync``. Returns its status and whether the wait
    was interrupted."""
    interrupted = False
    try:
        status = writer.finish(on_status=events.mlflow, figures_seconds=FIGURES_AT_END_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
        with signals.quiet():
            status = writer.stop(why="interrupted")
    events.mlflow(status)
    return status, interrupted


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


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
