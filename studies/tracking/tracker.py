"""MLflow as a view of the storage: one experiment per sweep, a parent run per study, a nested
child run per finished trial. Everything here can be rebuilt from the storage at any time
(``sync`` is idempotent), and an unreachable tracking server never stops a sweep.

Writers split the work by host. A trial's run is written by the writer that holds its
host's lease (:mod:`studies.storage.lease`): each host's writer (``sweep run``, or ``sweep worker
--mlflow``) writes its own host's trials, so writers scale with the hosts; a writer also
takes over, for one sync at a time, the trials of a host whose trials have waited more than
``TAKEOVER_SECONDS`` (no live writer there), and a last sync takes over every host it can.
One lease, the parents', decides who creates and updates the studies' parent runs. A run is
written only under its host's lease, so never twice; a run a killed writer left half-written
(RUNNING) is deleted and written again by the next holder.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from studies import hooks
from studies.storage import Lease, scrub
from studies.sweep import SweepStudy, find_sweep, outcome_of
from studies.tracking.connection import MlflowConnection, TrackingStoreError
from studies.tracking.parents import ParentRuns
from studies.tracking.runs import HOST, KIND, STATUS_OF, STUDY, TRIAL, TrialRun, host_of, trial_run

if TYPE_CHECKING:
    from studies.tracking.writer import EndBudget

__all__ = ["Tracker", "STATUS_OF", "TAKEOVER_SECONDS"]

_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARENT_SECONDS = 5.0  # parents (best value, counts) are brought up to date this often
RETRY_SECONDS = 30.0  # a failing MLflow is tried again this often (a last sync tries at once)
TAKEOVER_SECONDS = 15.0  # a host's trials waiting this long have no live writer: another takes them
_THREADS = 4  # runs written at once to an MLflow server (a local SQLite store takes one at a time)


class Tracker:
    """Writes a sweep's finished trials to MLflow, each once.

    Args:
        sweep: the sweep's name (the experiment's name).
        tracking_uri: MLflow tracking URI; ``None`` uses MLflow's own default
            (``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working directory).
        storage_url: the storage's URL or path, beside which the writers' leases live;
            ``None``: no lease (a single writer, e.g. attaching a report).
        warn: called once with a message when MLflow cannot be reached (unless
            ``warn_failures`` is false: then :attr:`failure` holds it, for a display to show).
        dashboard: keep the parents' descriptions, the best trials' tags, the summary figures and
            the experiment's shared views current (:mod:`studies.tracking.dashboard`).
    """

    def __init__(
        self,
        sweep: str,
        tracking_uri: str | None = None,
        *,
        storage_url: str | None = None,
        warn: Callable[[str], None] | None = None,
        dashboard: bool = True,
        warn_failures: bool = True,
    ) -> None:
        self.sweep = sweep
        self.warn_failures = warn_failures
        self.failure: str | None = None  # while MLflow fails: what, why, and the 'sweep sync' to run
        self.mlflow = MlflowConnection(sweep, tracking_uri)
        self.storage_url = storage_url
        self.host = socket.gethostname()
        self._warn = warn or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=2))
        self._warned = False
        self._retry_at = 0.0
        self._logged: dict[str, set[int]] = {}  # study -> trial numbers with a run
        self._loaded: set[str] = set()  # studies whose runs were read
        self._leases: dict[str, Lease | _NoLease] = {}  # what this tracker holds (kept): its host's, the parents'
        self._waiting: dict[tuple[str, int], float] = {}  # (study, trial) -> when first seen unwritten
        self._parents_at = 0.0
        self._phases: dict[str, str] = {}  # each study's phase at the last parents' update
        self.dashboard = dashboard
        self.parents = ParentRuns(self.mlflow, sweep, warn=lambda msg: self._warn(msg), dashboard=dashboard)
        self.busy: str | None = None  # who writes this host's trials, when another process does
        self.created = 0  # runs this tracker has written
        self.failing = False  # the last sync failed (MLflow away)
        self._seen = 0
        self._behind = self._behind_mine = 0

    @property
    def uri(self) -> str:
        return self.mlflow.uri

    def progress(self) -> tuple[int, int]:
        """(finished trials seen in the storage, of which not yet in MLflow) at the last sync."""
        return self._seen, self._behind

    @property
    def behind_mine(self) -> int:
        """Finished trials this tracker could write (its leases) but has not yet."""
        return self._behind_mine

    # -- leases --------------------------------------------------------------------------------

    def _lease_name(self, what: str) -> str:
        uri = self.mlflow.resolved_uri or self.mlflow.tracking_uri or ""
        return f"mlflow/{hashlib.sha256(uri.encode()).hexdigest()[:12]}/{self.sweep}/{what}"

    def _take(self, what: str, *, keep: bool) -> Lease | _NoLease | None:
        """The lease for ``what`` if this process holds it or can take it now."""
        if self.storage_url is None:
            free = self._leases[what] = self._leases.get(what) or _NoLease()
            return free
        held = self._leases.get(what)
        if held is not None and held.held:
            return held
        lease = Lease(self.storage_url, self._lease_name(what))
        if not lease.acquire():
            return None
        if keep:
            self._leases[what] = lease
        return lease

    def release(self) -> None:
        """Give up every lease (a writer that ends)."""
        for lease in self._leases.values():
            lease.release()
        self._leases.clear()

    # -- sync ----------------------------------------------------------------------------------

    def sync(
        self,
        storage: optuna.storages.BaseStorage,
        *,
        final: bool = False,
        should_stop: Callable[[], bool] | None = None,
        figures: EndBudget | None = None,
        on_run: Callable[[], None] | None = None,
    ) -> int:
        """Log every finished trial not yet in MLflow that this process may write; returns how
        many runs were created. ``final``: also take over every host whose lease is free, and
        bring the parents' figures up to date (within ``figures``, a run's end: it barely waits
        for them, and 'sweep sync' draws the rest).

        ``should_stop`` is asked between runs: a sync stops there (no run half-written).
        Summary figures are drawn one at a time, in a sync that had no run to write (runs
        first: MLflow keeps pace), and in a last sync all that fit ``figures``.
        ``on_run`` is called after each run written (:meth:`progress` counts down).
        Never raises for an unreachable or failing tracking server: it warns once and
        tries again later (the storage keeps everything, ``sweep sync`` catches up).
        """
        if not final and time.monotonic() < self._retry_at:
            return 0
        self.failing = False
        try:
            replaced = self.mlflow.file_replaced()
            if replaced:
                self._warn(
                    f"MLflow's database {replaced} was deleted or replaced during the sweep; writing the "
                    f"sweep to it again from the storage."
                )
                self._forget()
            self.mlflow.connect()
            return self._sync(storage, final=final, should_stop=should_stop, figures=figures, on_run=on_run)
        except Exception as exc:  # noqa: BLE001 - MLflow is a view; nothing here may stop a sweep
            self.failing = True
            self.mlflow.reset()
            self._retry_at = time.monotonic() + RETRY_SECONDS
            self.failure = self._failure(exc)
            if not self._warned and self.warn_failures:
                self._warned = True
                self._warn(self.failure)
            return 0
        finally:
            if not self.failing:
                self.failure = None

    def _failure(self, exc: Exception) -> str:
        """One line: what failed, why, and the 'sweep sync' that catches up."""
        if isinstance(exc, TrackingStoreError):  # a local store's trouble, in plain words
            return str(exc)
        text = scrub(str(exc).strip(), self.mlflow.tracking_uri)
        first = text.splitlines()[0] if text else type(exc).__name__
        return (
            f"MLflow at {self.uri} failed ({first[:200]}); the storage keeps every trial: "
            f"run 'sweep sync {self.sweep}' once it works again."
        )

    def _forget(self) -> None:
        self.parents.forget()
        self._phases = {}
        self._logged.clear()
        self._loaded.clear()

    @property
    def experiment_id(self) -> str | None:
        """The sweep's experiment, once connected."""
        return self.mlflow.experiment_id

    def _sync(
        self,
        storage: optuna.storages.BaseStorage,
        *,
        final: bool,
        should_stop: Callable[[], bool] | None,
        figures: EndBudget | None,
        on_run: Callable[[], None] | None,
    ) -> int:
        studies = find_sweep(storage, self.sweep)
        if not studies:
            return 0
        now = time.monotonic()
        parents = self._take("parents", keep=True)
        own = self._own_host(storage, studies)
        todo = self._unwritten(storage, studies, now)
        # Parents: every few seconds, and at once when a study closes or finishes (its figures
        # and curves file are then made while trials still train, not at the sweep's end).
        update_parents = parents is not None and (
            final or now - self._parents_at >= _PARENT_SECONDS or todo.phases != self._phases
        )
        mine, taken = self._hosts_to_write(todo.by_host, studies, own=own, final=final, now=now)
        # How far behind, known before the writes (and counted down as they go: ``on_run``).
        self._seen = todo.seen
        self._behind = sum(len(items) for items in todo.by_host.values())
        self._behind_mine = sum(len(items) for items in mine.values())
        try:
            items = [item for host_items in mine.values() for item in host_items]
            created, stopped = self._write(items, parents is not None, should_stop, on_run)
        finally:
            for lease in taken:
                lease.release()
        if update_parents and not stopped:
            best = [self.parents.update(study, todo.trials_of[study.name], final=final) for study in studies]
            if self.dashboard:
                self.parents.update_views(studies, best)
            self._parents_at = now
            self._phases = todo.phases
        if parents is not None and not stopped:
            self._draw(
                studies, todo.trials_of, final=final, wrote=bool(created), figures=figures, should_stop=should_stop
            )
        self._behind = sum(
            1 for items in todo.by_host.values() for s, t, _ in items if t.number not in self._logged[s.name]
        )
        self._behind_mine = sum(
            1 for items in mine.values() for s, t, _ in items if t.number not in self._logged[s.name]
        )
        return created

    def _own_host(self, storage: optuna.storages.BaseStorage, studies: list[SweepStudy]) -> Lease | _NoLease | None:
        """This host's lease, if this process holds it (taken now if free: then what a killed
        writer of this host left half-written is read first)."""
        had_own = self._leases.get(f"host/{self.host}") is not None
        own = self._take(f"host/{self.host}", keep=True)
        self.busy = None if own is not None else self._holder(storage, studies[0].study_id)
        if own is not None and not had_own:
            self._announce(storage, studies[0].study_id)
            for study in studies:
                self._load(study.name)
            self._load_host(self.host, studies)  # runs a killed writer of this host left half-written
        return own

    def _unwritten(self, storage: optuna.storages.BaseStorage, studies: list[SweepStudy], now: float) -> _Unwritten:
        """What is finished and not yet in MLflow, by host; every study's trials and phase."""
        out = _Unwritten()
        for study in studies:
            trials = out.trials_of[study.name] = storage.get_all_trials(study.study_id, deepcopy=False)
            self._load(study.name)
            logged = self._logged[study.name]
            finished = running = 0
            for t in trials:
                outcome = outcome_of(t)
                running += outcome == "running"
                if outcome not in STATUS_OF:
                    continue
                out.seen += 1
                finished += outcome != "failed"
                if t.number not in logged:
                    out.by_host.setdefault(host_of(t), []).append((study, t, outcome))
                    self._waiting.setdefault((study.name, t.number), now)
            out.phases[study.name] = (
                "done"
                if finished >= study.total or (study.stopped is not None and not running)
                else "closing"
                if finished + running >= study.total
                else "open"
            )
        return out

    def _hosts_to_write(
        self,
        by_host: dict[str, list[_Item]],
        studies: list[SweepStudy],
        *,
        own: Lease | _NoLease | None,
        final: bool,
        now: float,
    ) -> tuple[dict[str, list[_Item]], list[Lease | _NoLease]]:
        """The hosts whose runs this process writes now: its own (if it holds its lease), and
        those of others whose trials waited too long (no live writer), or every one it can take
        in a last sync; returns them with the leases taken for this sync."""
        mine: dict[str, list[_Item]] = {}
        taken: list[Lease | _NoLease] = []
        for host, items in by_host.items():
            if host == self.host:
                if own is not None:
                    mine[host] = items
                continue
            stale = min(self._waiting[(s.name, t.number)] for s, t, _ in items) <= now - TAKEOVER_SECONDS
            if not (final or stale or self.storage_url is None):
                continue
            lease = self._take(f"host/{host}", keep=False)
            if lease is None:
                continue
            taken.append(lease)
            self._load_host(host, studies)  # what its own writer wrote meanwhile, or left half-written
            mine[host] = [(s, t, o) for s, t, o in items if t.number not in self._logged[s.name]]
        return mine, taken

    def _draw(
        self,
        studies: list[SweepStudy],
        trials_of: dict[str, list[FrozenTrial]],
        *,
        final: bool,
        wrote: bool,
        figures: EndBudget | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        """Summary figures: in a last sync all that fit its budget, else one when no run was
        written (or figures waited long); a study whose figures are all drawn gets its description
        updated."""
        drawn = {s.name: self.parents.drawn_with(s.name) for s in studies}
        if final:  # all that fit the budget (a run's end barely waits for them)
            until = None if figures is None else figures.until(time.monotonic())
            while not (should_stop and should_stop()) and self.parents.draw_next(until=until):
                pass
        elif not wrote or self.parents.figures_overdue():  # one, when no run waited (or they wait long)
            self.parents.draw_next()
        for study in studies:
            if self.parents.drawn_with(study.name) != drawn[study.name]:
                self.parents.update(study, trials_of[study.name], final=False)

    def _write(
        self,
        todo: list[tuple[SweepStudy, FrozenTrial, str]],
        may_create_parents: bool,
        should_stop: Callable[[], bool] | None,
        on_run: Callable[[], None] | None = None,
    ) -> tuple[int, bool]:
        """Write the runs (several at once to a server); returns (created, stopped early)."""
        runs: list[tuple[SweepStudy, TrialRun]] = []
        parents: dict[str, str | None] = {}
        for study, t, outcome in todo:
            if study.name not in parents:
                parents[study.name] = self.parents.get(study, create=may_create_parents)
            parent = parents[study.name]
            if parent is None:  # the parents' writer has not created it yet: next sync
                continue
            runs.append((study, trial_run(study, t, outcome, parent=parent, sweep=self.sweep)))
        created, stopped = 0, False
        threads = _THREADS if self.mlflow.remote else 1
        with ThreadPoolExecutor(threads) if threads > 1 else _Inline() as pool:
            pending = []
            for study, run in runs:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                pending.append((study, run, pool.submit(self._log, run)))
                if len(pending) >= threads:
                    created += self._collect(pending.pop(0))
                    if on_run is not None:
                        on_run()
            for item in pending:
                created += self._collect(item)
                if on_run is not None:
                    on_run()
        return created, stopped

    def _collect(self, item: tuple) -> int:
        study, run, future = item
        future.result()  # an MLflow failure surfaces here: the sync warns and tries later
        self._logged[study.name].add(int(run.tags[TRIAL]))
        self._waiting.pop((study.name, int(run.tags[TRIAL])), None)
        self.created += 1
        self._behind = max(0, self._behind - 1)
        self._behind_mine = max(0, self._behind_mine - 1)
        return 1

    def _log(self, run: TrialRun) -> None:
        hooks.pause("MLFLOW_RUN")
        client = self.mlflow.client
        run_id = client.create_run(
            self.mlflow.experiment, start_time=run.start, tags=run.tags, run_name=run.name
        ).info.run_id
        metrics = run.metrics
        for i in range(0, max(len(metrics), 1), _BATCH):
            client.log_batch(
                run_id,
                metrics=metrics[i : i + _BATCH],
                params=run.params if i == 0 else [],
                tags=run.extra_tags if i == 0 else [],
            )
        if run.divergence:
            client.log_dict(run_id, run.divergence, "divergence.json")
        client.set_terminated(run_id, status=run.status, end_time=run.end)

    # -- what MLflow already has ---------------------------------------------------------------

    def _runs(self, study: str, host: str | None = None):
        """Every run of ``study`` (of ``host``'s trials only, if given), page by page."""
        where = f"tags.`{STUDY}` = '{study}'" + (f" and tags.`{HOST}` = '{host}'" if host is not None else "")
        token = None
        while True:
            page = self.mlflow.client.search_runs(
                [self.mlflow.experiment], filter_string=where, max_results=5000, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def _load(self, study: str) -> None:
        """Read which trials of ``study`` MLflow already has (once per study and tracker)."""
        if study in self._loaded:
            return
        self._logged.setdefault(study, set())
        self._scan(study, None)
        self._loaded.add(study)

    def _load_host(self, host: str, studies: list[SweepStudy]) -> None:
        """Read ``host``'s runs again, once its lease is held: what its writer wrote, and the
        runs a killed writer left half-written (RUNNING), deleted to be written again."""
        for study in studies:
            self._scan(study.name, host, delete=True)

    def _scan(self, study: str, host: str | None, *, delete: bool = False) -> None:
        logged = self._logged.setdefault(study, set())
        for run in self._runs(study, host):
            tags = run.data.tags
            if tags.get(KIND) == "study":
                self.parents.known(study, run.info.run_id, tags)
            elif tags.get(KIND) == "trial":
                if run.info.status != "RUNNING":
                    logged.add(int(tags[TRIAL]))
                elif delete or self.storage_url is None:
                    self.mlflow.client.delete_run(run.info.run_id)
                    logged.discard(int(tags[TRIAL]))

    def attach(self, storage: optuna.storages.BaseStorage, path: str, *, models: dict[str, str] | None = None) -> int:
        """Log the file at ``path`` (the report) as an artifact of each parent run, and each
        study's best network (``models``: dataset -> its .npz file) under ``model/``; returns how many."""
        try:
            self.mlflow.connect()
            n = 0
            for study in find_sweep(storage, self.sweep):
                parent = self.parents.get(study, create=True)
                self.mlflow.client.log_artifact(parent, path, "report")
                if models and study.dataset in models:
                    self.parents.log_model(parent, models[study.dataset])
                n += 1
            return n
        except Exception as exc:  # noqa: BLE001 - the report is written; MLflow is optional
            text = scrub(str(exc).strip(), self.mlflow.tracking_uri)
            self._warn(
                f"MLflow at {self.uri} failed ({(text.splitlines() or [type(exc).__name__])[0][:200]}); "
                "the report was not attached."
            )
            return 0

    # -- who writes ----------------------------------------------------------------------------

    def _record(self) -> str:
        return "mlflow_writer." + hashlib.sha256(self._lease_name(f"host/{self.host}").encode()).hexdigest()[:12]

    def _announce(self, storage: optuna.storages.BaseStorage, study_id: int) -> None:
        """Say (for other processes' progress lines) who writes this host's trials."""
        if self.storage_url is not None:
            storage.set_study_user_attr(study_id, self._record(), {"host": self.host, "pid": os.getpid()})

    def _holder(self, storage: optuna.storages.BaseStorage, study_id: int) -> str:
        holder = storage.get_study_user_attrs(study_id).get(self._record()) or {}
        return f"{holder.get('host', 'another process')} (pid {holder.get('pid', '?')})"


_Item = tuple[SweepStudy, FrozenTrial, str]  # a trial to write: its study, itself, its outcome


@dataclass
class _Unwritten:
    """What a sync found in the storage: unwritten finished trials by host, every study's trials,
    each study's phase ("open", "closing": its last trials running, or "done"), and how many
    finished trials it saw."""

    by_host: dict[str, list[_Item]] = field(default_factory=dict)
    trials_of: dict[str, list[FrozenTrial]] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    seen: int = 0


class _NoLease:
    """Held by definition: where no lease is needed, or a marker."""

    held = True

    def release(self) -> None:
        pass


class _Inline:
    """ThreadPoolExecutor's face, running each call at once (one run at a time)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn, *args):  # noqa: ANN001, ANN201
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed over as with a thread
            future.set_exception(exc)
        return future
