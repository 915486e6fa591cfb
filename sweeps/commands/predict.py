"""``sweep predict``: a kept network's predictions on new rows of a CSV file."""

from __future__ import annotations

import csv
import io

import click

from sweeps.errors import user_errors

__all__ = ["predict_command"]


@click.command("predict")
@click.argument("model_file", metavar="MODEL.npz")
@click.argument("data_file", metavar="DATA.csv")
@click.option("--out", "out", default=None, metavar="FILE", help="Write the predictions here (default: stdout).")
@user_errors
def predict_command(model_file: str, data_file: str, out: str | None) -> None:
    """Predict with a kept network (the report's model-DATASET.npz) on new rows of a CSV.

    The CSV's columns must be the network's raw inputs, named as in training (the model's
    feature families and standardization are applied as they were); the output is those
    columns and 'prediction' (a class's name, or a value in the target's units).

    \b
    Examples:
      sweep predict reports/playground/model-circle.npz new.csv --out predictions.csv
    """
    from engine import load_model, read_rows

    model = load_model(model_file)
    rows = read_rows(data_file, model.raw_names)
    predicted = model.predict_names(rows) if len(rows) else []
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow([*model.raw_names, "prediction"])
    writer.writerows([*(repr(float(v)) for v in row), p] for row, p in zip(rows, predicted))
    if out is None:
        click.echo(buf.getvalue(), nl=False)
        return
    from studies.reports import write_atomic

    write_atomic(out, buf.getvalue())
    click.echo(f"{len(predicted)} prediction(s) written to {out} (model trained on {model.dataset!r}).", err=True)
