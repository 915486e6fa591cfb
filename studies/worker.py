"""A worker process: loads the sweep's studies from the storage and asks for trials until
every study has its total of finished trials.

No lock is held around training: workers coordinate through the storage only. When
several workers ask for the last slots at once, the trials numbered beyond the total
withdraw before training (they are failed and marked ``surplus``), so each study ends
with exactly its total.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from studies.config import SweepConfig
from studies.objective import run_trial, tell
from studies.outcomes import outcome_of
from studies.samplers import make_pruner, make_sampler, pruner_startup
from studies.storage import open_storage

__all__ = ["WorkerTask", "Interrupted", "work", "process_identity", "process_alive", "sampler_seed", "requeue"]

MAX_RETRIES = 2


class Interrupted(BaseException):
    """Raised in a worker on SIGTERM, so that its trial is failed rather than left RUNNING."""


@dataclass(frozen=True)
class WorkerTask:
    storage: str | None
    config: SweepConfig
    index: int
    heartbeat_interval: int = 10
    grace_period: int = 30
    token: str = ""  # the launching process's; ``stop.<token>`` in the first study stops the worker


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_identity() -> dict[str, object]:
    """Host, pid and the pid's start time: enough to tell later whether this process is gone."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def process_alive(identity: dict[str, object]) -> bool | None:
    """True/False for a process of this host, ``None`` when it ran elsewhere (can't tell)."""
    if identity.get("host") != socket.gethostname():
        return None
    pid = int(identity.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = identity.get("start")
    return start is None or _start_time(pid) == start


def sampler_seed(config: SweepConfig, worker: int, dataset_index: int) -> int:
    """Each worker's sampler has its own stream (so that workers don't propose alike); QMC and
    grid coordinate through the storage and share one seed."""
    if config.sampler.name in ("grid", "qmc"):
        return config.seed
    return int(np.random.SeedSequence([config.seed, worker, dataset_index]).generate_state(1)[0])


def _live_counts(study: optuna.Study) -> tuple[int, list[int], int]:
    """(finished, numbers of running trials, waiting) of a study."""
    finished, running, waiting = 0, [], 0
    for t in study.get_trials(deepcopy=False):
        o = outcome_of(t)
        if o in ("complete", "pruned", "diverged"):
            finished += 1
        elif o == "running":
            running.append(t.number)
        elif o == "waiting":
            waiting += 1
    return finished, running, waiting


def _needs_work(study: optuna.Study, total: int) -> bool:
    finished, running, waiting = _live_counts(study)
    return waiting > 0 or finished + len(running) < total


def _scouting(study: optuna.Study, startup: int) -> int | None:
    """While a study has fewer complete trials than its pruner needs: how many more trials
    may start (its first ones, the scouts, minus those running); ``None`` once it has them."""
    complete = running = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.state == TrialState.COMPLETE:
            complete += 1
        else:
            running += 1
    if complete >= startup:
        return None
    return max(0, startup - complete - running)


def _is_surplus(study: optuna.Study, trial: optuna.Trial, total: int) -> bool:
    finished, running, waiting = _live_counts(study)
    excess = finished + len(running) + waiting - total
    return excess > 0 and trial.number in sorted(running)[-excess:]


def requeue(study: optuna.Study, failed: optuna.trial.FrozenTrial) -> bool:
    """Enqueue a failed trial's parameters again (up to MAX_RETRIES times); True if enqueued."""
    retries = int(failed.user_attrs.get("retry", 0))
    if retries >= MAX_RETRIES or not failed.params:
        return False
    study.enqueue_trial(dict(failed.params), user_attrs={"retry_of": failed.number, "retry": retries + 1})
    return True


def _ask(study: optuna.Study, config: SweepConfig, identity: dict[str, object],
         current: _InFlight, n: int) -> list[optuna.Trial]:
    """Ask for up to ``n`` trials while the study needs them; a trial numbered beyond the
    total withdraws at once (failed and marked ``surplus``)."""
    trials: list[optuna.Trial] = []
    for _ in range(n):
        if trials and not _needs_work(study, config.trials):
            break
        optuna.storages.fail_stale_trials(study)  # RDB heartbeat: fail (and retry) trials of dead workers
        trial = study.ask()
        current.add(study, trial)
        trial.set_user_attr("worker", identity)
        if _is_surplus(study, trial, config.trials):
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            current.end(trial)
            break
        trials.append(trial)
    return trials


def _fail(study: optuna.Study, trials: list[optuna.Trial], error: str,
          current: _InFlight, counts: Counter[str] | None = None) -> None:
    """Fail trials after an error (recorded on each, and counted) and enqueue their parameters again."""
    if counts is not None:
        counts["failed"] += len(trials)
    for trial in trials:
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        requeue(study, study._storage.get_trial(trial._trial_id))
        current.end(trial)


class _Waiter:
    """Whether a worker with nothing left to ask should stay: on a storage with heartbeats,
    while other workers' trials run, so that it fails and retries those of a host that died
    (Optuna's heartbeat does it only when some process calls ``fail_stale_trials``).

    It gives up once the running trials have not changed for two grace periods: they are
    alive (long trials of a live host) or carry no heartbeat at all.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, studies: list[optuna.Study], task: WorkerTask) -> None:
        from optuna.storages._heartbeat import is_heartbeat_enabled

        self.enabled = is_heartbeat_enabled(storage)
        self.studies, self.task = studies, task
        self.last: set[tuple[int, int]] = set()
        self.since = self.checked = 0.0

    def wait(self) -> bool:
        """Sleep a moment and return True if the worker should look for work again."""
        if not self.enabled:
            return False
        running = {(k, t.number) for k, study in enumerate(self.studies)
                   for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        if not running:
            return False
        now = time.monotonic()
        if running != self.last:
            self.last, self.since = running, now
        if now - self.since > 2 * self.task.grace_period + self.task.heartbeat_interval:
            return False
        if now - self.checked >= self.task.heartbeat_interval:
            self.checked = now
            for study in self.studies:
                optuna.storages.fail_stale_trials(study)
        time.sleep(min(1.0, self.task.heartbeat_interval))  # leave soon after the last trial ends
        return True


def _error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[-2000:]


def _work_pooled(task: WorkerTask, storage: optuna.storages.BaseStorage, identity: dict[str, object],
                 refs: list, datasets: dict, studies: list[optuna.Study],
                 current: _InFlight, counts: Counter[str],
                 failures: Counter[int]) -> dict[str, int]:
    """``batch`` > 1: keep up to ``batch`` trials training in stacks, refilled as trials end
    (continuous batching, see :mod:`studies.pool`)."""
    from studies.pool import Pool

    config = task.config
    slots = config.batch
    refill = max(1, slots // 4)  # ask when this many slots are free: one sampler fit per refill
    pool = Pool(config)
    sticky: int | None = None  # the study being filled: one study at a time keeps stacks full
    order = [(task.index + j) % len(refs) for j in range(len(refs))]
    next_stale = 0.0
    waiter = _Waiter(storage, studies, task)
    # Scouts: a study's first trials start alone, as many as its pruner needs complete. Trials
    # that started with them could only be pruned once they end, so a full first stack would
    # train to the end (and then be the lenient yardstick of every later trial); meanwhile
    # free slots go to other studies' scouts, or stay free.
    startup = pruner_startup(config.pruner)
    scouted: set[int] = set()

    def wanted(k: int) -> bool:
        return failures[k] <= config.trials and _needs_work(studies[k], config.trials)

    def room(k: int, free: int) -> int:
        if k in scouted or not startup:
            return free
        n = _scouting(studies[k], startup)
        if n is None:
            scouted.add(k)
            return free
        return min(free, n)

    def fail_all(trials: list[tuple[int, optuna.Trial]], error: str, count: bool) -> None:
        for k in sorted({k for k, _ in trials}):
            mine = [t for j, t in trials if j == k]
            _fail(studies[k], mine, error, current, counts if count else None)
            if count:
                failures[k] += len(mine)

    while True:
        if task.token and studies[0].user_attrs.get(f"stop.{task.token}"):
            fail_all(pool.abandon(), "interrupted", count=False)  # not a failure of theirs
            break
        if time.monotonic() >= next_stale:
            # RDB heartbeat: fail (and retry) trials of dead workers, whichever study they are in
            # (asks are rarer here than one per trial).
            for study in studies:
                optuna.storages.fail_stale_trials(study)
            next_stale = time.monotonic() + task.heartbeat_interval
        live = len(pool)
        if slots - live >= refill or live == 0:
            free = slots - live
            candidates = [k for k in ([sticky] if sticky is not None else []) + order if wanted(k)]
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
                trials = _ask(studies[pick], config, identity, current, n)
                if trials:
                    try:
                        pool.add(pick, studies[pick].sampler, datasets[refs[pick].name], trials)
                    except Exception as exc:  # a bug or a resource error: record it, retry the parameters later
                        fail_all([(pick, t) for t in trials], _error(exc), count=True)
        try:
            finished = pool.step()
        except Exception as exc:
            fail_all(pool.abandon(), _error(exc), count=True)
            continue
        for f in finished:
            tell(studies[f.study], f.trial, f.result)
            current.end(f.trial)
            counts[f.result.outcome] += 1
    return dict(counts)


class _InFlight:
    """The trials this worker has asked and not yet told, each with its heartbeat from the
    moment it is asked (a storage with heartbeats only): so no trial of this worker is ever
    RUNNING without one, and a host that dies is noticed whatever it was doing."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[optuna.Study, optuna.Trial, contextlib.AbstractContextManager | None]] = {}
        self._storage: optuna.storages.BaseStorage | None = None

    def bind(self, storage: optuna.storages.BaseStorage) -> None:
        from optuna.storages._heartbeat import is_heartbeat_enabled

        self._storage = storage if is_heartbeat_enabled(storage) else None

    def add(self, study: optuna.Study, trial: optuna.Trial) -> None:
        beat = None
        if self._storage is not None:
            from optuna.storages._heartbeat import get_heartbeat_thread  # what Study.optimize uses

            self._storage.record_heartbeat(trial._trial_id)  # at once, not when the thread first runs
            beat = get_heartbeat_thread(trial._trial_id, self._storage)
            beat.__enter__()
        self._items[trial._trial_id] = (study, trial, beat)

    def end(self, trial: optuna.Trial) -> None:
        _, _, beat = self._items.pop(trial._trial_id, (None, None, None))
        if beat is not None:
            with contextlib.suppress(Exception):
                beat.__exit__(None, None, None)

    def __iter__(self):  # noqa: ANN204
        return iter([(study, trial) for study, trial, _ in self._items.values()])


_IN_WORK = False  # whether this process is inside work() (else it idles in loky's loop)


def _on_stop_signal(signum: int, frame: object) -> None:
    # Inside work(): raise, so that the trial in flight is failed. Between tasks: nothing is
    # in flight; leave quietly rather than let the executor's loop print a traceback.
    if _IN_WORK:
        raise Interrupted()
    os._exit(128 + signum)


def work(task: WorkerTask) -> dict[str, int]:
    """Run trials until every study of the sweep has its total; returns counts by outcome.

    On SIGTERM or Ctrl-C the trial in flight is failed (never left RUNNING) and the
    process leaves at once.
    """
    global _IN_WORK
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _on_stop_signal)
        signal.signal(signal.SIGINT, _on_stop_signal)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    current = _InFlight()
    _IN_WORK = True
    try:
        return _work(task, current)
    except (KeyboardInterrupt, Interrupted):
        for study, trial in list(current):
            with contextlib.suppress(Exception):
                trial.set_user_attr("error", "interrupted")
                study.tell(trial, state=TrialState.FAIL)
        if in_main:
            # A loky worker would otherwise wait for more work; the sweep is stopping.
            os._exit(130)
        raise
    finally:
        _IN_WORK = False


