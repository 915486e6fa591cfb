"""A connection to MLflow for one sweep: the client, the sweep's experiment, and a local
SQLite store that is tuned, created safely, and noticed when it vanishes."""

from __future__ import annotations

import logging
import os
import shlex
import warnings
from typing import TYPE_CHECKING

from studies.errors import SweepsError
from studies.storage import redact
from studies.tracking import sqlite as mlflow_sqlite

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["MlflowConnection", "TrackingStoreError"]


class TrackingStoreError(SweepsError):
    """MLflow's local store can't be used as it is (unwritable, half-migrated): the message
    says why and how to recover; the storage keeps every trial meanwhile."""


# MLflow's HTTP client retries a dead server for minutes by default; a sweep would wait that
# long at every sync. These apply unless the user set them.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
# Database servers as MLflow's store (SQLAlchemy URIs): reached once before MLflow's engine is made.
_SERVERS = ("postgresql", "mysql")
# A "model training" experiment. MLflow 3.17's UI reads this only where its sidebar has no
# GenAI / Model training switch; where it has one (the default), the switch decides, so the
# printed links carry it (studies/tracking/_ui_compat.py) and the README says how to flip it.
_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "SQLAlchemy engine could not be created ... Operation will be retried": a three-line warning
    # per attempt; the failure, if it lasts, is said once by the tracker.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")


