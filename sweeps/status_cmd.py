"""``sweep status``: a sweep's summary, read from the storage alone (also while it runs)."""

from __future__ import annotations

import json

import click

from studies import open_storage, summarize
from studies.summary import find_sweep
from sweeps.display import summary_table
from sweeps.errors import UserError, user_errors
from sweeps.options import storage_option

__all__ = ["status_command"]


@click.command("status")
@click.argument("name")
@storage_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@user_errors
def status_command(name: str, storage: str | None, as_json: bool) -> None:
    """Show a sweep's progress and best trials, per dataset.

    \b
    Examples:
      sweep status playground
      sweep status playground --json
    """
    store = open_storage(storage)
    studies = find_sweep(store, name)
    if not studies:
        names = sorted({s.study_name.split("/", 1)[0] for s in store.get_all_studies() if "/" in s.study_name})
        raise UserError(f"no sweep named {name!r} in this storage; it holds {names}.")
    summaries = summarize(store, name)
    objective = str(studies[0].config.get("objective", "val_cost"))
    if as_json:
        click.echo(json.dumps({"sweep": name, "objective": objective,
                               "studies": [s.to_dict() for s in summaries]}))
    else:
        click.echo(summary_table(summaries, objective=objective))
