"""Options shared by several commands."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from studies.errors import SweepsError
from studies.execution import BACKENDS, Launch
from studies.storage import DEFAULT_STORAGE, storage_file

if TYPE_CHECKING:
    import optuna

    from studies.sweep import SweepStudy

__all__ = ["SweepRef", "named_sweep", "storage_option", "tracking_option", "launch_options", "make_launch"]

storage_option = click.option(
    "--storage",
    default=None,
    metavar="URL",
    help=f"Optuna storage: a journal file path (default ./{DEFAULT_STORAGE}), sqlite:///..., "
    "postgresql://..., mysql://... or redis://...",
)
tracking_option = click.option(
    "--tracking-uri",
    default=None,
    metavar="URI",
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else ./mlflow.db).",
)


def launch_options(func: Callable) -> Callable:
    """``--backend``, ``--scheduler``, ``--heartbeat-interval``, ``--grace-period``."""
    for option in reversed(
        [
            click.option(
                "--backend",
                type=click.Choice(BACKENDS),
                default="loky",
                show_default=True,
                help="Where the workers run: local processes (loky) or a dask.distributed cluster.",
            ),
            click.option(
                "--scheduler", default=None, metavar="tcp://HOST:PORT", help="The dask scheduler (--backend dask)."
            ),
            click.option(
                "--heartbeat-interval",
                type=click.IntRange(min=1),
                default=10,
                show_default=True,
                help="Seconds between a running trial's heartbeats (RDB storages).",
            ),
            click.option(
                "--grace-period",
                type=click.IntRange(min=2),
                default=30,
                show_default=True,
                help="Seconds without a heartbeat after which a trial is failed and retried.",
            ),
        ]
    ):
        func = option(func)
    return func


def make_launch(backend: str, scheduler: str | None, heartbeat_interval: int, grace_period: int) -> Launch:
    if backend == "dask" and not scheduler:
        raise SweepsError("'--backend dask' needs '--scheduler tcp://HOST:PORT' (the dask scheduler's address).")
    if grace_period <= heartbeat_interval:
        raise SweepsError(
            f"'--grace-period' must be greater than '--heartbeat-interval', but got "
            f"{grace_period} <= {heartbeat_interval}."
        )
    return Launch(
        backend=backend, scheduler=scheduler, heartbeat_interval=heartbeat_interval, grace_period=grace_period
    )


@dataclass(frozen=True)
class SweepRef:
    """The sweep a command names: its storage (opened) and its studies."""

    name: str
    storage_url: str | None
    storage: optuna.storages.BaseStorage
    studies: tuple[SweepStudy, ...]


def named_sweep(func: Callable) -> Callable:
    """``NAME`` and ``--storage`` for a command about an existing sweep: the command receives
    ``sweep`` (a :class:`SweepRef`); a storage that can't be opened, or that holds no sweep
    of that name, is one line naming what it holds (apply below :func:`sweeps.errors.user_errors`)."""

    @functools.wraps(func)
    def wrapper(*args: object, name: str, storage: str | None, **kwargs: object) -> object:
        from sweeps.spec import NAME_MAX, NAME_RE, shown_name

        if not NAME_RE.match(name):  # no sweep has it (a sweep file's 'name' is checked the same way)
            raise SweepsError(
                f"no sweep can be named {shown_name(name)}: a sweep's name is a plain name of at most {NAME_MAX} "
                f"characters (letters, digits, '-', '_', '.', starting with a letter or digit)."
            )
        url = storage or DEFAULT_STORAGE
        path = storage_file(url)
        if path is not None and not os.path.exists(path):  # looking must not create the file (as opening would)
            raise SweepsError(f"no sweep named {name!r}: there is no storage {url!r} here (see '--storage').")
        from studies.storage import open_storage
        from studies.sweep import require_sweep

        store = open_storage(storage)
        ref = SweepRef(name, storage, store, tuple(require_sweep(store, name)))
        return func(*args, sweep=ref, **kwargs)

    return click.argument("name")(storage_option(wrapper))