class MlflowConnection:
    """MLflow's client for a sweep's experiment (created, or restored if deleted).

    Args:
        sweep: the experiment's name.
        tracking_uri: MLflow tracking URI; ``None`` uses MLflow's own default
            (``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working directory).
    """

    def __init__(self, sweep: str, tracking_uri: str | None = None) -> None:
        self.sweep = sweep
        if tracking_uri and tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
            # MLflow keeps one store per URI string; a relative path must not outlive a chdir.
            tracking_uri = "sqlite:///" + os.path.abspath(tracking_uri[len("sqlite:///") :])
        self.tracking_uri = tracking_uri
        self._client: MlflowClient | None = None
        self.experiment_id: str | None = None
        self.resolved_uri: str | None = None
        self.tried_uri: str | None = None  # the URI the last connect tried (MLflow's default made explicit)
        self._db: tuple[str, tuple[int, int]] | None = None  # a local SQLite store: its file and inode
        self._reopened = 0

    @property
    def client(self) -> MlflowClient:
        """The open client (after :meth:`connect`)."""
        if self._client is None:
            raise AttributeError("the MLflow client is not open: connect() first")
        return self._client

    @property
    def experiment(self) -> str:
        """The sweep's experiment id (after :meth:`connect`)."""
        if self.experiment_id is None:
            raise AttributeError("the MLflow client is not open: connect() first")
        return self.experiment_id

    @property
    def remote(self) -> bool:
        """Whether MLflow is a server (HTTP): several runs may be written at once."""
        uri = self.resolved_uri or self.tracking_uri or ""
        return uri.startswith(("http://", "https://"))

    @property
    def uri(self) -> str:
        """The tracking URI, safe to print."""
        return redact(self.resolved_uri or self.tried_uri or self.tracking_uri or "(MLflow default)")

    def connect(self) -> None:
        """Open the client and the sweep's experiment (once; again after :meth:`reset`)."""
        if self._client is not None:
            return
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        # MLflow prints a link for every run it ends, with the tracking URI's password in it.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        import mlflow
        from mlflow.tracking import MlflowClient

        _quiet_mlflow()  # after the import: mlflow sets its loggers up when imported
        uri = self.tracking_uri or mlflow.get_tracking_uri()
        path = mlflow_sqlite.sqlite_path(uri)
        if path is not None and self._reopened:
            # MLflow keeps one store per URI string: the same file under another spelling gets a
            # new store, which creates the tables of a new file.
            folder, name = os.path.split(path)
            uri = "sqlite:///" + folder + "/." * self._reopened + "/" + name
        self.tried_uri = uri
        self._check(uri, path)
        mlflow_sqlite.tune(uri)
        try:
            with mlflow_sqlite.creating(uri):
                if path is not None and mlflow_sqlite.half_migrated(path):  # under the lock: not one being made
                    raise self._half_migrated(path)
                client = MlflowClient(tracking_uri=uri)
                exp = client.get_experiment_by_name(self.sweep)  # creates an SQLite store's tables
        except TrackingStoreError:
            raise
        except Exception as exc:
            text = str(exc).lower()
            if path is not None and (
                mlflow_sqlite.half_migrated(path) or "already exists" in text or "duplicate column" in text
            ):
                raise self._half_migrated(path) from exc
            if path is not None and "out-of-date database schema" in text:
                raise TrackingStoreError(
                    f"MLflow's database {path} was made by an older MLflow; back it up, then run 'mlflow db "
                    f"upgrade {shlex.quote('sqlite:///' + path)}', or move it aside and run 'sweep sync "
                    f"{shlex.quote(self.sweep)}' to rebuild "
                    f"MLflow from the storage."
                ) from exc
            raise
        if path is not None:
            try:
                st = os.stat(path)
                self._db = (path, (st.st_dev, st.st_ino))
            except OSError:  # deleted while MLflow created its tables: the client writes into a deleted file
                self._db = (path, (-1, -1))  # noticed by the next file_replaced()
        if exp is None:
            exp_id = client.create_experiment(self.sweep, tags={"sweeps.sweep": self.sweep, **_KIND})
        else:
            exp_id = exp.experiment_id
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp_id)
            for key, value in _KIND.items():
                if exp.tags.get(key) != value:
                    client.set_experiment_tag(exp_id, key, value)
        self._client, self.experiment_id, self.resolved_uri = client, exp_id, uri

    def _check(self, uri: str, path: str | None) -> None:
        """A local store that can't be written: said at once, not after MLflow's engine has
        retried it for 100 seconds."""
        if path is None:
            self._reach(uri)
            return
        why = mlflow_sqlite.unwritable(path)
        if why is not None:
            raise TrackingStoreError(
                f"MLflow's database {path} can't be written ({why}); the storage keeps every trial: make it "
                f"writable or choose another --tracking-uri, then run 'sweep sync {self.sweep}'."
            )

    def _reach(self, uri: str) -> None:
        """A database server as MLflow's store: one connection tried (10 s at most) before MLflow's
        engine, which retries an unreachable one for 100 seconds."""
        if not uri.split("://", 1)[0].startswith(_SERVERS):
            return
        import sqlalchemy

        from studies.storage import plain_cause

        try:
            engine = sqlalchemy.create_engine(
                uri, poolclass=sqlalchemy.pool.NullPool, connect_args={"connect_timeout": 10}
            )
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
        except Exception as exc:  # noqa: BLE001 - said in one line, with its cause
            cause, _ = plain_cause(exc, uri)
            raise TrackingStoreError(
                f"MLflow's database {redact(uri)} can't be reached ({cause}); the storage keeps every trial: "
                f"run 'sweep sync {self.sweep}' once it works again."
            ) from None

    def _half_migrated(self, path: str) -> TrackingStoreError:
        return TrackingStoreError(
            f"MLflow's database {path} is half-migrated (its set-up was cut off, e.g. by a full disk) and no "
            f"sync can finish it; move it aside (mv {shlex.quote(path)} {shlex.quote(path + '.broken')}), then run "
            f"'sweep sync {shlex.quote(self.sweep)}': "
            f"it rebuilds MLflow from the storage, which keeps every trial."
        )

    def reset(self) -> None:
        """Drop the client: the next :meth:`connect` opens it again."""
        self._client = None

    def file_replaced(self) -> str | None:
        """A local SQLite store deleted or replaced since it was opened: its path (the next
        :meth:`connect` writes into the new file), else ``None``."""
        if self._db is None:
            return None
        path, ident = self._db
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == ident:
                return None
        except OSError:
            pass
        self._client, self._db = None, None
        self._reopened += 1
        return path
