"""``sweep status``: a sweep's summary, read from the storage alone (also while it runs)."""

from __future__ import annotations

import json

import click

from sweeps.display import summary_table
from sweeps.errors import user_errors
from sweeps.options import SweepRef, named_sweep

__all__ = ["status_command"]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@user_errors
@named_sweep
def status_command(sweep: SweepRef, as_json: bool) -> None:
    """Show a sweep's progress and best trials, per dataset.

    With several objectives: each dataset's Pareto front, its size and the best value
    of each objective (--json lists the front's trials, values and parameters).

    \b
    Examples:
      sweep status playground
      sweep status playground --json
    """
    from studies.sweep import summarize

    summaries = summarize(sweep.storage, sweep.name)
    objective = sweep.studies[0].sweep.objective
    if as_json:
        shown = objective if isinstance(objective, str) else list(objective)
        click.echo(json.dumps({"sweep": sweep.name, "objective": shown, "studies": [s.to_dict() for s in summaries]}))
    else:
        click.echo(summary_table(summaries, objective=objective))
