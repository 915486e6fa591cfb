"""The printed links in a real browser (Debian's Chromium through Playwright), on 200 trials.

A person runs a sweep of four studies of 50 trials each, starts ``sweep ui``, and opens the
link it prints: without typing a query or paging, every study's parent run is on screen with
its best value and best parameters; the second link shows each study's best trial. The
experiment's own page would open on MLflow's GenAI overview and list the 100 newest runs:
200 child runs, nearly all started after their parents, fill more than that page, so that
only the links' own filters bring the four parent runs on screen (2,000 trials took a
minute more to write to MLflow and checked nothing more).
Screenshots go to ``test-artifacts/screenshots`` (or $SWEEPS_SCREENSHOTS).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from studies.storage.opening import open_storage
from studies.sweep.summary import summarize
from sweeps.cli import cli
from tests.studies.test_browser import ARGS, CHROMIUM, SHOTS, _free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DATASETS = ("circle", "xor", "gauss", "spiral")
TRIALS = 50  # per dataset: 200 in all, two of MLflow's pages of 100 runs
SPEC = f"""
name = "board"
datasets = {list(DATASETS)!r}
trials = {TRIALS}
jobs = 2
seed = 0
objective = "val_cost"
batch = 32

[train]
epochs = 2
batch_size = 50
activation = "relu"

[search]
learning_rate = {{ low = 0.01, high = 50.0, log = true }}
hidden_layers = {{ low = 1, high = 2 }}
hidden_units = {{ low = 2, high = 4 }}
regularization = ["none", "l2"]

[sampler]
name = "random"

[pruner]
name = "none"
"""
LINK = re.compile(r"^\s*(studies|best trials):\s+(\S+)$", re.MULTILINE)

# For each row of the runs table (its pinned and scrolled parts): its cells' texts, and whether
# each is on screen (the point near its left edge belongs to it: not scrolled away, not under
# another panel).
ROWS = """() => [...document.querySelectorAll('[role=row]')].map(row => ({
    index: row.getAttribute('row-index') ?? row.getAttribute('aria-rowindex'),
    cells: [...row.querySelectorAll('[role=gridcell]')].map(cell => {
        const r = cell.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + Math.min(r.width / 2, 20), r.top + r.height / 2);
        return {col: cell.getAttribute('col-id') || '', text: cell.innerText.trim(),
                seen: r.width > 0 && !!hit && cell.contains(hit)};
    })})).filter(row => row.cells.length)"""


def _visible_rows(page) -> list[dict[str, str]]:
    """Each row's cells on screen: column id -> text (the run name's cell: its last line)."""
    rows: dict[str, dict[str, str]] = {}
    for row in page.evaluate(ROWS):
        rows.setdefault(row["index"], {}).update(
            {c["col"]: (c["text"].splitlines() or [""])[-1] for c in row["cells"] if c["seen"]}
        )
    return list(rows.values())


def _cell(row: dict[str, str], key: str) -> str:
    """The text of the column whose id names ``key`` (e.g. best.learning_rate)."""
    found = [text for col, text in row.items() if re.search(rf"(^|[.`]){re.escape(key)}`?$", col)]
    assert len(found) == 1, (key, row)
    return found[0]


def _shown(value: object) -> str:
    """A value as the table shows it: a float's first digits (the UI may shorten the rest)."""
    return f"{value:.6g}"[:5] if isinstance(value, float) else str(value)


def _row_of(rows: list[dict[str, str]], name: str) -> dict[str, str]:
    found = [r for r in rows if name in r.values()]
    assert len(found) == 1, (name, rows)
    return found[0]


def test_the_printed_links_open_every_study_with_its_best(sweep_file, tmp_path):
    from playwright.sync_api import sync_playwright

    sweep_file("board")  # a fresh working directory
    path = tmp_path / "board.toml"
    path.write_text(SPEC)
    run = CliRunner().invoke(cli, ["run", str(path)])
    assert run.exit_code == 0, run.output
    printed = dict(LINK.findall(run.output))
    assert set(printed) == {"studies", "best trials"}, run.output
    summaries = {s.dataset: s for s in summarize(open_storage(str(tmp_path / "sweeps.journal")), "board")}
    assert sum(s.finished for s in summaries.values()) == len(DATASETS) * TRIALS

    port = _free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, deadline = "", time.monotonic() + 120
        while "Press Ctrl-C" not in out and time.monotonic() < deadline and ui.poll() is None:
            out += ui.stdout.readline()
        served = dict(LINK.findall(out))
        assert set(served) == {"studies", "best trials"}, out
        for key, link in printed.items():  # 'sweep run' printed the same links, on the default port
            assert served[key] == link.replace("127.0.0.1:5000", f"127.0.0.1:{port}")
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})

            # The studies: every parent run on screen, with its best value and parameters.
            page.goto(served["studies"])
            for name in DATASETS:
                page.get_by_role("link", name=name, exact=True).wait_for(timeout=90000)
            page.get_by_text(f"{len(DATASETS)} matching runs").wait_for(timeout=30000)
            page.wait_for_function(
                f"() => document.querySelectorAll('[role=row] [role=gridcell]').length >= {len(DATASETS)} * 6",
                timeout=30000,
            )
            page.screenshot(path=str(SHOTS / "mlflow-dashboard-studies.png"))
            rows = _visible_rows(page)
            for name, s in summaries.items():
                row = _row_of(rows, name)
                assert _cell(row, "best_value").startswith(_shown(s.best_value)), (name, s.best_value, row)
                assert _cell(row, "best_trial") == str(s.best_trial), (name, s.best_trial, row)
                for key, value in s.best_params.items():
                    assert _cell(row, f"best.{key}").startswith(_shown(value)), (name, key, value, row)
            assert not page.get_by_role("button", name="Load more").count()

            # A study's parent run: its description is the study's summary, its figures are viewable.
            page.get_by_role("link", name="circle", exact=True).click()
            page.get_by_text(f"Best val_cost: {summaries['circle'].best_value:.4g}").wait_for(timeout=60000)
            page.get_by_text("Study board/circle").wait_for(timeout=10000)
            page.screenshot(path=str(SHOTS / "mlflow-dashboard-parent.png"))
            run_page = re.search(r"^(.*/runs/[0-9a-f]{32})", page.url).group(1)
            page.goto(f"{run_page}/artifacts/figures/history.png")
            page.wait_for_function(
                "() => [...document.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 300)",
                timeout=60000,
            )
            page.screenshot(path=str(SHOTS / "mlflow-dashboard-figure.png"))

            # The best trials: one run per study, its value and parameters on screen.
            page.goto(served["best trials"])
            page.get_by_text(f"{len(DATASETS)} matching runs").wait_for(timeout=90000)
            page.wait_for_function(
                f"() => document.querySelectorAll('[role=row] [role=gridcell]').length >= {len(DATASETS)} * 6",
                timeout=30000,
            )
            page.screenshot(path=str(SHOTS / "mlflow-dashboard-best-trials.png"))
            rows = _visible_rows(page)
            assert len(rows) == len(DATASETS), rows
            for name, s in summaries.items():
                row = next(r for r in rows if any(c.startswith(f"t{s.best_trial} ") for c in r.values()))
                assert _cell(row, "value").startswith(_shown(s.best_value)), (name, row)
                for key, value in s.best_params.items():
                    assert _cell(row, key).startswith(_shown(value)), (name, key, value, row)
            browser.close()
    finally:
        ui.kill()
        ui.communicate(timeout=30)
