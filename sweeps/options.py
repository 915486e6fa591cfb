"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable

import click

from studies.runner import BACKENDS, Launch
from studies.storage import DEFAULT_STORAGE

__all__ = ["storage_option", "tracking_option", "launch_options", "make_launch"]

storage_option = click.option(
    "--storage", default=None, metavar="URL",
    help=f"Optuna storage: a journal file path (default ./{DEFAULT_STORAGE}), sqlite:///..., "
         "postgresql://..., mysql://... or redis://...",
)
tracking_option = click.option(
    "--tracking-uri", default=None, metavar="URI", envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
)


def launch_options(func: Callable) -> Callable:
    """``--backend``, ``--scheduler``, ``--heartbeat-interval``, ``--grace-period``."""
    for option in reversed([
        click.option("--backend", type=click.Choice(BACKENDS), default="loky", show_default=True,
                     help="Where the workers run: local processes (loky) or a dask.distributed cluster."),
        click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="The dask scheduler (--backend dask)."),
        click.option("--heartbeat-interval", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Seconds between a running trial's heartbeats (RDB storages)."),
        click.option("--grace-period", type=click.IntRange(min=2), default=30, show_default=True,
                     help="Seconds without a heartbeat after which a trial is failed and retried."),
    ]):
        func = option(func)
    return func


def make_launch(backend: str, scheduler: str | None, heartbeat_interval: int, grace_period: int) -> Launch:
    if backend == "dask" and not scheduler:
        raise ValueError("'--backend dask' needs '--scheduler tcp://HOST:PORT' (the dask scheduler's address).")
    if grace_period <= heartbeat_interval:
        raise ValueError(f"'--grace-period' must be greater than '--heartbeat-interval', but got "
                         f"{grace_period} <= {heartbeat_interval}.")
    return Launch(backend=backend, scheduler=scheduler, heartbeat_interval=heartbeat_interval,
                  grace_period=grace_period)


