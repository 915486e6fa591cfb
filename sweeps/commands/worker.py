"""``sweep worker``: join an existing sweep from any host and work until every study is done."""

from __future__ import annotations

import click

from studies.storage import DEFAULT_STORAGE, redact
from sweeps.display import Progress, mlflow_end, summary_table
from sweeps.errors import UserError, user_errors
from sweeps.options import SweepRef, launch_options, make_launch, named_sweep, tracking_option

__all__ = ["worker_command"]


@click.command("worker")
@click.option(
    "--jobs",
    type=int,
    default=None,
    help="Worker processes on this host (default: all cores, but one for the MLflow writer with --mlflow).",
)
@click.option(
    "--stack",
    "--batch",
    "stack",
    type=int,
    default=None,
    help="Trials each worker keeps training at once as one stacked network (default: the sweep's; --batch is "
    "its old name).",
)
@click.option(
    "--budget",
    default=None,
    metavar="DURATION",
    help='Start the sweep\'s wall-clock budget now (e.g. "30m") if none is running; without it, the '
    "worker keeps the deadline its 'sweep run' set, if any.",
)
@tracking_option
@click.option(
    "--mlflow",
    "track",
    is_flag=True,
    help="Also write this host's trials to MLflow (else the 'sweep run' host writes them, later).",
)
@launch_options
@user_errors
@named_sweep
def worker_command(
    sweep: SweepRef,
    jobs: int | None,
    stack: int | None,
    budget: str | None,
    tracking_uri: str | None,
    track: bool,
    backend: str,
    scheduler: str | None,
    heartbeat_interval: int,
    grace_period: int,
) -> int:
    """Join sweep NAME: its spec is read from the storage; work until every study has its total.

    Start any number of workers, on any hosts, at any time; stop them at any time (their
    trials in flight are failed and re-run by the others). Dataset files must be at the
    same paths on every host.

    \b
    Examples:
      sweep worker demo --storage postgresql://me@db-host/sweeps --jobs 8
      sweep worker demo --storage postgresql://me@db-host/sweeps --mlflow --tracking-uri http://mlflow-host:5000
    """
    from studies.execution import SweepInterrupted, run_sweep
    from studies.sweep import check_data, data_signatures
    from sweeps.limits import max_jobs
    from sweeps.spec import apply_overrides, loading_once, spec_from_dict

    launch = make_launch(backend, scheduler, heartbeat_interval, grace_period)
    name, storage, store, found = sweep.name, sweep.storage_url, sweep.storage, list(sweep.studies)
    stored = dict(found[0].config)
    stored["trials"] = max(s.total for s in found)
    stored.pop("budget", None)  # the deadline in the storage is the budget; --budget starts one if none runs
    stored_jobs = stored.get("jobs")
    if isinstance(stored_jobs, int) and stored_jobs > max_jobs():
        del stored["jobs"]  # another host's count, more than this one runs: all cores here, or --jobs
    with loading_once():  # the stored spec, then its overrides: a large dataset file is read once
        config = apply_overrides(
            spec_from_dict(stored, origin=f"sweep {name!r} in the storage", stored=True),
            jobs=jobs,
            stack=stack,
            budget=budget,
            stored=True,
        )
    names = {s.name for s in found}
    missing = [config.study_name(ref) for ref in config.datasets if config.study_name(ref) not in names]
    if missing:
        raise UserError(
            f"sweep {name!r} in storage {redact(storage or DEFAULT_STORAGE)} has no study {missing[0]!r} "
            f"(it lists {sorted(names)}); was it deleted? Run 'sweep run SPEC' to recreate it."
        )
    check_data(store, config, [(s.dataset, s.study_id) for s in found], data_signatures(config))
    click.echo(
        f"worker for sweep {name!r}: {len(config.datasets)} dataset(s), storage {redact(storage or DEFAULT_STORAGE)}",
        err=True,
    )
    progress = Progress(sweep=name)
    try:
        result = run_sweep(
            config,
            storage_url=storage,
            tracking_uri=tracking_uri,
            track=track,
            launch=launch,
            create=False,
            events=progress,
        )
    except SweepInterrupted as exc:
        raise UserError(str(exc)) from None
    click.echo(summary_table(result.summaries, objective=config.objective))
    return mlflow_end(name, result.mlflow)
