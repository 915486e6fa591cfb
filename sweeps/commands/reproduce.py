"""``sweep reproduce``: retrain a recorded trial and compare its cost curve with the record."""

from __future__ import annotations

import sys

import click

from sweeps.errors import user_errors
from sweeps.options import SweepRef, named_sweep

__all__ = ["reproduce_command"]


@click.command("reproduce")
@click.option("--dataset", required=True, help="The dataset (study) of the trial.")
@click.option("--trial", type=int, required=True, help="The trial's number.")
@user_errors
@named_sweep
def reproduce_command(sweep: SweepRef, dataset: str, trial: int) -> None:
    """Retrain trial N of a sweep from what the storage recorded and compare the curves.

    Prints "reproduced" (exit 0) or the first epoch that differs (exit 1).

    \b
    Examples:
      sweep reproduce playground --dataset circle --trial 12
    """
    from studies.search import find_trial, first_difference, recorded_data, retrain

    study, found = find_trial(sweep.storage, sweep.name, dataset, trial)
    again = retrain(study, found, dataset=recorded_data(sweep.storage, study, found))
    diff = first_difference(found, again.history)
    label = found.user_attrs["run"].get("label", f"t{trial}")
    if diff is None:
        epochs = len(found.user_attrs["run"]["curves"]["train_cost"])
        div = found.user_attrs.get("divergence")
        tail = f", diverged at epoch {div['epoch']} ({div['cause']}) again" if div else ""
        click.echo(
            f"reproduced: {study.name} {label}: {epochs} epochs of train and validation costs match bit for bit{tail}."
        )
        return
    epoch, metric, old, new = diff
    click.echo(f"differs: {study.name} {label}: first at epoch {epoch}, {metric} recorded {old!r}, now {new!r}.")
    sys.exit(1)
