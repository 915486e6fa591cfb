"""MLflow on a real tracking server (PostgreSQL backend) over HTTP: going down mid-sweep costs
one warning and nothing else; ``sweep sync`` catches up without duplicates; no password leaks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from unittest import mock

import pytest
from click.testing import CliRunner

from studies.execution.processes import descendants
from sweeps.cli import cli
from tests.studies.test_scale_out import _counts, _wait_for, sweep_cmd

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.mlflow_server]

SECRET = "s3cret-pw-42"  # trust auth ignores it; it must never show up anywhere


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, backend: str, artifacts: str) -> None:
        self.port = _free_port()
        self.backend, self.artifacts = backend, artifacts
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.backend,
                "--artifacts-destination",
                self.artifacts,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # a tracking server alone: not its GenAI job runner (eight more processes importing MLflow)
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )

        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"{self.url}/health", timeout=2).status == 200
            except OSError:
                return False

        _wait_for(healthy, timeout=120, every=0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGKILL, as a crash would; the server's own helpers too (they are not in its group).
            for pid in [self.proc.pid, *descendants(self.proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def mlflow_server(pg_database, tmp_path):
    server = MlflowServer(pg_database(), str(tmp_path / "artifacts"))
    server.start()
    yield server
    server.stop()


def _runs(url: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def _experiment_id(url: str, experiment: str) -> str:
    from mlflow.tracking import MlflowClient

    return MlflowClient(url).get_experiment_by_name(experiment).experiment_id


def test_server_down_mid_sweep_then_sync(sweep_file, pg_database, mlflow_server, tmp_path):
    storage = pg_database().replace("postgres@", f"postgres:{SECRET}@")
    tracking = mlflow_server.url.replace("http://", f"http://sweeper:{SECRET}@")
    path = sweep_file("srv", trials=10, jobs=2, epochs=300)
    run = subprocess.Popen(
        sweep_cmd("run", str(path), "--storage", storage, "--tracking-uri", tracking),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(
        lambda: len([r for r in _runs(mlflow_server.url, "srv") if r.data.tags.get("sweeps.kind") == "trial"]) >= 2
    )
    mlflow_server.stop()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 3, err  # the sweep is done; MLflow lacks runs: exit 3 (sweep sync)
    assert err.count("Warning: MLflow at") == 1, err
    assert "sweep sync srv" in err
    bare = storage.replace(f":{SECRET}", "")
    assert _counts(bare) == {"srv/circle": (10, 0), "srv/xor": (10, 0)}  # the storage has everything

    mlflow_server.start()
    before = len(_runs(mlflow_server.url, "srv"))
    assert before < 22
    sync = subprocess.run(
        sweep_cmd("sync", "srv", "--storage", storage, "--tracking-uri", tracking),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sync.returncode == 0, sync.stderr
    runs = _runs(mlflow_server.url, "srv")
    assert len(runs) == 22  # 2 parents + 20 children
    assert (
        len({(r.data.tags["study"], r.data.tags["trial_number"]) for r in runs if "trial_number" in r.data.tags}) == 20
    )
    # Again, and 'sweep ui' on the server: in this process (the sync above ran as a command does).
    with mock.patch.dict(os.environ):
        again = CliRunner().invoke(cli, ["sync", "srv", "--storage", storage, "--tracking-uri", tracking])
    assert again.exit_code == 0 and again.stdout.startswith("0 run(s) created"), again.output
    assert len(_runs(mlflow_server.url, "srv")) == 22

    # The links: on the server itself, without its user or password.
    links = f"{mlflow_server.url}/#/experiments/{_experiment_id(mlflow_server.url, 'srv')}/runs?viewStateShareKey="
    assert f"studies:     {links}sweeps-studies&" in sync.stdout, sync.stdout
    with mock.patch.dict(os.environ):
        ui = CliRunner().invoke(cli, ["ui", "--tracking-uri", mlflow_server.url])
    assert ui.exit_code == 0 and f"best trials: {links}sweeps-best-trials&" in ui.stdout, ui.output

    # The password is nowhere: not printed, not in MLflow's params or tags.
    for text in (out, err, sync.stdout, sync.stderr, again.stdout, again.stderr):
        assert SECRET not in text
    for r in _runs(mlflow_server.url, "srv"):
        assert SECRET not in repr(r.data.params) and SECRET not in repr(r.data.tags)
