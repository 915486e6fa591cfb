"""The ``sweep`` command group; each subcommand lives in a module of its own."""

from __future__ import annotations

import functools
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from studies import signals
from studies.storage import JournalWarning
from sweeps.presets_cmd import presets_command
from sweeps.report_cmd import report_command
from sweeps.reproduce_cmd import reproduce_command
from sweeps.run_cmd import run_command
from sweeps.status_cmd import status_command
from sweeps.sync_cmd import sync_command
from sweeps.train_cmd import train_command
from sweeps.ui_cmd import ui_command
from sweeps.worker_cmd import worker_command

__all__ = ["cli", "main"]


def _show_warning(default, message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, JournalWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        default(message, category, filename, lineno, file, line)


class SweepGroup(click.Group):
    """A click group whose every error is one line on stderr and an exit code, never a traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:
        extra.pop("standalone_mode", None)
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        # SIGTERM like Ctrl-C: one line and exit code 2, at any moment.
        installed = signals.install(launcher=True)
        try:
            with warnings.catch_warnings():
                # A repaired store is news, in one line like the rest: "Warning: ...".
                warnings.simplefilter("always", JournalWarning)
                warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
                rv = super().main(args=args, prog_name=prog_name or "sweep", standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted.", err=True)
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        finally:
            for sig, handler in old.items():
                if installed and handler is not None:
                    signal.signal(sig, handler)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=SweepGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sweeps")
def cli() -> None:
    """Hyperparameter sweeps of small NumPy neural networks.

    \b
    Examples:
      sweep run playground
      sweep status playground
      sweep presets
      sweep train --dataset circle
    """


for command in (run_command, worker_command, status_command, presets_command, sync_command, train_command,
                reproduce_command, report_command, ui_command):
    cli.add_command(command)


def main() -> None:
    cli()
