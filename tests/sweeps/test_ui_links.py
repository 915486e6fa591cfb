"""``sweep ui`` over a tracking server prints its sweeps' links, read from the server: what
answers there may be no MLflow server at all, and then it prints none, without a traceback."""

from __future__ import annotations

import socket
import threading

import pytest
from click.testing import CliRunner

from sweeps.cli import cli


@pytest.fixture
def not_mlflow():
    """A server at a free port that answers every request with the given bytes."""
    servers = []

    def start(answer: bytes) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        servers.append(srv)

        def serve() -> None:
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",  # not HTTP: http.client's BadStatusLine
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 6\r\n\r\n[1, 2]",  # JSON, not an object
        b'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"experiments": [{"tags": ["a"]}]}      ',
    ],
)
def test_a_server_that_is_not_mlflow_gives_no_links_and_no_traceback(not_mlflow, answer):
    url = not_mlflow(answer)
    r = CliRunner().invoke(cli, ["ui", "--tracking-uri", url])
    assert r.exit_code == 0 and r.exception is None, r.output
    assert r.output == f"MLflow already serves its UI at {url}\n"


def test_the_writers_status_carries_no_password_and_still_links_to_the_server():
    """The MLflow writer's status crosses a process boundary and is shown: its tracking URI
    has the password masked, and the links 'sweep run' prints from it still name the server."""
    from studies.tracking.writer import MlflowStatus, _masked
    from sweeps.display import mlflow_links

    status = MlflowStatus(experiment_id="3", tracking_uri=_masked("http://bob:s3cr/et@mlflow-host:5000"))
    assert "s3cr" not in repr(status) and "et@" not in repr(status)
    assert mlflow_links("demo", status.experiment_id, status.tracking_uri)[1] == (
        "  studies:     http://mlflow-host:5000/#/experiments/3/runs?viewStateShareKey=sweeps-studies"
        "&workflowType=machine_learning"
    )
    assert _masked(None) is None
