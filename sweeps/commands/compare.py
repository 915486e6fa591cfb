"""``sweep compare``: several sweeps side by side, from one or several storages."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import click

from studies.errors import SweepsError
from studies.storage import DEFAULT_STORAGE, redact, storage_file
from sweeps.errors import user_errors
from sweeps.options import storage_option

if TYPE_CHECKING:
    import optuna

__all__ = ["compare_command", "split_ref"]

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def split_ref(ref: str, default: str | None) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@STORAGE`` -> (name, storage URL or ``None`` for the default). A sweep's
    name has no '@', so the first one ends it (a URL may hold more: ``postgresql://me@host/db``).

    >>> split_ref("a@postgresql://me@db/sweeps", None)
    ('a', 'postgresql://me@db/sweeps')
    """
    from sweeps.spec import shown_name

    name, at, url = ref.partition("@")
    if not name or (at and not url):
        raise SweepsError(f"a sweep to compare must be NAME or NAME@STORAGE, but got {shown_name(ref)}.")
    return name, (url if at else default)


def _default_out(names: list[str]) -> str:
    """``reports/compare-A-B``: from the names, kept to plain characters (no path in them)."""
    return os.path.join("reports", "compare-" + "-".join(_SAFE.sub("_", n).strip(".") or "_" for n in names))


@click.command("compare")
@click.argument("sweeps", nargs=-1, required=True, metavar="NAME[@STORAGE]...")
@storage_option
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Output folder (default reports/compare-A-B).")
@click.option("--no-test", is_flag=True, help="Do not retrain the best configurations for their test scores.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap intervals.")
@user_errors
def compare_command(
    sweeps: tuple[str, ...], storage: str | None, out_dir: str | None, no_test: bool, seed: int
) -> None:
    """Compare sweeps side by side: compare.html (self-contained) and compare.md with figures.

    Per dataset: the optimization histories overlaid, each sweep's best value with a
    bootstrap interval, the trials it took to come within 5% of its best, the test score
    of its best configuration; then how the sweep files differ. Each sweep is NAME (in
    --storage) or NAME@STORAGE (a storage of its own).

    \b
    Examples:
      sweep compare playground playground-tpe
      sweep compare old@runs/old.journal new --out site/compare
    """
    from studies.reports import SweptRef, build_comparison
    from studies.storage import open_storage

    if len(sweeps) < 2:
        raise SweepsError(f"'sweep compare' needs at least two sweeps, but got {list(sweeps)}.")
    from sweeps.spec import shown_name

    parsed = [split_ref(ref, storage) for ref in sweeps]
    opened: dict[str, optuna.storages.BaseStorage] = {}
    refs, seen = [], set()
    for name, url in parsed:
        url = url or DEFAULT_STORAGE
        path = storage_file(url)
        if path is not None and not os.path.exists(path):  # looking must not create the file
            raise SweepsError(f"no sweep named {shown_name(name)}: there is no storage {redact(url)!r} here.")
        same = (name, os.path.realpath(path) if path is not None else url)  # ./x.journal is x.journal
        if same in seen:
            raise SweepsError(f"each sweep may be compared once, but got {shown_name(name)} twice.")
        seen.add(same)
        if url not in opened:
            opened[url] = open_storage(url)
        # The name alone, unless the same name comes from two storages.
        twice = sum(1 for n, _ in parsed if n == name) > 1
        refs.append(SweptRef(f"{name}@{redact(url)}" if twice else name, opened[url], name))
    out_dir = out_dir or _default_out([name for name, _ in parsed])
    files = build_comparison(refs, out_dir=out_dir, seed=seed, test_scores=not no_test)
    click.echo(f"comparison written: {files.html}, {files.markdown} ({len(files.figures)} figures)")
