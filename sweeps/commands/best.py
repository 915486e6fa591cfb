"""``sweep best``: each study's best configuration as a sweep file of one trial, as JSON, or as
the ``sweep train`` command that trains it again."""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import TYPE_CHECKING

import click

from studies.errors import SweepsError
from sweeps.errors import user_errors
from sweeps.options import SweepRef, named_sweep

if TYPE_CHECKING:
    from studies.sweep import BestConfig

__all__ = ["best_command", "train_line", "FORMATS"]

FORMATS = {"toml": ".toml", "json": ".json", "command": ".sh"}
_PLAIN = re.compile(r"[^A-Za-z0-9_.-]+")


def _number(value: float) -> str:
    """A float as the shortest text that reads back as the same float."""
    return repr(float(value))


def train_line(best: BestConfig) -> str:
    """The ``sweep train`` command (every argument quoted for a POSIX shell) that trains the
    best trial's network again: same data, settings and seed, alone or in a stack of its shape."""
    a, ref = best.args, next(r for r in best.study.sweep.datasets if r.name == best.study.dataset)
    words = ["sweep", "train", "--dataset", ref.source]
    for key, value in ref.options:
        if key == "label":
            words += ["--label", str(value)]
        else:
            text = (
                json.dumps(value) if isinstance(value, str) else _number(value) if isinstance(value, float) else value
            )
            words += ["--dataset-option", f"{key}={text}"]
    words += ["--features", ",".join(a.features), "--hidden", ",".join(map(str, a.hidden)) or "none"]
    words += ["--activation", a.activation, "--learning-rate", _number(a.learning_rate)]
    words += ["--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--optimizer", a.optimizer]
    if a.l2:
        words += ["--l2", _number(a.l2)]
    if a.l1:
        words += ["--l1", _number(a.l1)]
    if a.optimizer == "momentum":
        words += ["--momentum", _number(a.momentum), *(["--nesterov"] if a.nesterov else [])]
    factor = best.study.sweep.divergence_factor
    if factor != 100.0:
        words += ["--divergence-factor", _number(factor)]
    words += ["--seed", str(best.seed)]
    if best.stack is not None:
        words += [
            "--stack-widths",
            ",".join(map(str, best.stack["widths"])),
            "--stack-inputs",
            str(best.stack["inputs"]),
        ]
    return " ".join(shlex.quote(str(w)) for w in words)


def _about(best: BestConfig) -> str:
    """One line saying which trial this is (names JSON-quoted: no newline can break the line)."""
    values = ", ".join(f"{k} {v:.6g}" for k, v in best.values.items())
    return f"study {json.dumps(best.study.name)}: trial {best.trial.number} ({values}), {best.chosen_by}"


def _as_dict(best: BestConfig) -> dict[str, object]:
    from studies.sweep import train_settings

    d: dict[str, object] = {
        "study": best.study.name,
        "dataset": best.study.dataset,
        "trial": best.trial.number,
        "chosen_by": best.chosen_by,
        "values": best.values,
        "params": dict(best.trial.params),
        "seed": best.seed,
        "stack": best.stack,
        "train": train_settings(best.args),
        "command": train_line(best),
        "sweep_file": best.sweep_file(),
    }
    if best.front is not None:
        d["front"] = [
            {"trial": t.number, "values": dict(zip(best.study.objectives, t.values)), "params": dict(t.params)}
            for t in best.front
        ]
    return d


def _text(best: BestConfig, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(_as_dict(best), indent=2) + "\n"
    if fmt == "command":
        repeats = best.study.sweep.repeats
        seeds = (
            f"# its value is the mean over {repeats} seeds; this trains the first seed alone (the TOML format trains "
            "all of them)\n"
            if repeats > 1
            else ""
        )
        return f"# {_about(best)}\n{seeds}{train_line(best)}\n"
    import tomli_w

    return (
        f"# The best configuration of {_about(best)}.\n"
        "# A sweep of one trial that trains it again bit for bit: sweep run THIS-FILE\n"
        f"{tomli_w.dumps(best.sweep_file())}"
    )


@click.command("best")
@click.option("--dataset", "dataset", default=None, help="Only this dataset's study (default: every study).")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(FORMATS)), default="toml", show_default=True, help="What to print."
)
@click.option("--out", "out_dir", default=None, metavar="DIR", help="Write one file per study into DIR instead.")
@user_errors
@named_sweep
def best_command(sweep: SweepRef, dataset: str | None, fmt: str, out_dir: str | None) -> None:
    """Print each study's best configuration: a sweep file of one trial, JSON, or a command.

    TOML: a sweep file of one trial with every setting fixed to the best trial's, which
    'sweep run' trains again bit for bit; json: its values, parameters and settings (with
    several objectives also the Pareto front); command: the 'sweep train' line that trains
    the same network. With several objectives the trial is the front's best in the first
    learned objective (val_cost or val_accuracy).

    \b
    Examples:
      sweep best playground --dataset circle > circle-best.toml
      sweep best playground --format command
      sweep best playground --format json --out best/
    """
    from studies.sweep import best_config

    studies = sweep.studies
    if dataset is not None:
        studies = tuple(s for s in studies if s.dataset == dataset)
        if not studies:
            names = sorted(s.dataset for s in sweep.studies)
            raise SweepsError(f"'--dataset' must be one of {names}, but got {dataset!r}.")
    found: list[BestConfig] = []
    for study in studies:
        best = best_config(sweep.storage, study)
        if best is None:
            click.echo(f"study {json.dumps(study.name)}: no complete trial yet.", err=True)
        else:
            found.append(best)
    if not found:
        raise SweepsError(f"sweep {sweep.name!r} has no complete trial yet; nothing to print.")
    if out_dir is not None:
        _write(found, fmt, out_dir)
    elif fmt == "json":
        click.echo(json.dumps({"sweep": sweep.name, "studies": [_as_dict(b) for b in found]}, indent=2))
    elif fmt == "toml" and len(found) > 1:
        raise SweepsError(
            f"sweep {sweep.name!r} has {len(found)} studies and a TOML file holds one sweep: choose one with "
            f"'--dataset' (one of {sorted(b.study.dataset for b in found)}) or write one file each with '--out DIR'."
        )
    else:
        click.echo("".join(_text(b, fmt) for b in found), nl=False)


def _write(found: list[BestConfig], fmt: str, out_dir: str) -> None:
    """One file per study in ``out_dir``, named after its dataset (a plain name: never a path)."""
    from studies.reports import prepare_folder, write_atomic

    names = {}
    for best in found:
        stem = _PLAIN.sub("_", best.study.dataset).lstrip(".") or "dataset"
        names[best.study.dataset] = stem + FORMATS[fmt]
    prepare_folder(out_dir)
    for best in found:
        path = write_atomic(os.path.join(out_dir, names[best.study.dataset]), _text(best, fmt))
        click.echo(f"{path}: {_about(best)}")
