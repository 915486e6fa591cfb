"""``sweep train``: train one network and show how it went."""

from __future__ import annotations

import json
import sys

import click

from engine import ACTIVATIONS, MLP, OPTIMIZERS, History, check_features, load_dataset, train, with_features
from sweeps.errors import UserError, user_errors
from sweeps.limits import MAX_EPOCHS

__all__ = ["train_command", "parse_hidden", "parse_features"]


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"8,8"`` -> ``(8, 8)``; ``""`` or ``"none"`` -> ``()`` (no hidden layer)."""
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise UserError(
            f"'--hidden' must be comma-separated layer widths >= 1 such as '8,8', or 'none', but got {text!r}."
        )
    return sizes


def parse_features(text: str) -> tuple[str, ...]:
    """``"sines,linear"`` -> ``("linear", "sines")`` (the columns' order); raises ``ValueError``."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    return check_features(parts, key="--features")


def _summary(dataset_name: str, model: MLP, history: History, args: dict) -> str:
    arch = "-".join(str(s) for s in model.sizes)
    inputs = "" if args["features"] == ["linear"] else f" on inputs {'+'.join(args['features'])}"
    lines = [
        f"trained {dataset_name}{inputs}: {arch} {model.activation} -> {model.output}, "
        f"{args['optimizer']} lr={args['learning_rate']:g}, {history.epochs}/{args['epochs']} epochs"
    ]
    if history.epochs:
        lines.append(f"  train cost      {history.train_cost[-1]:.6g}")
        lines.append(f"  val cost        {history.val_cost[-1]:.6g}")
        if history.val_accuracy:
            lines.append(f"  val accuracy    {history.val_accuracy[-1]:.4f}")
        else:
            lines.append(f"  val R^2         {history.val_r2[-1]:.4f}")
    d = history.divergence
    if d is None:
        lines.append("  divergence      none")
    else:
        lines.append(
            f"  divergence      {d.cause} at epoch {d.epoch}, step {d.step} "
            f"(last finite cost {d.last_finite_cost:.6g}); training stopped"
        )
    return "\n".join(lines)


@click.command("train")
@click.option("--dataset", "dataset", required=True, help="Built-in name (circle, xor, iris, ...) or a .csv/.npz path.")
@click.option("--label", default=None, help="CSV label column (default: the last column).")
@click.option(
    "--features",
    default="linear",
    show_default=True,
    help="Input feature families, comma-separated: linear, squares, products, sines.",
)
@click.option(
    "--hidden", default="8,8", show_default=True, help="Hidden layer widths, comma-separated; 'none' for none."
)
@click.option("--activation", type=click.Choice(sorted(ACTIVATIONS)), default="tanh", show_default=True)
@click.option("--learning-rate", type=float, default=0.03, show_default=True)
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--optimizer", type=click.Choice(sorted(OPTIMIZERS)), default="sgd", show_default=True)
@click.option("--l2", type=click.FloatRange(min=0), default=0.0, show_default=True, help="L2 regularization rate.")
@click.option("--l1", type=click.FloatRange(min=0), default=0.0, show_default=True, help="L1 regularization rate.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the split, the weights and the shuffling.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the arguments and the curves.")
@user_errors
def train_command(
    dataset: str,
    label: str | None,
    features: str,
    hidden: str,
    activation: str,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    optimizer: str,
    l2: float,
    l1: float,
    seed: int,
    as_json: bool,
) -> None:
    """Train one network on one dataset and print how it went.

    \b
    Examples:
      sweep train --dataset circle
      sweep train --dataset xor --hidden 4 --activation relu --learning-rate 0.1 --epochs 50
      sweep train --dataset spiral --features linear,sines --hidden 8 --learning-rate 0.1
      sweep train --dataset data/mine.csv --label species --hidden none --json
    """
    sizes = parse_hidden(hidden)
    families = parse_features(features)
    options = {} if label is None else {"label": label}
    ds = load_dataset(dataset, seed=seed, **options)
    check_features(families, n_features=ds.n_raw_features, dataset=ds.name, key="--features")
    ds = with_features(ds, families)
    model = MLP(ds.n_features, sizes, ds.n_outputs, activation=activation, seed=seed)
    args = {
        "dataset": dataset,
        "label": label,
        "features": list(families),
        "hidden": list(sizes),
        "activation": activation,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "l2": l2,
        "l1": l1,
        "seed": seed,
    }
    # The bar draws itself only on a terminal; piped output (or --json) stays clean.
    show = sys.stderr.isatty()
    with click.progressbar(length=epochs, label=f"training on {ds.name}", file=sys.stderr, hidden=not show) as bar:

        def on_epoch(epoch: int, history: History) -> None:
            bar.update(1)

        history = train(
            model,
            ds,
            learning_rate=learning_rate,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            l2=l2,
            l1=l1,
            seed=seed,
            on_epoch=on_epoch,
        )
    if as_json:
        out: dict[str, object] = {
            "arguments": args,
            "task": ds.task,
            "train_cost": history.train_cost,
            "val_cost": history.val_cost,
        }
        out["val_accuracy" if history.val_accuracy or ds.task != "regression" else "val_r2"] = (
            history.val_accuracy if ds.task != "regression" else history.val_r2
        )
        out["divergence"] = None if history.divergence is None else history.divergence.to_dict()
        click.echo(json.dumps(out))
    else:
        click.echo(_summary(ds.name, model, history, args))
