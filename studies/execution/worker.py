"""A worker process: loads the sweep's studies from the storage and asks for trials until
every study has its total of finished trials.

No lock is held around training: workers coordinate through the storage only. When
several workers ask for the last slots at once, the trials numbered beyond the total
withdraw before training (they are failed and marked ``surplus``), so each study ends
with exactly its total.

The worker reads and writes the storage through a :class:`~studies.storage.adaptor.SweepStorage`:
its trials' parameters are written together after each sampled batch, their reports,
records and final states together after each step in which some ended (and every
``FLUSH_SECONDS`` while they run), and other workers' trials are read incrementally.
"""

from __future__ import annotations

import contextlib
import re
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.trial import TrialState

from studies import _optuna_compat as compat
from studies.execution import signals
from studies.execution.heartbeat import Heartbeat, heartbeat_enabled
from studies.execution.processes import process_identity
from studies.execution.recovery import requeue
from studies.search import (
    Limits,
    is_surplus,
    live_counts,
    make_pruner,
    make_sampler,
    needs_work,
    pruner_startup,
    run_trial,
    scouting,
    tell,
)
from studies.storage import DEFAULT_STORAGE, StorageError, SweepStorage, open_storage, redact
from studies.sweep import STOPPED_ATTR, SweepConfig, converged, deadline_of, stopped_record

if TYPE_CHECKING:
    from studies.search import Finished, Pool

__all__ = [
    "WorkerTask",
    "WorkerResult",
    "Interrupted",
    "work",
    "halted",
    "sampler_seed",
    "FLUSH_SECONDS",
    "REFRESH_SECONDS",
    "HALT_AFTER",
    "ASK_AT_ONCE",
]

Interrupted = signals.Interrupted
# Other workers' trials are read again at most this often (pruning and sampling see them this late).
REFRESH_SECONDS = 1.0
# Trials created by one ask, however large the stack or the total: a stack fills in a few steps,
# and a stop never waits for thousands of new trials (each withdrawal reads the study's trials).
ASK_AT_ONCE = 64
# Running trials' reports reach the storage at least this often (dashboards, other workers' pruners).
FLUSH_SECONDS = 2.0
# How often a worker looks for the launcher's stop request (workers that cannot be signalled: dask),
# a halted study, and the sweep's deadline (a new budget, set by another process).
STOP_CHECK_SECONDS = 0.5
# A study whose trials all failed so far, the last HALT_AFTER alike, is halted: the cause would
# fail every trial (a bug, a resource no trial can have), so the budget is not burnt on it.
HALT_AFTER = 3


@dataclass(frozen=True)
class WorkerTask:
    storage: str | None
    config: SweepConfig
    index: int
    heartbeat_interval: int = 10
    grace_period: int = 30
    token: str = ""  # the launching process's; ``stop.<token>`` in the first study stops the worker
    launcher: int = 0  # the launching process's pid, when it is the worker's parent (loky); 0: unknown


@dataclass(frozen=True)
class WorkerResult:
    """What a worker did: trials by outcome, trials another process finished under it (a
    stale heartbeat), and the seconds it spent in the storage by kind of call."""

    counts: dict[str, int]
    lost: int
    storage: dict[str, float]


def sampler_seed(config: SweepConfig, worker: int, dataset_index: int) -> int:
    """Each worker's sampler has its own stream (so that workers don't propose alike); QMC and
    grid coordinate through the storage and share one seed."""
    if config.sampler.name in ("grid", "qmc"):
        return config.seed
    return int(np.random.SeedSequence([config.seed, worker, dataset_index]).generate_state(1)[0])


def _error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[-2000:]


def _alike(error: str) -> str:
    """What failures with the same cause share: the message's last line, numbers aside."""
    return re.sub(r"\d+(\.\d+)?", "#", (error.strip().splitlines() or [""])[-1])


def halted(study: optuna.Study) -> dict[str, str]:
    """Dataset -> why its study was halted (recorded in the sweep's first study)."""
    return {k[len("halted.") :]: v for k, v in study.user_attrs.items() if k.startswith("halted.") and v}


