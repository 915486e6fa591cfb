"""The sweep file as a whole: read (a file or a preset), its top-level keys checked, its
sections assembled into a :class:`SweepConfig`; the command line's overrides."""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path

from studies.errors import SweepsError
from studies.sweep import DEFAULT_STACK, MAX_REPEATS, SweepConfig
from sweeps.limits import JOBS_PER_CPU, check_shape_fits, cpu_count, max_jobs
from sweeps.presets import preset_text, presets
from sweeps.spec.bounds import check_constraint_tasks, check_stack, read_constraints, read_limits, read_stack_shape
from sweeps.spec.datasets import checked_datasets
from sweeps.spec.sections import read_mlflow, read_objective, read_plugins, read_warm_start
from sweeps.spec.space import read_space
from sweeps.spec.values import NAME_MAX, NAME_RE, Where, read_int, shown_name, unknown_key

TOP_KEYS = (
    "batch",  # the old name of "stack": stored sweeps and old files keep working
    "budget",
    "constraints",
    "datasets",
    "divergence_factor",
    "jobs",
    "mlflow",
    "name",
    "objective",
    "pruner",
    "repeats",
    "report_every",
    "sampler",
    "search",
    "seed",
    "stack",
    "stack_shape",
    "stop",
    "train",
    "trial_budget",
    "trials",
    "warm_start",
)


def _read_source(source: str) -> tuple[str, str]:
    """(text, origin) of a sweep file path or a preset name."""
    path = Path(source)
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SweepsError(f"{source}: cannot read the file ({exc.strerror}).") from None
        if b"\x00" in raw:
            raise SweepsError(f"{source}: not a text file; a sweep file is TOML text.")
        try:
            return raw.decode("utf-8"), source
        except UnicodeDecodeError:
            raise SweepsError(f"{source}: not a UTF-8 text file; a sweep file is TOML text.") from None
    if path.is_dir():
        raise SweepsError(f"{source}: is a folder, not a sweep file.")
    if source in presets():
        return preset_text(source), f"preset {source!r}"
    close = difflib.get_close_matches(source, list(presets()), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SweepsError(f"no sweep file or preset named {source!r}{hint}; the presets are {sorted(presets())}.")


def load_spec(source: str, *, stored: bool = False) -> SweepConfig:
    """Read and validate a sweep file (or a built-in preset) into a :class:`SweepConfig`;
    ``stored``: by the rules of a sweep already stored (see :func:`spec_from_dict`)."""
    text, origin = _read_source(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepsError(f"{origin}: TOML syntax error: {exc}.") from None
    return spec_from_dict(data, origin=origin, stored=stored)


def spec_from_dict(data: dict, *, origin: str = "sweep", stored: bool = False) -> SweepConfig:
    """Validate the parsed sweep file; raises :class:`SweepsError` with one clear message.

    ``stored``: the sweep as a storage holds it (``sweep worker``), validated by the rules it
    was stored under: a rule added later (a ``step`` dividing its range) never strands it."""
    where = Where(origin, stored=stored)
    for key in data:
        if key not in TOP_KEYS:
            raise unknown_key(where, key, TOP_KEYS)
    top = _top_level(where, data)
    objective = read_objective(where, data.get("objective", "val_cost"))
    objectives = (objective,) if isinstance(objective, str) else objective
    space = read_space(where, data)
    sampler, pruner = read_plugins(where, data, objectives, space, top["trials"], jobs=top["jobs"])
    repeats = read_int(where, "repeats", data.get("repeats", 1), 1)
    if repeats > MAX_REPEATS:
        raise where.error(
            f"'repeats' must be an integer from 1 to {MAX_REPEATS} (seeds per configuration), but got {repeats}."
        )
    constraints = read_constraints(where, data.get("constraints"))
    refs, loaded = checked_datasets(
        where, data, space, objectives, seed=top["seed"], jobs=top["jobs"], stack=top["stack"] * repeats
    )
    shape = read_stack_shape(where, data.get("stack_shape"), space, loaded)
    if shape is not None:
        try:
            check_shape_fits(
                space, loaded, jobs=top["jobs"], stack=top["stack"] * repeats, widths=shape.widths, inputs=shape.inputs
            )
        except SweepsError as exc:
            raise where.error(str(exc)) from None
    check_constraint_tasks(where, constraints, refs)
    return SweepConfig(
        datasets=refs,
        space=space,
        objective=objective,
        sampler=sampler,
        pruner=pruner,
        warm_start=read_warm_start(where, data.get("warm_start"), top["name"]),
        curve_points=read_mlflow(where, data.get("mlflow")),
        stack_shape=shape,
        repeats=repeats,
        constraints=constraints,
        **read_limits(where, data, objectives),
        **top,
    )


def _top_level(where: Where, data: dict) -> dict:
    """The top-level numbers and the name: ``name``, ``trials``, ``jobs``, ``seed``,
    ``report_every``, ``stack`` (or its old name ``batch``), ``divergence_factor``."""
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise where.error(
            f"'name' must be a plain name of at most {NAME_MAX} characters (letters, digits, '-', '_', '.', "
            f"starting with a letter or digit), but got {shown_name(name)}."
        )
    jobs = read_int(where, "jobs", data["jobs"], 1) if "jobs" in data else 0
    if jobs > max_jobs():
        raise where.error(
            f"'jobs' must be at most {max_jobs()} ({JOBS_PER_CPU} worker processes per CPU; this "
            f"machine has {cpu_count()}), but got {jobs}."
        )
    if "stack" in data and "batch" in data:
        raise where.error("'stack' and 'batch' are the same key ('batch' is its old name); keep 'stack'.")
    stack_key = "batch" if "batch" in data else "stack"
    stack = read_int(where, stack_key, data.get(stack_key, DEFAULT_STACK), 1)
    if not where.stored:
        check_stack(where, stack_key, stack)
    factor = data.get("divergence_factor", 100.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 < factor < math.inf:
        raise where.error(f"'divergence_factor' must be a finite number > 1, but got {factor!r}.")
    return {
        "name": name,
        "trials": read_int(where, "trials", data.get("trials", 40), 1),
        "jobs": jobs,
        "seed": read_int(where, "seed", data.get("seed", 0), 0),
        "report_every": read_int(where, "report_every", data.get("report_every", 1), 1),
        "stack": stack,
        "divergence_factor": float(factor),
    }


def apply_overrides(
    config: SweepConfig,
    *,
    trials: int | None = None,
    jobs: int | None = None,
    seed: int | None = None,
    stack: int | None = None,
    budget: str | None = None,
    stored: bool = False,
) -> SweepConfig:
    """The command line's ``--trials/--jobs/--seed/--stack/--budget``, validated by the same rules as
    the file (``stored``: a sweep already stored, by the rules it was stored under)."""
    data = config.to_dict()
    for key, value in (("trials", trials), ("jobs", jobs), ("seed", seed), ("stack", stack), ("budget", budget)):
        if value is not None:
            data[key] = value
    if stack is not None and stored:  # a stored sweep keeps its own stack, but a new one is checked now
        check_stack(Where("command line"), "stack", stack)
    return spec_from_dict(data, origin="command line", stored=stored)
