"""``sweep run``: run or resume a sweep from a sweep file or a preset."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from studies.storage import DEFAULT_STORAGE, redact, storage_file, storage_kind
from sweeps.display import Progress, mlflow_end, next_steps, summary_table
from sweeps.errors import UserError, user_errors
from sweeps.options import launch_options, make_launch, storage_option, tracking_option

if TYPE_CHECKING:
    from studies.sweep import SweepConfig

__all__ = ["run_command"]


@click.command("run")
@click.argument("spec", metavar="SPEC_OR_PRESET")
@click.option("--trials", type=int, default=None, help="Finished trials per dataset, in total (overrides the file).")
@click.option(
    "--jobs",
    type=int,
    default=None,
    help="Worker processes (overrides the file; default: all cores, but one for the MLflow writer when MLflow is on).",
)
@click.option("--seed", type=int, default=None, help="Seed of data splits, networks and samplers (overrides the file).")
@click.option(
    "--stack",
    "--batch",
    "stack",
    type=int,
    default=None,
    help="Trials each worker keeps training at once as one stacked network (default 8; 1: one network at a "
    "time; overrides the file; --batch is its old name).",
)
@click.option(
    "--budget",
    default=None,
    metavar="DURATION",
    help='Wall-clock budget of this run, for every worker on any host (e.g. "90s", "30m", "1h30m"; '
    "overrides the file): running trials stop at their next epoch when it ends.",
)
@storage_option
@tracking_option
@click.option(
    "--no-mlflow", is_flag=True, help="Do not log to MLflow (the storage keeps everything; see 'sweep sync')."
)
@click.option("--check", is_flag=True, help="Only check the sweep file (datasets included) and say what would run.")
@launch_options
@user_errors
def run_command(
    spec: str,
    trials: int | None,
    jobs: int | None,
    seed: int | None,
    stack: int | None,
    budget: str | None,
    storage: str | None,
    tracking_uri: str | None,
    no_mlflow: bool,
    check: bool,
    backend: str,
    scheduler: str | None,
    heartbeat_interval: int,
    grace_period: int,
) -> int:
    """Run a sweep, or resume it to its totals: one Optuna study per dataset.

    SPEC_OR_PRESET is a sweep file (TOML) or a built-in preset (see 'sweep presets').
    Running the same command again continues each study to its total and adds nothing
    beyond it; an interrupted sweep resumes where it stopped. Workers on other hosts
    join with 'sweep worker NAME --storage URL'.

    \b
    Examples:
      sweep run playground
      sweep run playground --trials 100 --jobs 2
      sweep run playground --budget 30m
      sweep run my-sweep.toml --check
      sweep run my-sweep.toml --storage postgresql://me@db-host/sweeps --tracking-uri http://mlflow-host:5000
      sweep run my-sweep.toml --backend dask --scheduler tcp://dask-host:8786 --jobs 16
    """
    from studies.execution import SweepInterrupted, run_sweep
    from studies.search import open_source
    from sweeps.spec import apply_overrides, loading_once

    launch = make_launch(backend, scheduler, heartbeat_interval, grace_period)
    with loading_once():  # the file, then its overrides: a large dataset file is read once
        config, stored = _load(spec, storage or DEFAULT_STORAGE)
        config = apply_overrides(config, trials=trials, jobs=jobs, seed=seed, stack=stack, budget=budget, stored=stored)
    where = redact(storage or DEFAULT_STORAGE)
    storage_kind(storage or DEFAULT_STORAGE)  # a bad URL is one line, before anything else is said
    # A warm start's sweep must exist: one line if not, before anything is said or written.
    source = open_source(config, storage or DEFAULT_STORAGE) if config.warm_start is not None else None
    if check:
        _tell_check(config, storage or DEFAULT_STORAGE, source)
        limits = _limits(config)
        if limits:
            click.echo(limits)
        return 0
    click.echo(
        f"sweep {config.name!r}: {len(config.datasets)} dataset(s) x {config.trials} trials, storage {where}", err=True
    )
    progress = Progress(sweep=config.name)
    try:
        result = run_sweep(
            config, storage_url=storage, tracking_uri=tracking_uri, track=not no_mlflow, launch=launch, events=progress
        )
    except SweepInterrupted as exc:
        raise UserError(str(exc)) from None
    click.echo(summary_table(result.summaries, objective=config.objective))
    click.echo(next_steps(config.name, where if storage else None))
    return mlflow_end(config.name, result.mlflow)


def _tell_check(config: SweepConfig, storage: str, source: object) -> None:
    """What ``--check`` says: the sweep, each dataset as the run will see it, and what the
    storage holds of it (a spec the run would refuse fails here too)."""
    searched = ", ".join(sorted(config.space.searched)) or "nothing"
    objective = (
        f"objective {config.objective}"
        if not config.multi
        else f"objectives {', '.join(config.objectives)} ({', '.join(config.directions)}: a Pareto front)"
    )
    state = _storage_state(config, storage)  # before 'valid': a spec the run refuses is refused here
    click.echo(
        f"sweep {config.name!r} is valid: datasets {[d.name for d in config.datasets]}, "
        f"{config.trials} trials each, searching {searched}; input features "
        f"{config.space.describe_features()}; sampler {config.sampler.name}, "
        f"pruner {config.pruner.name}, {objective}."
    )
    for ref in config.datasets:
        click.echo(f"  {ref.described}.")
    click.echo(state)
    if source is not None:
        click.echo(source.describe([d.name for d in config.datasets]) + ".")  # type: ignore[attr-defined]


def _storage_state(config: SweepConfig, storage: str) -> str:
    """Whether the storage is new, holds this sweep (and how far it got), or holds another
    spec under its name (raised, as the run would). Read only: nothing is created to answer."""
    from studies.storage import open_storage
    from studies.sweep import check_data, check_same_sweep, data_signatures, find_sweep, summarize

    where = redact(storage)
    path = storage_file(storage)
    if path is not None:
        _check_writable(path, where)  # the run would fail to write it: so does --check
    if path is not None and not os.path.isfile(path):
        return f"storage {where}: new (no file yet); the run creates it and starts the sweep."
    if storage_kind(storage) == "rdb" and not _has_optuna_tables(storage):  # a server away: one line
        return f"storage {where}: new (no Optuna tables yet); the run creates them and starts the sweep."
    backend = open_storage(storage, heartbeat_interval=None, checked=storage_kind(storage) == "rdb")
    found = find_sweep(backend, config.name)
    if not found:
        return f"storage {where}: holds no sweep {config.name!r}; the run starts it."
    check_same_sweep(config, found)
    check_data(backend, config, [(s.dataset, s.study_id) for s in found], data_signatures(config))
    done = {s.dataset: s.finished for s in summarize(backend, config.name)}
    counts = ", ".join(f"{ref.name} {done.get(ref.name, 0)}/{config.trials}" for ref in config.datasets)
    left = all(done.get(ref.name, 0) >= config.trials for ref in config.datasets)
    then = "nothing left to run" if left else "the run resumes it"
    return f"storage {where}: holds sweep {config.name!r}, finished trials {counts}; {then}."


def _limits(config: SweepConfig) -> str:
    """What may stop the sweep short of its totals, for --check ('' if nothing)."""
    from studies.sweep import format_duration

    parts = []
    if config.budget is not None:
        parts.append(f"a budget of {format_duration(config.budget)} from the start of the run")
    if config.trial_budget is not None:
        parts.append(f"at most {format_duration(config.trial_budget)} per trial")
    if config.stop is not None:
        parts.append(
            f"each study stops after {config.stop.patience} finished trials without an improvement "
            f"> {config.stop.min_delta}"
        )
    return ("Limits: " + "; ".join(parts) + ".") if parts else ""


def _load(spec: str, storage: str) -> tuple[SweepConfig, bool]:
    """The sweep file, validated; a sweep already in the storage, unchanged, is checked by the
    rules it was stored under (as 'sweep worker' does): a rule added since (a range's 'step'
    dividing it) does not keep its own file from resuming it. Returns the sweep, and whether
    it was checked by the rules it was stored under."""
    from studies.storage import open_storage
    from studies.sweep import SweepConfig, find_sweep
    from sweeps.spec import load_spec

    try:
        return load_spec(spec), False
    except ValueError as strict:
        lenient = load_spec(spec, stored=True)  # another mistake in the file: that one's line
        try:  # read only: no journal file, SQLite file or database tables created to answer
            path = storage_file(storage)
            found = (
                []
                if path is not None and not os.path.isfile(path)
                else find_sweep(
                    open_storage(storage, heartbeat_interval=None, checked=storage_kind(storage) == "rdb"), lenient.name
                )
            )
        except Exception:  # noqa: BLE001 - no storage to resume from: the file's own mistake is the answer
            found = []
        identity = lenient.identity()
        if not found or any(SweepConfig.identity_of(dict(s.config)) != identity for s in found):
            raise strict from None
        return lenient, True


def _has_optuna_tables(url: str) -> bool:
    """Whether a database holds Optuna's tables (read only: an empty database is a new storage)."""
    import sqlalchemy

    from studies.storage import storage_errors

    with storage_errors(url, doing="read"):
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            return sqlalchemy.inspect(engine).has_table("version_info")
        finally:
            engine.dispose()


def _check_writable(path: str, where: str) -> None:
    """A local storage the run could not write (no folder, a read-only file system or file, an
    immutable file, no permission), said as the run would say it, without writing anything."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path) and not os.path.isfile(path):
        raise UserError(f"'--storage' {where!r} is not a storage file (a folder, a device or a pipe).")
    if not os.path.isdir(folder):
        raise UserError(f"'--storage' {where!r}: its folder {folder!r} does not exist.")
    target = path if os.path.exists(path) else folder
    if not os.access(target, os.W_OK):
        raise UserError(
            f"cannot write the storage {where!r}: {'the file' if target == path else 'its folder'} is read-only "
            "(a read-only file system, an immutable file or no permission); make it writable or choose "
            "another --storage."
        )
