"""``sweep sync``: write to MLflow whatever of a sweep it is missing, from the storage."""

from __future__ import annotations

import os

import click

from studies.storage import DEFAULT_STORAGE
from sweeps.display import mlflow_links
from sweeps.errors import UserError, user_errors
from sweeps.options import SweepRef, named_sweep, tracking_option

__all__ = ["sync_command"]


@click.command("sync")
@tracking_option
@user_errors
@named_sweep
def sync_command(sweep: SweepRef, tracking_uri: str | None) -> None:
    """Create the MLflow runs a sweep is missing (idempotent: twice makes no duplicates).

    \b
    Examples:
      sweep sync playground
      sweep sync playground --tracking-uri http://127.0.0.1:5000
    """
    from studies.tracking import Tracker

    problems: list[str] = []
    url = sweep.storage_url or DEFAULT_STORAGE
    tracker = Tracker(
        sweep.name, tracking_uri, storage_url=url if "://" in url else os.path.abspath(url), warn=problems.append
    )
    created = tracker.sync(sweep.storage, final=True)
    tracker.release()
    if problems:
        raise UserError(problems[0])
    seen, behind = tracker.progress()
    click.echo(f"{created} run(s) created in MLflow at {tracker.uri}.")
    if behind:
        click.echo(
            f"{behind} more are written by the sweep's running writers"
            + (f" ({tracker.busy})." if tracker.busy else ".")
        )
    if tracker.experiment_id is not None:
        click.echo("\n".join(mlflow_links(sweep.name, tracker.experiment_id, tracker.mlflow.resolved_uri)))
