"""``sweep ui``: MLflow's UI over the sweep's tracking store (and optuna-dashboard), on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.request

import click

from studies.execution import Supervisor, signals
from studies.storage import DEFAULT_STORAGE, redact, scrub, storage_kind
from studies.tracking import server_base
from sweeps.display import UI_HOST, UI_PORT, Waiting, mlflow_links
from sweeps.errors import UserError, user_errors
from sweeps.options import storage_option, tracking_option

__all__ = ["ui_command"]

HOST = UI_HOST  # 127.0.0.1, never all interfaces: put a proxy with auth in front to share a UI
# URLs go to the children through their environment, never their command line: any user
# of the machine can read a process's arguments (ps, /proc/PID/cmdline), and they may hold
# a password.
_STORAGE_ENV = "SWEEPS_UI_STORAGE"
_DASHBOARD = (
    "import os, sys, optuna_dashboard\n"
    "from studies.storage.opening import open_storage\n"
    f"storage = open_storage(os.environ.pop({_STORAGE_ENV!r}))\n"
    "optuna_dashboard.run_server(storage, host=sys.argv[1], port=int(sys.argv[2]))\n"
)


def _port_free(port: int) -> bool:
    """Whether a server can listen on ``port``: as servers do, with SO_REUSEADDR, so that the
    TIME-WAIT sockets a UI stopped a moment ago leaves behind do not count as "in use"."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            s.listen(1)
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError, http.client.HTTPException):
        return urllib.request.urlopen(url, timeout=2).status < 500
    return False


_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*?: \S")  # a traceback's last line


def _last_error(log: str | None, secret: str | None) -> str:
    """What a server's stderr says went wrong (its password hidden), as ``': LINE'``: the last
    exception raised, else the last line logged as an error, else its last line; ``''`` if it
    said nothing."""
    if not log:
        return ""
    with contextlib.suppress(OSError):
        with open(log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64_000))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        said = (
            [ln for ln in lines if _RAISED.match(ln)]
            or [ln for ln in lines if " ERROR " in ln or ln.startswith("Error")]
            or lines
        )
        if said:
            return ": " + scrub(said[-1], secret)[:400]
    return ""


def _wait_up(
    servers: list[tuple[str, str, int]],
    sup: Supervisor,
    timeout: float = 180.0,
    *,
    logs: dict[str, str] | None = None,
    secret: str | None = None,
) -> None:
    """Wait until every server (name, URL to ask, pid) answers, saying so on a line that moves;
    a server that exits says why, from its stderr (``logs``: name -> file)."""
    waiting = {name: (url, pid) for name, url, pid in servers}
    started = time.monotonic()
    with Waiting(f"Waiting for {' and '.join(waiting)} to answer") as line:
        while waiting:
            for name, (url, pid) in list(waiting.items()):
                if not sup.alive(pid):
                    why = _last_error((logs or {}).get(name), secret)
                    raise UserError(f"{name} exited at start{why or '; is the store readable?'}")
                if _answers(url):
                    del waiting[name]
            if time.monotonic() - started > timeout:
                name, (url, _) = next(iter(waiting.items()))
                raise UserError(f"{name} did not answer at {url} within {timeout:.0f} s.")
            line.update(f"Waiting for {' and '.join(waiting)} to answer" if waiting else "")
            time.sleep(0.3)


