"""``sweep presets``: list the built-in sweep files."""

from __future__ import annotations

import click

from sweeps.errors import UserError
from sweeps.presets import preset_text, presets

__all__ = ["presets_command"]


@click.command("presets")
@click.option("--show", metavar="NAME", default=None, help="Print one preset's sweep file.")
def presets_command(show: str | None) -> None:
    """List the built-in presets ('sweep run NAME' runs one).

    \b
    Examples:
      sweep presets
      sweep presets --show playground > my-sweep.toml
    """
    table = presets()
    if show is not None:
        if show not in table:
            raise UserError(f"'--show' must be one of {sorted(table)}, but got {show!r}.")
        click.echo(preset_text(show), nl=False)
        return
    width = max(len(n) for n in table)
    for name, description in table.items():
        click.echo(f"{name:<{width}}  {description}")