class _Worker:
    """One worker process's studies, storage view, heartbeat and counts."""

    def __init__(self, task: WorkerTask) -> None:
        config = task.config
        self.task, self.config = task, config
        self.backend = open_storage(
            task.storage, heartbeat_interval=task.heartbeat_interval, grace_period=task.grace_period, checked=True
        )
        self.storage = SweepStorage(
            self.backend,
            refresh_seconds=REFRESH_SECONDS,
            identity={"worker": process_identity()},
            guard=signals.critical,
            name=redact(task.storage or DEFAULT_STORAGE),
        )
        self.refs = list(config.datasets)
        self.datasets = {ref.name: ref.load(seed=config.seed) for ref in self.refs}
        self.studies = [
            optuna.load_study(
                study_name=config.study_name(ref),
                storage=self.storage,
                sampler=make_sampler(config.sampler, seed=sampler_seed(config, task.index, k), space=config.space),
                pruner=make_pruner(config.pruner),
            )
            for k, ref in enumerate(self.refs)
        ]
        self.heartbeats = heartbeat_enabled(self.backend)
        self._plain: list[optuna.Study] | None = None  # the same studies without the view (heartbeat checks)
        self.counts: Counter[str] = Counter()
        self.failures: Counter[int] = Counter()
        self.lost = 0  # trials another process finished under us (stale heartbeat)
        self.recent: dict[int, list[str]] = {}  # study -> its latest failures' causes
        self.halted: set[int] = set()
        self.limits = Limits(trial_budget=config.trial_budget, deadline=deadline_of(self.studies[0].user_attrs))
        # a study stopped on convergence stays stopped, whatever the sweep's 'stop' says now
        self.limits.stopped = {k for k, s in enumerate(self.studies) if s.user_attrs.get(STOPPED_ATTR)}
        self._next_stop = self._next_stale = self._last_flush = 0.0
        self._stopping = False

    # -- storage ---------------------------------------------------------------------------------

    def flush(self) -> None:
        result = self.storage.flush()
        self.lost += len(result.dropped)
        self._last_flush = time.monotonic()

    def flush_if_due(self) -> None:
        if self.storage.pending() and time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def between_epochs(self) -> None:
        """A trial trained alone: its queued records written, and the deadline read again (a
        new budget given meanwhile)."""
        self.flush_if_due()
        self.stop_requested()

    def stop_requested(self) -> bool:
        """The launcher asked its workers to stop (checked every STOP_CHECK_SECONDS, with the
        halted studies and the sweep's deadline)."""
        now = time.monotonic()
        if now >= self._next_stop:
            self._next_stop = now + STOP_CHECK_SECONDS
            attrs = self.studies[0].user_attrs
            self._stopping = bool(self.task.token and attrs.get(f"stop.{self.task.token}"))
            names = {ref.name: k for k, ref in enumerate(self.refs)}
            self.halted |= {names[d] for d in halted(self.studies[0]) if d in names}
            self.limits.deadline = deadline_of(attrs)
        return self._stopping

    def fail_stale(self, *, now: bool = False) -> None:
        """Heartbeat storages: fail (and retry) trials of dead workers, in every study, once per
        heartbeat interval."""
        if not self.heartbeats or (not now and time.monotonic() < self._next_stale):
            return
        self._next_stale = time.monotonic() + self.task.heartbeat_interval
        if self._plain is None:
            self._plain = [optuna.load_study(study_name=s.study_name, storage=self.backend) for s in self.studies]
        for study, plain in zip(self.studies, self._plain):
            optuna.storages.fail_stale_trials(plain)
            self.storage.refresh(compat.study_id(study))

    # -- trials ----------------------------------------------------------------------------------

    def ask(self, k: int, n: int) -> list[optuna.Trial]:
        """Ask study ``k`` for up to ``n`` trials while it needs them; trials numbered beyond
        its total withdraw at once (failed and marked ``surplus``)."""
        study, total, store = self.studies[k], self.config.trials, self.storage
        # How many to ask, from a view at most REFRESH_SECONDS old; the exact total is kept by
        # the withdrawal below, from a current view.
        finished, running, waiting = live_counts(study)
        n = min(n, ASK_AT_ONCE, waiting + max(0, total - finished - len(running)))
        if n <= 0:
            return []
        # The trials the asks will create, in one transaction (enqueued retries are taken first).
        store.reserve(compat.study_id(study), n - min(n, waiting))
        trials = [study.ask() for _ in range(n)]
        store.refresh(compat.study_id(study))  # other workers' trials asked meanwhile
        withdraw = [t for t in trials if is_surplus(study, t, total)]
        for trial_id in store.release(compat.study_id(study)):  # an enqueued trial came first: unused
            store.set_trial_user_attr(trial_id, "surplus", True)
            store.set_trial_state_values(trial_id, TrialState.FAIL)
        for trial in withdraw:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
        return [t for t in trials if t not in withdraw]

    def fail(self, k: int, trials: list[optuna.Trial], error: str, *, count: bool = True) -> None:
        """Fail trials after an error (recorded on each, and counted) and enqueue their parameters again."""
        study = self.studies[k]
        for trial in trials:
            trial.set_user_attr("error", error)
            study.tell(trial, state=TrialState.FAIL)
            requeue(study, self.storage.get_trial(compat.trial_id(trial)))
        if count:
            self.counts["failed"] += len(trials)
            self.failures[k] += len(trials)
            recent = self.recent.setdefault(k, [])
            recent += [_alike(error)] * len(trials)
            del recent[:-HALT_AFTER]
            if (
                len(recent) == HALT_AFTER
                and len(set(recent)) == 1
                and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            ):
                self.halted.add(k)
                self.studies[0].set_user_attr(f"halted.{self.refs[k].name}", error.splitlines()[-1][:500])
        self.flush()

    def abandon(self, error: str) -> None:
        """Fail every trial of this process still running (after a stop); written at once."""
        for trial_id in self.storage.owned():
            with contextlib.suppress(Exception):
                self.storage.set_trial_user_attr(trial_id, "error", error)
                self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        self.flush()

    def converged(self, k: int) -> bool:
        """Whether study ``k`` is stopped on convergence: recorded (by any process), or found
        now in its finished trials (then recorded, and its running trials cut at their next epoch)."""
        stop = self.config.stop
        if k in self.limits.stopped:
            return True
        if stop is None or self.config.multi:
            return False
        study = self.studies[k]
        number = converged(study.get_trials(deepcopy=False), stop, study.direction.name.lower())
        if number is None:
            return False
        self.limits.stopped.add(k)
        if not study.user_attrs.get(STOPPED_ATTR):  # another worker may have found it first
            study.set_user_attr(STOPPED_ATTR, stopped_record(number, stop))
        return True

    def wanted(self, k: int) -> bool:
        return (
            k not in self.halted
            and not self.limits.expired()
            and self.failures[k] <= self.config.trials
            and not self.converged(k)
            and needs_work(self.studies[k], self.config.trials)
        )

    def expire(self, pool: Pool) -> list[Finished]:
        """The deadline passed (as this step began): the pool's trials stop without another epoch;
        those that never trained withdraw, as surplus trials do (outcome ``None``, never counted)."""
        finished, unstarted = pool.expire()
        for k, trial in unstarted:
            trial.set_user_attr("surplus", True)
            self.studies[k].tell(trial, state=TrialState.FAIL)
        return finished

    def candidates(self, sticky: int | None, order: list[int]) -> list[int]:
        """The studies to fill, best first: the one being filled, then the worker's order. With a
        time budget the studies least advanced come first instead, so that the budget is shared
        among them rather than spent on the first one (totals then are rarely all reached)."""
        wanted = [k for k in dict.fromkeys(([sticky] if sticky is not None else []) + order) if self.wanted(k)]
        if self.limits.deadline is None:
            return wanted

        def advanced(k: int) -> int:
            finished, running, waiting = live_counts(self.studies[k])
            return finished + len(running)

        return sorted(wanted, key=advanced)  # stable: ties keep the worker's order

    # -- loops -----------------------------------------------------------------------------------

    def run_single(self) -> None:
        """``stack`` = 1: one network at a time, the studies in turn."""
        refs, config = self.refs, self.config
        turn = self.task.index
        waiter = _Waiter(self)
        while not self.stop_requested():
            self.fail_stale()
            order = [(turn + j) % len(refs) for j in range(len(refs))]
            pick = next((k for k in order if self.wanted(k)), None)
            if pick is None:
                if waiter.wait():
                    continue
                break
            turn = pick + 1
            trials = self.ask(pick, 1)
            if not trials:
                self.flush()
                continue
            trial = trials[0]
            try:
                result = run_trial(
                    trial,
                    self.datasets[refs[pick].name],
                    config,
                    on_sampled=self.flush,
                    on_epoch=self.between_epochs,
                    cut=self.limits.cutter(pick),
                )
            except StorageError:
                raise  # not the trial's fault: the worker stops, the launcher says why
            except Exception as exc:  # a bug or a resource error: record it, retry the parameters later
                self.fail(pick, [trial], _error(exc))
                continue
            tell(self.studies[pick], trial, result)
            self.counts[result.outcome] += 1
            self.flush()

    def run_pooled(self) -> None:
        """``stack`` > 1: keep up to ``stack`` trials training in stacks, refilled as trials end
        (continuous batching, see :mod:`studies.search.pool`)."""
        from studies.search import Pool

        config, refs = self.config, self.refs
        slots = config.stack
        refill = max(1, slots // 4)  # ask when this many slots are free: one sampler fit per refill
        pool = Pool(config, limits=self.limits)
        sticky: int | None = None  # the study being filled: one study at a time keeps stacks full
        order = [(self.task.index + j) % len(refs) for j in range(len(refs))]
        waiter = _Waiter(self)
        # Scouts: a study's first trials start alone, as many as its pruner needs complete. Trials
        # that started with them could only be pruned once they end, so a full first stack would
        # train to the end (and then be the lenient yardstick of every later trial); meanwhile
        # free slots go to other studies' scouts, or stay free.
        startup = pruner_startup(config.pruner)
        scouted: set[int] = set()

        def room(k: int, free: int) -> int:
            if k in scouted or not startup:
                return free
            n = scouting(self.studies[k], startup)
            if n is None:
                scouted.add(k)
                return free
            return min(free, n)

        def fail_all(trials: list[tuple[int, optuna.Trial]], error: str, count: bool) -> None:
            for k in sorted({k for k, _ in trials}):
                self.fail(k, [t for j, t in trials if j == k], error, count=count)

        while True:
            if self.stop_requested():
                fail_all(pool.abandon(), "interrupted", count=False)  # not a failure of theirs
                break
            self.fail_stale()
            live = len(pool)
            if slots - live >= refill or live == 0:
                free = slots - live
                candidates = self.candidates(sticky, order)
                pick, n = next(((k, r) for k in candidates if (r := room(k, free)) > 0), (None, 0))
                if pick is None and candidates and live == 0:
                    pick, n = candidates[0], free  # only others' scouts left: don't sit idle
                if pick is None and live == 0:
                    if waiter.wait():
                        continue
                    break
                if pick is not None:
                    if n == free:
                        sticky = pick
                    trials = self.ask(pick, n)
                    if trials:
                        try:
                            pool.add(pick, self.studies[pick].sampler, self.datasets[refs[pick].name], trials)
                        except StorageError:
                            raise
                        except Exception as exc:  # a bug or a resource error: record it, retry later
                            fail_all([(pick, t) for t in trials], _error(exc), count=True)
                    self.flush()  # the new trials' parameters, for other workers' samplers
            try:
                finished = self.expire(pool) if self.limits.expired() else pool.step()
            except StorageError:
                raise
            except Exception as exc:
                fail_all(pool.abandon(), _error(exc), count=True)
                continue
            for f in finished:
                tell(self.studies[f.study], f.trial, f.result)
                self.counts[f.result.outcome] += 1
            if finished:
                self.flush()
                for k in {f.study for f in finished}:
                    self.converged(k)  # its running trials stop at their next epoch: slots for the others
            else:
                self.flush_if_due()


class _Waiter:
    """Whether a worker with nothing left to ask should stay: on a storage with heartbeats,
    while other workers' trials run, so that it fails and retries those of a host that died
    (Optuna's heartbeat does it only when some process calls ``fail_stale_trials``).

    It gives up once the running trials have not changed for two grace periods: they are
    alive (long trials of a live host) or carry no heartbeat at all.
    """

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.last: set[tuple[int, int]] = set()
        self.since = 0.0

    def wait(self) -> bool:
        """Sleep a moment and return True if the worker should look for work again."""
        w = self.worker
        if not w.heartbeats:
            return False
        if w.limits.expired():  # past the sweep's deadline no retry could start: fail the stale, and go
            w.fail_stale(now=True)
            return False
        for study in w.studies:
            w.storage.refresh(compat.study_id(study))
        running = {
            (k, t.number)
            for k, study in enumerate(w.studies)
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        if not running:
            return False
        now = time.monotonic()
        if running != self.last:
            self.last, self.since = running, now
        if now - self.since > 2 * w.task.grace_period + w.task.heartbeat_interval:
            return False
        w.fail_stale()
        time.sleep(min(1.0, w.task.heartbeat_interval))  # leave soon after the last trial ends
        return True


def work(task: WorkerTask) -> WorkerResult:
    """Run trials until every study of the sweep has its total; returns what it did.

    On SIGTERM or Ctrl-C the trials in flight are failed (never left RUNNING) and the
    process leaves at once.
    """
    in_main = signals.install()
    if in_main:
        signals.watch_parent(parent=task.launcher or None)  # the launcher killed (SIGKILL): fail our trials and leave
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    worker: _Worker | None = None
    try:
        with signals.armed():
            worker = _Worker(task)
            backend = worker.backend  # heartbeats: an RDB storage
            if worker.heartbeats and isinstance(backend, optuna.storages.RDBStorage):
                beat: contextlib.AbstractContextManager = Heartbeat(backend, worker.storage.owned)
            else:
                beat = contextlib.nullcontext()
            with beat:
                # repeats: a trial's seeds share a stack; stack_shape: the stack's shape sets the sums
                if task.config.stack > 1 or task.config.repeats > 1 or task.config.stack_shape is not None:
                    worker.run_pooled()
                else:
                    worker.run_single()
            return WorkerResult(dict(worker.counts), worker.lost, dict(worker.storage.stats))
    except (KeyboardInterrupt, Interrupted):
        if worker is not None:
            with signals.quiet(), contextlib.suppress(Exception):
                worker.abandon("interrupted")
        if in_main:
            import os

            os._exit(130)  # a loky worker would otherwise wait for more work; the sweep is stopping
        raise