def _sweeps_served(api: str) -> list[tuple[str, str, bool]]:
    """(sweep, experiment id, has its shared views) of each sweep's experiment the MLflow server
    at ``api`` holds, read through its REST API; ``[]`` if it can't be read."""
    from studies.tracking import SHARE_TAG, STUDIES_VIEW

    found, token = [], None
    # anything answering at that address may be no MLflow server: no links, never a traceback
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError, http.client.HTTPException):
        for _ in range(100):
            body = {"max_results": 1000, **({"page_token": token} if token else {})}
            req = urllib.request.Request(
                f"{api}/api/2.0/mlflow/experiments/search",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                page = json.load(resp)
            for exp in page.get("experiments", []):
                tags = {t["key"]: t.get("value", "") for t in exp.get("tags", [])}
                if "sweeps.sweep" in tags and exp.get("lifecycle_stage", "active") == "active":
                    found.append((exp["name"], str(exp["experiment_id"]), SHARE_TAG + STUDIES_VIEW in tags))
            token = page.get("next_page_token")
            if not token:
                break
    return sorted(found)


def _print_links(api: str, port: int, tracking_uri: str | None = None) -> None:
    for name, exp_id, views in _sweeps_served(api):
        click.echo("\n".join(mlflow_links(name, exp_id, tracking_uri, port=port, served=True)))
        if not views:
            click.echo(f"  (run 'sweep sync {name}' once to give this sweep its views: an older sweep)")


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=UI_PORT, show_default=True, help="MLflow UI's port.")
@tracking_option
@storage_option
@click.option("--optuna", "with_optuna", is_flag=True, help="Also start optuna-dashboard over the study storage.")
@click.option("--optuna-port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@user_errors
def ui_command(port: int, tracking_uri: str | None, storage: str | None, with_optuna: bool, optuna_port: int) -> None:
    """Start MLflow's UI over the sweep's runs (and optuna-dashboard with --optuna), on 127.0.0.1.

    Child runs are nested under their study's parent run; each sweep's two links open its
    studies (best value and parameters as columns) and its best trials. Ctrl-C stops everything.

    \b
    Examples:
      sweep ui
      sweep ui --port 5050 --optuna
    """
    store_uri = tracking_uri or "sqlite:///mlflow.db"
    if store_uri.startswith(("http://", "https://")):
        click.echo(f"MLflow already serves its UI at {redact(store_uri)}")
        base = server_base(store_uri)
        if base is not None and "@" not in store_uri:  # with a password, 'sweep run' prints the links
            _print_links(base, port, store_uri)
        if not with_optuna:
            return
    local = not store_uri.startswith("http")
    if local and with_optuna and port == optuna_port:  # the arguments first, then what is installed
        raise UserError(f"'--port' and '--optuna-port' must differ, but both are {port}.")
    if with_optuna and importlib.util.find_spec("optuna_dashboard") is None:
        raise UserError("'--optuna' needs optuna-dashboard: pip install 'sweeps[ui]' (or optuna-dashboard).")
    for p, name, used in ((port, "--port", local), (optuna_port, "--optuna-port", with_optuna)):
        if used and not _port_free(p):
            raise UserError(f"'{name}' {p} is in use on {HOST}; pick another port.")
    if storage and with_optuna:
        storage_kind(storage)
    # The servers run under a watchdog that stops them (and every helper they start) when this
    # command ends, however it ends: Ctrl-C, SIGTERM, an error, or SIGKILL.
    sup = Supervisor()
    # The servers' stderr, to say why one exited at start (a private folder, removed at the end).
    folder = tempfile.mkdtemp(prefix="sweeps-ui-")
    logs = {"mlflow ui": os.path.join(folder, "mlflow.log"), "optuna-dashboard": os.path.join(folder, "optuna.log")}
    try:
        servers = _start(
            sup,
            store_uri if local else None,
            port,
            storage if with_optuna else None,
            optuna_port,
            with_optuna=with_optuna,
            logs=logs,
        )
        _wait_up(servers, sup, logs=logs, secret=store_uri)  # both at once: each takes seconds to start
        if local:
            click.echo(f"MLflow UI: http://{HOST}:{port}")
            _print_links(f"http://{HOST}:{port}", port)
        if with_optuna:
            click.echo(f"optuna-dashboard: http://{HOST}:{optuna_port}")
        click.echo("Press Ctrl-C to stop.")
        while all(sup.alive(pid) for _, _, pid in servers):
            time.sleep(0.2)
        raise UserError("a UI server stopped by itself; everything was stopped.")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, at any moment: the way to stop it
        with signals.quiet():
            sup.stop()
        click.echo("Stopped: the UI servers are down.", err=True)
        return
    finally:
        with signals.quiet():
            sup.stop()
            shutil.rmtree(folder, ignore_errors=True)


# MLflow's server also starts a job runner and its queue consumers (eight more Python processes,
# each importing MLflow) for its GenAI jobs, which looking at a sweep's runs never uses: off
# unless the user's environment turns it on.
_QUIET_SERVER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _start(
    sup: Supervisor,
    store_uri: str | None,
    port: int,
    storage: str | None,
    optuna_port: int,
    *,
    with_optuna: bool,
    logs: dict[str, str] | None = None,
) -> list[tuple[str, str, int]]:
    """Start MLflow's UI (``store_uri`` given) and optuna-dashboard (``with_optuna``) under the
    watchdog; returns each server's name, the URL that answers once it is up, and its pid."""
    servers = []
    with signals.critical():  # never a server started and not known
        if store_uri is not None:
            click.echo(f"Starting MLflow's UI on http://{HOST}:{port} ...", err=True)
            pid = sup.start(
                [sys.executable, "-m", "mlflow", "ui", "--host", HOST, "--port", str(port), "--workers", "1"],
                env={**_QUIET_SERVER, **os.environ, "MLFLOW_BACKEND_STORE_URI": store_uri},
                log=(logs or {}).get("mlflow ui"),
            )
            servers.append(("mlflow ui", f"http://{HOST}:{port}/health", pid))
        if with_optuna:
            click.echo(f"Starting optuna-dashboard on http://{HOST}:{optuna_port} ...", err=True)
            pid = sup.start(
                [sys.executable, "-c", _DASHBOARD, HOST, str(optuna_port)],
                env={**os.environ, _STORAGE_ENV: storage or DEFAULT_STORAGE},
                log=(logs or {}).get("optuna-dashboard"),
            )
            servers.append(("optuna-dashboard", f"http://{HOST}:{optuna_port}/", pid))
    return servers
