"""MlflowConnection: a local SQLite store deleted under the client is noticed."""

from __future__ import annotations

import os

from studies.tracking.connection import MlflowConnection


def test_a_store_deleted_while_its_tables_are_created_is_noticed(tmp_path, monkeypatch):
    """The file vanishes during MLflow's migrations (seconds on a loaded machine): the client
    goes on writing into the deleted file, so the next check must report it, not miss it."""
    from mlflow.tracking import MlflowClient

    path = tmp_path / "mlflow.db"
    real = MlflowClient.get_experiment_by_name

    def create_then_lose_the_file(self, name):  # noqa: ANN001
        out = real(self, name)
        os.remove(path)
        return out

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", create_then_lose_the_file)
    conn = MlflowConnection("s", f"sqlite:///{path}")
    conn.connect()
    assert not path.exists()
    assert conn.file_replaced() == str(path)
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", real)
    conn.connect()  # a new file, with the sweep's experiment
    assert path.exists() and conn.file_replaced() is None
    assert conn.client.get_experiment_by_name("s") is not None


def test_a_store_left_alone_is_not_reported(tmp_path):
    conn = MlflowConnection("s", f"sqlite:///{tmp_path}/mlflow.db")
    conn.connect()
    assert conn.file_replaced() is None
