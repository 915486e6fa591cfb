"""MLflow as a view of the storage: one experiment per sweep, a parent run per study, a nested
child run per finished trial. Everything here can be rebuilt from the storage at any time
(``sync`` is idempotent), and an unreachable tracking server never stops a sweep.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
import math
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from studies import mlflow_sqlite
from studies.outcomes import outcome_of
from studies.storage import redact, scrub
from studies.summary import StudySummary, SweepStudy, find_sweep, summarize_study
from studies.processes import process_alive

__all__ = ["Tracker", "STATUS_OF"]

# Outcome -> MLflow run status.
STATUS_OF = {"complete": "FINISHED", "pruned": "KILLED", "diverged": "FAILED", "failed": "FAILED"}
_KIND, _STUDY, _TRIAL = "sweeps.kind", "sweeps.study", "trial_number"
_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARENT_SECONDS = 5.0


# MLflow's HTTP client retries a dead server for minutes by default; a sweep would wait that
# long at every sync. These apply unless the user set them.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


def _ms(dt) -> int:
    return int(dt.timestamp() * 1000) if dt is not None else int(time.time() * 1000)


class Tracker:
    """Writes a sweep's finished trials to MLflow, each once.

    Args:
        sweep: the sweep's name (the experiment's name).
        tracking_uri: MLflow tracking URI; ``None`` uses MLflow's own default
            (``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working directory).
        warn: called once with a message when MLflow cannot be reached.
    """

    def __init__(self, sweep: str, tracking_uri: str | None = None, *, warn=None) -> None:
        self.sweep = sweep
        if tracking_uri and tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
            # MLflow keeps one store per URI string; a relative path must not outlive a chdir.
            tracking_uri = "sqlite:///" + os.path.abspath(tracking_uri[len("sqlite:///"):])
        self.tracking_uri = tracking_uri
        self._warn = warn or (lambda msg: warnings.warn(msg, RuntimeWarning, stacklevel=2))
        self._client = None
        self._experiment_id: str | None = None
        self._parents: dict[str, str] = {}
        self._logged: dict[str, set[int]] = {}
        self._best: dict[str, tuple[int | None, int]] = {}
        self._warned = False
        self._retry_at = 0.0
        self._id = uuid.uuid4().hex[:12]
        self.busy: str | None = None  # set when another process holds the sync lease
        self.created = 0  # runs this tracker has written
        self.failing = False  # the last sync failed (MLflow away)
        self._db: tuple[str, tuple[int, int]] | None = None  # a local SQLite store: its file and inode
        self._reopened = 0
        self._pending: dict[str, int] = {}  # study -> finished trials not yet in MLflow
        self._seen: dict[str, int] = {}  # study -> finished trials seen in the storage
        self._parents_at = 0.0

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._client is not None:
            return
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        # MLflow prints a link for every run it ends, with the tracking URI's password in it.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()  # after the import: mlflow sets its loggers up when imported

        import mlflow

        uri = self.tracking_uri or mlflow.get_tracking_uri()
        path = mlflow_sqlite.sqlite_path(uri)
        if path is not None and self._reopened:
            # MLflow keeps one store per URI string: the same file under another spelling gets a
            # new store, which creates the tables of a new file.
            folder, name = os.path.split(path)
            uri = "sqlite:///" + folder + "/." * self._reopened + "/" + name
        mlflow_sqlite.tune(uri)
        with mlflow_sqlite.creating(uri):
            client = MlflowClient(tracking_uri=uri)
            exp = client.get_experiment_by_name(self.sweep)  # creates an SQLite store's tables
        if path is not None and os.path.exists(path):
            st = os.stat(path)
            self._db = (path, (st.st_dev, st.st_ino))
        # The UI opens a "model training" experiment on its runs table (not the GenAI views).
        kind = {"sweeps.sweep": self.sweep, "mlflow.experimentKind": "custom_model_development"}
        if exp is None:
            exp_id = client.create_experiment(self.sweep, tags=kind)
        else:
            exp_id = exp.experiment_id
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp_id)
            if exp.tags.get("mlflow.experimentKind") != kind["mlflow.experimentKind"]:
                client.set_experiment_tag(exp_id, "mlflow.experimentKind", kind["mlflow.experimentKind"])
        self._client, self._experiment_id = client, exp_id

    @property
    def uri(self) -> str:
        if self._client is not None:
            return redact(self._client.tracking_uri)
        return redact(self.tracking_uri or "(MLflow default)")

    # -- public face -----------------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        """(finished trials seen in the storage, of which not yet in MLflow) at the last sync."""
        return sum(self._seen.values()), sum(self._pending.values())

    def sync(self, storage: optuna.storages.BaseStorage, *, final: bool = False,
             should_stop: Callable[[], bool] | None = None) -> int:
        """Log every finished trial not yet in MLflow; returns how many runs were created.

        ``should_stop`` is asked between runs: a sync stops there (no run half-written).
        Never raises for an unreachable or failing tracking server: it warns once and
        tries again later (the storage keeps everything, ``sweep sync`` catches up).
        """
        if not final and time.monotonic() < self._retry_at:
            return 0
        self.failing = False
        try:
            self._check_file()
            self._connect()
            studies = find_sweep(storage, self.sweep)
            if not studies or not self._lease(storage, studies[0].study_id, release=False):
                return 0
            created = 0
            # Parents (best value, counts) are brought up to date every few seconds, not at every sync.
            parents = final or time.monotonic() - self._parents_at >= _PARENT_SECONDS
            stopped = False
            for study in studies:
                trials = storage.get_all_trials(study.study_id, deepcopy=False)
                n, stopped = self._sync_study(study, trials, final=final, parents=parents, should_stop=should_stop)
                created += n
                if stopped:
                    break
            if parents and not stopped:
                self._parents_at = time.monotonic()
            if final and not stopped and not sum(self._pending.values()):
                self._lease(storage, studies[0].study_id, release=True)  # only once everything is written
            return created
        except Exception as exc:  # noqa: BLE001 - MLflow is a view; nothing here may stop a sweep
            self.failing = True
            self._client = None
            self._retry_at = time.monotonic() + 30.0
            if not self._warned:
                self._warned = True
                text = scrub(str(exc).strip(), self.tracking_uri)
                first = text.splitlines()[0] if text else type(exc).__name__
                self._warn(
                    f"MLflow at {self.uri} failed ({first[:200]}); trials go on in the storage. "
                    f"Run 'sweep sync {self.sweep}' once it works again."
                )
            return 0

    def _check_file(self) -> None:
        """A local SQLite store deleted or replaced under a running sweep: say so once, and
        write the sweep again from the storage into the new file (nothing is lost)."""
        if self._db is None:
            return
        path, ident = self._db
        try:
            st = os.stat(path)
            same = (st.st_dev, st.st_ino) == ident
        except OSError:
            same = False
        if same:
            return
        self._warn(f"MLflow's database {path} was deleted or replaced during the sweep; writing the sweep "
                   f"to it again from the storage.")
        self._client, self._db = None, None
        self._reopened += 1
        self._parents.clear()
        self._logged.clear()
        self._best.clear()
        self.busy = None

    def attach(self, storage: optuna.storages.BaseStorage, path: str) -> int:
        """Log the file at ``path`` (the report) as an artifact of each parent run; returns how many."""
        try:
            self._connect()
            n = 0
            for study in find_sweep(storage, self.sweep):
                self._existing(study.name)
                self._client.log_artifact(self._parent(study), path, "report")
                n += 1
            return n
        except Exception as exc:  # noqa: BLE001 - the report is written; MLflow is optional
            text = scrub(str(exc).strip(), self.tracking_uri)
            self._warn(f"MLflow at {self.uri} failed ({(text.splitlines() or [type(exc).__name__])[0][:200]}); "
                       "the report was not attached.")
            return 0

    # -- internals ---------------------------------------------------------------------------

    def _lease(self, storage: optuna.storages.BaseStorage, study_id: int, *, release: bool) -> bool:
        """One process at a time writes a sweep to one MLflow: it holds a lease in the storage.

        Several ``sweep run``/``sweep worker --mlflow`` processes (on several hosts) would
        otherwise log the same finished trial twice. The lease lasts a minute and is renewed
        while its holder syncs; ``release`` gives it up (the last sync of a run).
        """
        key = "mlflow_sync." + hashlib.sha256(self._client.tracking_uri.encode()).hexdigest()[:12]
        now = time.time()
        holder = storage.get_study_user_attrs(study_id).get(key)
        if holder and holder.get("id") != self._id and holder.get("until", 0) > now and \
                process_alive({"host": holder.get("host"), "pid": holder.get("pid", -1)}) is not False:
            self.busy = f"{holder.get('host')} (pid {holder.get('pid')})"
            return False
        self.busy = None
        until = 0.0 if release else now + 60.0
        if release or not holder or holder.get("id") != self._id or holder.get("until", 0) - now < 30:
            storage.set_study_user_attr(study_id, key, {"id": self._id, "until": until,
                                                        "host": socket.gethostname(), "pid": os.getpid()})
        return True

    def _existing(self, study: str) -> None:
        """Load which trials of ``study`` MLflow already has (once per study and tracker)."""
        if study in self._logged:
            return
        client, logged = self._client, set()
        token = None
        while True:
            page = client.search_runs(
                [self._experiment_id], filter_string=f"tags.`{_STUDY}` = '{study}'",
                max_results=5000, page_token=token,
            )
            for run in page:
                tags = run.data.tags
                if tags.get(_KIND) == "study":
                    self._parents[study] = run.info.run_id
                elif tags.get(_KIND) == "trial":
                    if run.info.status == "RUNNING":  # half-written by an interrupted sync: redo it
                        client.delete_run(run.info.run_id)
                    else:
                        logged.add(int(tags[_TRIAL]))
            token = page.token
            if not token:
                break
        self._logged[study] = logged

    def _parent(self, study: SweepStudy) -> str:
        run_id = self._parents.get(study.name)
        if run_id is None:
            cfg = study.config
            run = self._client.create_run(
                self._experiment_id, run_name=study.dataset,
                tags={_KIND: "study", _STUDY: study.name, "dataset": study.dataset, "sweep": self.sweep},
            )
            run_id = self._parents[study.name] = run.info.run_id
            from mlflow.entities import Param

            params = {
                "dataset": study.dataset, "seed": cfg.get("seed"), "objective": cfg.get("objective"),
                "direction": study.direction, "sampler": (cfg.get("sampler") or {}).get("name"),
                "pruner": (cfg.get("pruner") or {}).get("name"),
            }
            self._client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
            self._client.log_dict(run_id, cfg, "sweep.json")
        return run_id

    def _sync_study(self, study: SweepStudy, trials: list[FrozenTrial], *, final: bool, parents: bool,
                    should_stop: Callable[[], bool] | None) -> tuple[int, bool]:
        self._existing(study.name)
        parent = self._parent(study)
        logged = self._logged[study.name]
        todo = [(t, o) for t in trials if (o := outcome_of(t)) in STATUS_OF and t.number not in logged]
        self._seen[study.name] = sum(1 for t in trials if outcome_of(t) in STATUS_OF)
        self._pending[study.name] = len(todo)
        created = 0
        for t, outcome in todo:
            if should_stop is not None and should_stop():
                return created, True
            self._log_trial(study, t, outcome, parent)
            logged.add(t.number)
            created += 1
            self.created += 1
            self._pending[study.name] -= 1
        if parents:
            self._update_parent(study, trials, parent, final=final)
        return created, False

    def _log_trial(self, study: SweepStudy, t: FrozenTrial, outcome: str, parent: str) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client = self._client
        run_info = t.user_attrs.get("run", {})
        label = run_info.get("label", f"t{t.number}")
        cfg = study.config
        train = dict(cfg.get("train", {}))
        tags = {
            "mlflow.parentRunId": parent, _KIND: "trial", _STUDY: study.name, _TRIAL: str(t.number),
            "study": study.name, "dataset": study.dataset, "outcome": outcome, "sweep": self.sweep,
        }
        run = client.create_run(self._experiment_id, start_time=_ms(t.datetime_start), tags=tags, run_name=label)
        run_id = run.info.run_id
        params = {**{k: v for k, v in train.items()}, **t.params, "dataset": study.dataset, "seed": cfg.get("seed")}
        ts = _ms(t.datetime_complete)
        metrics: list[Metric] = []
        for key, values in run_info.get("curves", {}).items():
            # Latest epoch first: MLflow keeps each key's latest value up to date as it inserts,
            # and the first point seen being the latest saves an update per point (15 %).
            metrics += [Metric(key, float(v), ts, epoch) for epoch, v in reversed(list(enumerate(values, start=1)))
                        if math.isfinite(v)]
        finals = {f"final_{k}": v[-1] for k, v in run_info.get("curves", {}).items() if v and math.isfinite(v[-1])}
        if t.value is not None and math.isfinite(t.value):
            finals["value"] = t.value
        finals["epochs_trained"] = len(run_info.get("curves", {}).get("train_cost", []))
        if "train_seconds" in run_info:
            finals["train_seconds"] = run_info["train_seconds"]
        div = t.user_attrs.get("divergence")
        if div:
            finals["diverged_epoch"] = div["epoch"]
        metrics += [Metric(k, float(v), ts, 0) for k, v in finals.items()]
        param_list = [Param(k, str(v)) for k, v in sorted(params.items())]
        extra_tags = [RunTag("error", str(t.user_attrs["error"])[:5000])] if "error" in t.user_attrs else []
        for i in range(0, max(len(metrics), 1), _BATCH):
            client.log_batch(run_id, metrics=metrics[i:i + _BATCH],
                             params=param_list if i == 0 else [], tags=extra_tags if i == 0 else [])
        if div:
            client.log_dict(run_id, {**div, "trial": t.number, "study": study.name}, "divergence.json")
        client.set_terminated(run_id, status=STATUS_OF[outcome], end_time=ts)

    def _update_parent(self, study: SweepStudy, trials: list[FrozenTrial], parent: str, *, final: bool) -> None:
        summary: StudySummary = summarize_study(study, trials)
        key = (summary.best_trial, summary.finished)
        if self._best.get(study.name) == key and not final:
            return
        from mlflow.entities import Metric, RunTag

        ts = int(time.time() * 1000)
        metrics = [Metric(f"n_{o}", float(n), ts, summary.finished) for o, n in summary.counts.items()]
        tags = [RunTag("best_trial", str(summary.best_trial))]
        if summary.best_value is not None:
            metrics.append(Metric("best_value", summary.best_value, ts, summary.finished))
            tags += [RunTag(f"best.{k}", str(v)) for k, v in summary.best_params.items()]
        self._client.log_batch(parent, metrics=metrics, tags=tags)
        if summary.finished >= summary.total:
            self._client.set_terminated(parent, status="FINISHED")
        self._best[study.name] = key

