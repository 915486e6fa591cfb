"""The ``sweep`` command group; each subcommand lives in a module of its own, imported only when
it runs (or shows its own help): ``sweep --help`` answers without importing Optuna, MLflow
or matplotlib (click's lazy-loading group pattern)."""

from __future__ import annotations

import functools
import importlib
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import click

from studies.errors import JournalWarning
from studies.execution import signals

__all__ = ["cli", "main", "COMMANDS", "EXIT_BUG"]

# A bug (an exception outside the library's error family): EX_SOFTWARE of sysexits.h, apart
# from 1, which 'sweep reproduce' uses for "the curves differ".
EXIT_BUG = 70

# name -> (module, command, short help as `sweep --help` lists it: the command's own, at click's
# width; tests/sweeps/test_cli.py checks it, so that listing the commands imports none of them).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "best": ("sweeps.commands.best", "best_command", "Print each study's best configuration: a sweep file of one..."),
    "run": ("sweeps.commands.run", "run_command", "Run a sweep, or resume it to its totals: one Optuna study per..."),
    "worker": (
        "sweeps.commands.worker",
        "worker_command",
        "Join sweep NAME: its spec is read from the storage; work until...",
    ),
    "status": ("sweeps.commands.status", "status_command", "Show a sweep's progress and best trials, per dataset."),
    "presets": ("sweeps.commands.presets", "presets_command", "List the built-in presets ('sweep run NAME' runs one)."),
    "sync": ("sweeps.commands.sync", "sync_command", "Create the MLflow runs a sweep is missing (idempotent: twice..."),
    "train": ("sweeps.commands.train", "train_command", "Train one network on one dataset and print how it went."),
    "reproduce": (
        "sweeps.commands.reproduce",
        "reproduce_command",
        "Retrain trial N of a sweep from what the storage recorded and...",
    ),
    "report": ("sweeps.commands.report", "report_command", "Write a sweep's report: report.html (self-contained),..."),
    "predict": (
        "sweeps.commands.predict",
        "predict_command",
        "Predict with a kept network (the report's model-DATASET.npz)...",
    ),
    "compare": (
        "sweeps.commands.compare",
        "compare_command",
        "Compare sweeps side by side: compare.html (self-contained) and...",
    ),
    "ui": ("sweeps.commands.ui", "ui_command", "Start MLflow's UI over the sweep's runs (and optuna-dashboard..."),
}


def _show_warning(default, message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, JournalWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        default(message, category, filename, lineno, file, line)


class SweepGroup(click.Group):
    """A click group whose subcommands are imported when used, and whose every error is one line
    on stderr and an exit code, never a traceback, unless it is a bug."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands, from the table: no command module is imported to list them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,  # ignored: errors are always said here, in one line
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        # SIGTERM like Ctrl-C: one line and exit code 2, at any moment.
        installed = signals.install(launcher=True)
        try:
            with warnings.catch_warnings():
                # A repaired store is news, in one line like the rest: "Warning: ...".
                warnings.simplefilter("always", JournalWarning)
                warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
                rv = super().main(
                    args=args,
                    prog_name=prog_name or "sweep",
                    complete_var=complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                )
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted.", err=True)
            sys.exit(2)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except Exception:  # noqa: BLE001 - not the library's error family: a bug, said as one
            traceback.print_exc()
            click.echo(
                "Error: the above is a bug in sweeps, not a mistake of yours; please report it with this traceback.",
                err=True,
            )
            sys.exit(EXIT_BUG)
        finally:
            try:
                for sig, handler in old.items():
                    if installed and handler is not None:
                        signal.signal(sig, handler)
            except KeyboardInterrupt:  # a stop signal as the command ends: its outcome stands
                pass
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


def main() -> None:
    cli()
