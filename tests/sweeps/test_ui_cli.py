"""``sweep ui`` passes its URLs to the servers it starts through their environment: no
process's command line (readable by every user, in ``ps``) holds a password."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from studies.execution.processes import descendants

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "never-in-ps-%40:x"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if urllib.request.urlopen(url, timeout=2).status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _sweep_ui(folder, *args: str, new_session: bool = False) -> tuple[subprocess.Popen, int]:
    """``sweep ui`` started in ``folder`` on a free port (and ``args``): the process and the port."""
    folder.mkdir()
    port = _free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "ui", "--port", str(port), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        start_new_session=new_session,  # its own group, as a shell gives a foreground job
    )
    return ui, port


@pytest.fixture(scope="module")
def uis(tmp_path_factory, module_pg_database):
    """The three ``sweep ui`` of this module's tests, started at once: each takes seconds of
    MLflow's start-up, and they overlap. Each test stops its own, its own way."""
    tracking, storage = (module_pg_database().replace("postgres@", f"postgres:{SECRET}@") for _ in range(2))
    root = tmp_path_factory.mktemp("ui")
    dash = _free_port()
    started = {}
    try:
        started["password"] = (
            *_sweep_ui(
                root / "password",
                *("--tracking-uri", tracking, "--optuna", "--storage", storage, "--optuna-port", str(dash)),
            ),
            dash,
        )
        started["sigkill"] = (*_sweep_ui(root / "sigkill"), None)
        started["ctrl_c"] = (*_sweep_ui(root / "ctrl_c", new_session=True), None)
        yield started
    finally:
        for ui, _, _ in started.values():
            if ui.poll() is None:
                ui.kill()
                ui.communicate(timeout=60)


def test_no_child_command_line_holds_a_password(uis):
    ui, port, dash = uis["password"]
    try:
        _up(f"http://127.0.0.1:{port}/health", ui)
        _up(f"http://127.0.0.1:{dash}/dashboard/", ui)
        children = descendants(ui.pid)
        assert len(children) >= 2  # mlflow's server and optuna-dashboard, at least
        for pid in children:
            line = _cmdline(pid)
            assert "never-in-ps" not in line and "postgresql://" not in line, line
            # MLflow's GenAI job runner is left off: eight more processes importing MLflow
            assert "huey_consumer" not in line and "_job_runner" not in line, line
    finally:
        ui.send_signal(signal.SIGTERM)
        out, err = ui.communicate(timeout=60)
    assert ui.returncode == 0 and "Stopped: the UI servers are down." in err, err  # the way to stop it
    assert "never-in-ps" not in out + err


def _gone(pids: list[int], within: float = 60.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and _state(p) not in ("Z", "X")]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_killing_sweep_ui_with_sigkill_stops_every_server_process(uis):
    ui, port, _ = uis["sigkill"]
    try:
        _up(f"http://127.0.0.1:{port}/health", ui)
        tree = descendants(ui.pid)
        assert len(tree) >= 2  # the watchdog and mlflow's server, at least
    finally:
        ui.kill()  # SIGKILL: nothing of sweep ui runs to stop them
        ui.communicate(timeout=60)
    assert _gone(tree) == [], "a server's process outlived sweep ui"
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_ctrl_c_stops_sweep_ui_with_exit_0(uis):
    # Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group.
    ui, port, _ = uis["ctrl_c"]
    try:
        _up(f"http://127.0.0.1:{port}/health", ui)
        tree = descendants(ui.pid)
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        out, err = ui.communicate(timeout=60)
    assert ui.returncode == 0, err
    assert "Stopped: the UI servers are down." in err and "Error" not in err and "Traceback" not in err, err
    assert _gone(tree) == []


def test_ui_refuses_one_port_for_both_servers_and_takes_a_port_in_time_wait(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sweeps.cli import cli
    from sweeps.commands.ui import _port_free

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["ui", "--optuna", "--port", "5077", "--optuna-port", "5077"])
    assert r.exit_code == 2 and "'--port' and '--optuna-port' must differ, but both are 5077" in r.output
    # A port a server has just let go of (its connections in TIME-WAIT) is free to listen on again.
    import socket

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    assert not _port_free(port)  # listening: in use
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection waits in TIME-WAIT
    client.close()
    server.close()
    assert _port_free(port)


def test_a_store_mlflow_cannot_open_is_said_with_mlflows_reason(tmp_path):
    # MLflow's server exits at start (here: a file that is no database; the same with a store
    # whose schema is out of date): 'sweep ui' says MLflow's own reason, not a guess.
    (tmp_path / "mlflow.db").write_text("not a database at all, some text padding it out\n")
    folders = set(os.listdir(tempfile.gettempdir()))
    ui = subprocess.run(
        [sys.executable, "-m", "sweeps", "ui", "--port", str(_free_port())],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    assert ui.returncode == 2 and "Traceback" not in ui.stderr, ui.stderr
    last = ui.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: mlflow ui exited at start: ") and "file is not a database" in last, ui.stderr
    left = {f for f in set(os.listdir(tempfile.gettempdir())) - folders if f.startswith("sweeps-ui-")}
    assert not left  # its servers' logs go with it


def test_a_servers_reason_hides_passwords(tmp_path):
    from sweeps.commands.ui import _last_error

    log = tmp_path / "server.log"
    log.write_text(
        "2026/12/03 21:42:35 ERROR mlflow.cli: can't connect\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection to "
        "postgresql://bob:pw1234567@db:5432/mlflow failed\n"
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)\n"
    )
    said = _last_error(str(log), "postgresql://bob:pw1234567@db:5432/mlflow")
    assert said.startswith(": sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection to")
    assert "pw1234567" not in said and "bob:***@db" in said
    assert _last_error(str(tmp_path / "none.log"), None) == "" and _last_error(None, None) == ""
