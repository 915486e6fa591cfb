"""The UIs in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

A small sweep is run, ``sweep ui`` serves MLflow's UI and optuna-dashboard, and the
browser checks that parent runs list their nested child runs, that a child run charts its
``val_cost`` points, that the dashboard shows the studies, and that every figure of the
HTML report loads. Screenshots go to ``test-artifacts/screenshots`` (or $SWEEPS_SCREENSHOTS).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from studies.execution.processes import descendants
from sweeps.cli import cli

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(
    os.environ.get("SWEEPS_SCREENSHOTS", Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots")
)
EPOCHS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def served(sweep_file, tmp_path):
    path = sweep_file("web", trials=4, jobs=1, epochs=EPOCHS)
    assert CliRunner().invoke(cli, ["run", str(path)]).exit_code == 0
    assert CliRunner().invoke(cli, ["report", "web", "--out", "report", "--no-mlflow"]).exit_code == 0
    port, dash = _free_port(), _free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "ui", "--port", str(port), "--optuna", "--optuna-port", str(dash)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _up(f"http://127.0.0.1:{port}/health")
        _up(f"http://127.0.0.1:{dash}/dashboard/")
        yield ui, port, dash, tmp_path
    finally:
        if ui.poll() is None:
            ui.kill()


def test_ui_and_report_in_chromium(served):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    ui, port, dash, where = served
    SHOTS.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(f"sqlite:///{where / 'mlflow.db'}")
    exp = client.get_experiment_by_name("web")
    child = next(
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("dataset") == "circle" and r.data.tags.get("outcome") == "complete"
    )
    base = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})

        # Parent runs, each with its nested child runs.
        page.goto(f"{base}/runs")
        for name in ("circle", "xor"):
            page.get_by_role("link", name=name, exact=True).wait_for(timeout=60000)
        row = page.locator("[role=row]", has=page.get_by_role("link", name="circle", exact=True)).first
        row.locator("button").first.click()  # the expander of the parent run
        children = page.get_by_role("link", name=re.compile(r"^t\d+ relu "))
        children.first.wait_for(timeout=30000)
        assert children.count() == 4
        page.screenshot(path=str(SHOTS / "mlflow-runs.png"))

        # A child run's page charts val_cost, one point per epoch.
        page.goto(f"{base}/runs/{child.info.run_id}/model-metrics")
        page.get_by_placeholder("Search metric charts").fill("val_cost")  # charts render when in view
        # The chart whose title is val_cost: from the title up to the card that holds a plot.
        find_line = """() => {
            const titles = [...document.querySelectorAll('*')].filter(
                e => e.childElementCount === 0 && e.textContent.trim() === 'val_cost');
            for (const t of titles) {
                for (let n = t; n; n = n.parentElement) {
                    const line = n.querySelector('.js-plotly-plot .scatterlayer .trace path.js-line');
                    if (line) return line.getAttribute('d');
                }
            }
            return null;
        }"""
        page.wait_for_function(find_line, timeout=60000)  # the chart draws once its data has loaded
        d = page.evaluate(find_line)
        assert len(re.findall(r"[ML]", d)) == EPOCHS, d  # a vertex per epoch
        page.screenshot(path=str(SHOTS / "mlflow-child-run.png"))

        # optuna-dashboard over the same storage.
        page.goto(f"http://127.0.0.1:{dash}/dashboard/")
        page.get_by_text("web/circle").first.wait_for(timeout=60000)
        page.screenshot(path=str(SHOTS / "optuna-dashboard.png"))

        # The HTML report: every figure loaded.
        page.goto((where / "report" / "report.html").as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) >= 10 and all(w > 0 for w in widths), widths
        page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
        browser.close()

    # Ctrl-C stops both servers, cleanly, with every process they started.
    tree = descendants(ui.pid)
    assert tree
    ui.send_signal(signal.SIGINT)
    out, err = ui.communicate(timeout=60)
    assert ui.returncode == 0 and "Stopped: the UI servers are down." in err and "Traceback" not in err, err
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{pid}").exists() for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()], "a server's helper outlived sweep ui"
    for p in (port, dash):  # nothing listens there any more
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", p))
