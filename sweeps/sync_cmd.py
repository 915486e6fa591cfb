"""``sweep sync``: write to MLflow whatever of a sweep it is missing, from the storage."""

from __future__ import annotations

import os

import click

from studies import Tracker, find_sweep, open_storage
from sweeps.errors import UserError, user_errors
from sweeps.options import storage_option, tracking_option

__all__ = ["sync_command"]


@click.command("sync")
@click.argument("name")
@storage_option
@tracking_option
@user_errors
def sync_command(name: str, storage: str | None, tracking_uri: str | None) -> None:
    """Create the MLflow runs a sweep is missing (idempotent: twice makes no duplicates).

    \b
    Examples:
      sweep sync playground
      sweep sync playground --tracking-uri http://127.0.0.1:5000
    """
    store = open_storage(storage)
    if not find_sweep(store, name):
        raise UserError(f"no sweep named {name!r} in this storage.")
    problems: list[str] = []
    from studies.storage import DEFAULT_STORAGE

    tracker = Tracker(name, tracking_uri, storage_url=os.path.abspath(storage) if storage and "://" not in storage
                      else storage or os.path.abspath(DEFAULT_STORAGE), warn=problems.append)
    created = tracker.sync(store, final=True)
    tracker.release()
    if problems:
        raise UserError(problems[0])
    seen, behind = tracker.progress()
    click.echo(f"{created} run(s) created in MLflow at {tracker.uri}.")
    if behind:
        click.echo(f"{behind} more are written by the sweep's running writers"
                   + (f" ({tracker.busy})." if tracker.busy else "."))
