"""``sweep report``: a reproducible research report of a sweep, from the storage."""

from __future__ import annotations

import os

import click

from sweeps.errors import user_errors
from sweeps.options import SweepRef, named_sweep, tracking_option

__all__ = ["report_command"]


@click.command("report")
@tracking_option
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Output folder (default reports/NAME).")
@click.option("--no-mlflow", is_flag=True, help="Do not attach the report to the sweep's MLflow runs.")
@user_errors
@named_sweep
def report_command(sweep: SweepRef, tracking_uri: str | None, out_dir: str | None, no_mlflow: bool) -> None:
    """Write a sweep's report: report.html (self-contained), report.md with its figures, trials.csv, curves.csv.

    Built from the storage alone (MLflow may be away); the best trial of each dataset is
    retrained once to score it on the held-out test split. When MLflow is reachable the
    report is also attached to the sweep's parent runs.

    \b
    Examples:
      sweep report playground
      sweep report playground --out site/playground --storage postgresql://me@db-host/sweeps
    """
    from studies.reports import build_report
    from studies.tracking import Tracker

    store, name = sweep.storage, sweep.name
    out_dir = out_dir or os.path.join("reports", name)
    files = build_report(store, name, out_dir=out_dir)
    click.echo(
        f"report written: {files.html}, {files.markdown} ({len(files.figures)} figures), {files.csv}, {files.curves}"
    )
    if files.models:
        click.echo(f"best networks kept: {', '.join(files.models.values())} (see 'sweep predict').")
    if not no_mlflow:
        problems: list[str] = []
        attached = Tracker(name, tracking_uri, warn=problems.append).attach(store, files.html, models=files.models)
        if problems:
            click.echo(f"Warning: {problems[0]}", err=True)
        elif attached:
            click.echo(f"attached to {attached} MLflow parent run(s).")
