"""``sweep train``: train one network and show how it went."""

from __future__ import annotations

import json
import sys
import tomllib
from dataclasses import replace
from typing import Any

import click

from engine import (
    ACTIVATIONS,
    MLP,
    OPTIMIZERS,
    Dataset,
    History,
    Member,
    check_features,
    load_dataset,
    load_model,
    train,
    train_stacked,
    with_features,
)
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


def _loaded(path: str, ds: Dataset) -> tuple[MLP, Dataset]:
    """The kept network of ``path`` and the dataset with its inputs: the same raw columns (by
    name), its feature families, and the standardization it was trained with."""
    saved = load_model(path)
    if tuple(ds.raw_names) != saved.raw_names:
        raise UserError(
            f"'--load' {path!r} takes the inputs {list(saved.raw_names)}, but dataset {ds.name!r} has "
            f"{list(ds.raw_names)}."
        )
    if ds.task != saved.task or ds.n_outputs != saved.model.sizes[-1]:
        raise UserError(
            f"'--load' {path!r} is a {saved.task} network with {saved.model.sizes[-1]} output(s), but dataset "
            f"{ds.name!r} is a {ds.task} task with {ds.n_outputs}."
        )
    ds = with_features(ds, saved.features)
    # The network's own standardization, so that it sees its inputs as it was trained to.
    raw = tuple(saved.inputs(part) for part in ds.raw)
    ds = replace(ds, X_train=raw[0], X_val=raw[1], X_test=raw[2], input_mean=saved.input_mean)
    ds = replace(ds, input_scale=saved.input_scale)
    if ds.task == "regression":  # the targets as the network learned them: its own scaling
        ys = tuple(
            (y * ds.target_scale + ds.target_mean - saved.target_mean) / saved.target_scale
            for y in (ds.y_train, ds.y_val, ds.y_test)
        )
        ds = replace(ds, y_train=ys[0], y_val=ys[1], y_test=ys[2])
        ds = replace(ds, target_mean=saved.target_mean, target_scale=saved.target_scale)
    return saved.model, ds


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
@click.option("--momentum", type=float, default=0.9, show_default=True, help="Momentum (--optimizer momentum).")
@click.option("--nesterov", is_flag=True, help="Nesterov momentum (--optimizer momentum).")
@click.option(
    "--divergence-factor",
    type=float,
    default=100.0,
    show_default=True,
    help="A cost above this multiple of the untrained cost is divergence.",
)
@click.option(
    "--dataset-option",
    "dataset_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option as in the sweep file (noise=0.1, n_samples=800, task=..., val_fraction=...); repeatable.",
)
@click.option(
    "--stack-widths",
    default=None,
    metavar="W,W",
    help="Train as a sweep's worker does: alone in a stack of these hidden widths (what 'sweep best' prints).",
)
@click.option("--stack-inputs", type=click.IntRange(min=1), default=None, help="The stack's input columns.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the arguments and the curves.")
@click.option(
    "--load",
    "load",
    default=None,
    metavar="MODEL.npz",
    help="Start from a kept network (sweep report's model-DATASET.npz): its layers, activation and "
    "inputs; --hidden, --activation and --features are then its own.",
)
@user_errors
def train_command(
    dataset: str,
    label: str | None,
    features: str,
    hidden: str,
    activation: str,
    as_json: bool,
    load: str | None,
    dataset_options: tuple[str, ...],
    stack_widths: str | None,
    stack_inputs: int | None,
    **opts: Any,
) -> None:
    """Train one network on one dataset and print how it went.

    \b
    Examples:
      sweep train --dataset circle
      sweep train --dataset xor --hidden 4 --activation relu --learning-rate 0.1 --epochs 50
      sweep train --dataset spiral --features linear,sines --hidden 8 --learning-rate 0.1
      sweep train --dataset data/mine.csv --label species --hidden none --json
      sweep train --dataset circle --load reports/playground/model-circle.npz --epochs 20
    """
    options = _dataset_options(dataset_options)
    if label is not None:
        options["label"] = label
    ds = load_dataset(dataset, seed=opts["seed"], **options)
    if load is not None:
        if stack_widths is not None:
            raise UserError("'--load' starts from a kept network; it can't be trained in a stack ('--stack-widths').")
        model, ds = _loaded(load, ds)
        sizes, families, activation = model.hidden_sizes, ds.features, model.activation
    else:
        sizes = parse_hidden(hidden)
        families = parse_features(features)
        check_features(families, n_features=ds.n_raw_features, dataset=ds.name, key="--features")
        ds = with_features(ds, families)
        model = MLP(ds.n_features, sizes, ds.n_outputs, activation=activation, seed=opts["seed"])
    args = {
        "dataset": dataset,
        "label": label,
        "features": list(families),
        "hidden": list(sizes),
        "activation": activation,
        **opts,
    }
    stack = None if stack_widths is None else (parse_hidden(stack_widths), stack_inputs)
    model, history = _fit(model, ds, stack, opts)
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


def _dataset_options(given: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, each value read as a TOML value (a number, or a string in quotes or bare)."""
    options: dict[str, object] = {}
    for item in given:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"'--dataset-option' must be KEY=VALUE such as noise=0.1, but got {item!r}.")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        options[key.strip()] = value
    return options


def _fit(
    model: MLP, ds: Dataset, stack: tuple[tuple[int, ...], int | None] | None, opts: dict[str, Any]
) -> tuple[MLP, History]:
    """Train as a sweep's worker does (one BLAS thread: the same sums), alone or in a stack."""
    from threadpoolctl import threadpool_limits

    common = {
        "epochs": opts["epochs"],
        "batch_size": opts["batch_size"],
        "optimizer": opts["optimizer"],
        "momentum": opts["momentum"],
        "nesterov": opts["nesterov"],
        "divergence_factor": opts["divergence_factor"],
    }
    # The bar draws itself only on a terminal; piped output (or --json) stays clean.
    show = sys.stderr.isatty()
    bar = click.progressbar(length=opts["epochs"], label=f"training on {ds.name}", file=sys.stderr, hidden=not show)
    with bar, threadpool_limits(1):
        if stack is not None:
            member = Member(
                model.hidden_sizes,
                opts["learning_rate"],
                l2=opts["l2"],
                l1=opts["l1"],
                seed=opts["seed"],
                activation=model.activation,
            )
            ((model, history),) = train_stacked(
                [member], ds, widths=stack[0], inputs=stack[1], on_epoch=lambda *_: bar.update(1), **common
            )
            return model, history
        history = train(
            model,
            ds,
            learning_rate=opts["learning_rate"],
            l2=opts["l2"],
            l1=opts["l1"],
            seed=opts["seed"],
            on_epoch=lambda *_: bar.update(1),
            **common,
        )
    return model, history