def _work(task: WorkerTask, current: _InFlight) -> dict[str, int]:
    config = task.config
    storage = open_storage(task.storage, heartbeat_interval=task.heartbeat_interval, grace_period=task.grace_period)
    current.bind(storage)
    identity = process_identity()
    refs = list(config.datasets)
    datasets = {ref.name: ref.load(seed=config.seed) for ref in refs}
    studies = [
        optuna.load_study(
            study_name=config.study_name(ref), storage=storage,
            sampler=make_sampler(config.sampler, seed=sampler_seed(config, task.index, k), space=config.space),
            pruner=make_pruner(config.pruner),
        )
        for k, ref in enumerate(refs)
    ]
    counts: Counter[str] = Counter()
    failures: Counter[int] = Counter()
    if config.batch > 1:
        return _work_pooled(task, storage, identity, refs, datasets, studies, current, counts, failures)
    turn = task.index
    waiter = _Waiter(storage, studies, task)
    while True:
        if task.token and studies[0].user_attrs.get(f"stop.{task.token}"):
            break
        # Take the studies in turn, starting from a different one in each worker.
        order = [(turn + j) % len(refs) for j in range(len(refs))]
        pick = next((k for k in order if failures[k] <= config.trials and _needs_work(studies[k], config.trials)), None)
        if pick is None:
            if waiter.wait():
                continue
            break
        turn = pick + 1
        study, ref = studies[pick], refs[pick]
        trials = _ask(study, config, identity, current, 1)
        if not trials:
            continue
        trial = trials[0]
        try:
            result = run_trial(trial, datasets[ref.name], config)
        except Exception as exc:  # a bug or a resource error: record it, retry the parameters later
            _fail(study, [trial], _error(exc), current, counts)
            failures[pick] += 1
            continue
        tell(study, trial, result)
        current.end(trial)
        counts[result.outcome] += 1
    return dict(counts)
