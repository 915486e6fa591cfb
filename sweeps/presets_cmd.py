"""``sweep presets``: list the built-in sweep files."""

from __future__ import annotations

import click

from sweeps.spec import presets

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
    from importlib import resources

    from sweeps.errors import UserError

    table = presets()
    if show is not None:
        if show not in table:
            raise UserError(f"'--show' must be one of {sorted(table)}, but got {show!r}.")
        click.echo(resources.files("sweeps.presets").joinpath(f"{show}.toml").read_text(encoding="utf-8"), nl=False)
        return
    width = max(len(n) for n in table)
    for name, description in table.items():
        click.echo(f"{name:<{width}}  {description}")
