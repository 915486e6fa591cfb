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

    Prints "reproduced" (exit 0) or the first epoch that differs (exit 1). A trial of a sweep
    with 'repeats' has each of its seeds retrained and compared.

    \b
    Examples:
      sweep reproduce playground --dataset circle --trial 12
    """
    from studies.search import find_trial, first_difference, recorded_data, retrain_seeds, seed_difference

    study, found = find_trial(sweep.storage, sweep.name, dataset, trial)
    again = retrain_seeds(study, found, dataset=recorded_data(sweep.storage, study, found))
    label = found.user_attrs["run"].get("label", f"t{trial}")
    rep = found.user_attrs.get("repeats")
    if isinstance(rep, dict):
        diffs = [
            (f" seed {s}", seed_difference(found, j, r.history)) for j, (s, r) in enumerate(zip(rep["seeds"], again))
        ]
    else:
        diffs = [("", first_difference(found, again[0].history))]
    for which, diff in diffs:
        if diff is not None:
            epoch, metric, old, new = diff
            click.echo(
                f"differs: {study.name} {label}{which}: first at epoch {epoch}, {metric} recorded {old!r}, now {new!r}."
            )
            sys.exit(1)
    epochs = len(found.user_attrs["run"]["curves"]["train_cost"])
    div = found.user_attrs.get("divergence")
    tail = f", diverged at epoch {div['epoch']} ({div['cause']}) again" if div else ""
    seeds = f" for each of its {len(rep['seeds'])} seeds {rep['seeds']}" if isinstance(rep, dict) else ""
    click.echo(
        f"reproduced: {study.name} {label}: {epochs} epochs of train and validation costs match bit for bit"
        f"{seeds}{tail}."
    )
