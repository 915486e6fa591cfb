"""The figures of docs/upstream.md: what each change proposed to Optuna and MLflow gains here.

Each question runs its alternatives interleaved in one process (so that the host's noise
falls on all of them alike) and prints medians of ``--repeats`` rounds, their ratio, and a
check that the alternatives store or propose the same thing. Pure computation (tpe, mlflow)
is timed in CPU seconds of this process, which other work on a shared host disturbs less;
the storages (journal, postgres) in wall-clock seconds, since they wait for disks and servers.

  tpe       Optuna's TPESampler with its own log Phi (``np.frompyfunc`` over a Python
            function) against scipy's vectorized ``log_ndtr`` swapped in
            (studies._optuna_compat.vectorized_log_ndtr): seconds per sampled trial after
            200 finished trials of 8 parameters (6 float, 1 int, 1 categorical), TPE's
            default (multivariate, 24 candidates), independent, and 192 candidates (what
            BatchTPESampler draws for a batch of 8); and the function alone.
  journal   appends per second to a journal file through JournalStorage's public calls, a
            trial being 62 records (create, 8 parameters, 50 reports, 2 attributes, end):
            Optuna's JournalFileBackend (fsync on every append) against
            studies.storage.journal.SweepJournalBackend (fsync only when a trial ends or a study
            changes), each with Optuna's default symlink lock and with a flock (as sweeps
            opens it).
  postgres  the same trial (8 parameters, 50 reports, 2 attributes, end) written to
            PostgreSQL by RDBStorage's public calls, one transaction each, against one
            studies._optuna_compat.rdb_write (one transaction), in a throwaway database.
  reads     a study of 2,000 trials read whole from PostgreSQL: RDBStorage._get_trials (ORM
            objects) against studies._optuna_compat.rdb_read_trials (six plain queries).
  mlflow    MlflowClient on a local SQLite store (as sweeps tunes it: WAL,
            synchronous=NORMAL): a run with 300 metric points (3 curves x 100 epochs) in
            one log_batch against an empty run (create, params, tags, terminate); then the
            same with SqlAlchemyStore's metric insert replaced, IN THIS BENCHMARK ONLY, by a
            Core bulk insert (one executemany) with the same latest-metric bookkeeping.

    python benchmarks/upstream_proposals.py tpe|journal|postgres|reads|mlflow|all [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import optuna

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from studies import _optuna_compat as compat  # noqa: E402

PG = os.environ.get("SWEEPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no background thread in the CPU times
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _interleaved(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Each case once per round, rounds in turn; a case returns its own figure."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            out[name].append(case())
    return out


# -- tpe -------------------------------------------------------------------------------------------


def _objective(trial: optuna.Trial) -> float:
    xs = [trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(4)]
    lr = trial.suggest_float("lr", 1e-4, 10.0, log=True)
    reg = trial.suggest_float("reg", 1e-6, 1.0, log=True)
    units = trial.suggest_int("units", 2, 64, log=True)
    act = trial.suggest_categorical("act", ["relu", "tanh", "sigmoid"])
    return (
        sum(x * x for x in xs)
        + (math.log10(lr) + 1) ** 2
        + 0.1 * abs(math.log10(reg) + 3)
        + 0.01 * abs(units - 16)
        + {"relu": 0.0, "tanh": 0.2, "sigmoid": 0.5}[act]
    )


def _history(n: int) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective, n_trials=n)
    return study.trials


def _tpe_round(
    history: list, *, multivariate: bool, vectorized: bool, n_new: int, candidates: int
) -> tuple[float, list[dict]]:
    """CPU seconds per sampled trial (its 8 suggestions; the objective is negligible)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=1, multivariate=multivariate, n_ei_candidates=candidates)
    study = optuna.create_study(sampler=sampler)
    study.add_trials(history)
    proposals = []
    with compat.vectorized_log_ndtr() if vectorized else contextlib.nullcontext():
        t0 = time.process_time()
        for _ in range(n_new):
            trial = study.ask()
            value = _objective(trial)
            study.tell(trial, value)
            proposals.append(trial.params)
        seconds = time.process_time() - t0
    return seconds / n_new, proposals


def bench_tpe(repeats: int, n_history: int = 200, n_new: int = 20) -> None:
    print(
        f"tpe: CPU ms per sampled trial after {n_history} finished trials of 8 parameters "
        f"({n_new} new trials per round, median of {repeats} rounds)"
    )
    history = _history(n_history)
    for multivariate, candidates in ((True, 24), (False, 24), (True, 192)):
        found: dict[str, list] = {}

        def case(
            vectorized: bool, multivariate=multivariate, candidates=candidates, found=found
        ) -> Callable[[], float]:  # noqa: ANN001
            def run() -> float:
                seconds, proposals = _tpe_round(
                    history, multivariate=multivariate, vectorized=vectorized, n_new=n_new, candidates=candidates
                )
                found[str(vectorized)] = proposals
                return seconds

            return run

        times = _interleaved({"optuna": case(False), "vectorized": case(True)}, repeats)
        a, b = _median(times["optuna"]), _median(times["vectorized"])
        same = _same_proposals(found["False"], found["True"])
        kind = f"{'multivariate' if multivariate else 'independent'}, {candidates} candidates"
        print(
            f"  {kind:29s} optuna {a * 1e3:6.1f} ms   vectorized {b * 1e3:6.1f} ms   {a / b:4.1f}x   proposals: {same}"
        )
    # The function alone, on what one sampled parameter evaluates: 24 candidates x 200 kernels.
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    x = np.random.default_rng(0).normal(-1.0, 3.0, 24 * 200)
    times = _interleaved(
        {"optuna": lambda: _timed(lambda: _truncnorm._log_ndtr(x)), "scipy": lambda: _timed(lambda: log_ndtr(x))},
        repeats,
    )
    a, b = _median(times["optuna"]), _median(times["scipy"])
    print(f"  log Phi of {x.size} distinct values: optuna {a * 1e6:7.0f} us   scipy {b * 1e6:5.0f} us   {a / b:5.0f}x")


def _timed(f: Callable[[], object]) -> float:
    t0 = time.process_time()
    for _ in range(20):
        f()
    return (time.process_time() - t0) / 20


def _same_proposals(a: list[dict], b: list[dict]) -> str:
    choices = all(
        p.keys() == q.keys() and all(p[k] == q[k] for k in p if not isinstance(p[k], float)) for p, q in zip(a, b)
    )
    rel = max(
        (abs(p[k] - q[k]) / max(abs(p[k]), 1e-300) for p, q in zip(a, b) for k in p if isinstance(p[k], float)),
        default=0.0,
    )
    return f"{'same choices' if choices else 'DIFFERENT choices'}, floats within {rel:.1e} (relative)"


# -- journal -----------------------------------------------------------------------------------------

N_PARAMS, N_REPORTS = 8, 50
DISTS = {f"p{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(N_PARAMS)}


def _write_trial_public(storage: optuna.storages.BaseStorage, study_id: int, seed: int) -> int:
    """One trial as a worker writes it through the public storage API; returns the calls made."""
    rng = np.random.default_rng(seed)
    trial_id = storage.create_new_trial(study_id)
    for name, dist in DISTS.items():
        storage.set_trial_param(trial_id, name, float(rng.random()), dist)
    for step in range(N_REPORTS):
        storage.set_trial_intermediate_value(trial_id, step, float(rng.random()))
    storage.set_trial_user_attr(trial_id, "outcome", "complete")
    storage.set_trial_user_attr(trial_id, "seconds", 1.5)
    storage.set_trial_state_values(trial_id, optuna.trial.TrialState.COMPLETE, [float(rng.random())])
    return 1 + N_PARAMS + N_REPORTS + 2 + 1


def _journal_round(
    make: Callable[[str], optuna.storages.journal.BaseJournalBackend], folder: str, trials: int
) -> float:
    path = os.path.join(folder, f"{uuid.uuid4().hex}.journal")
    storage = optuna.storages.JournalStorage(make(path))
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "bench")
    t0 = time.perf_counter()
    appends = sum(_write_trial_public(storage, study_id, seed) for seed in range(trials))
    seconds = time.perf_counter() - t0
    os.remove(path)
    return appends / seconds


def bench_journal(repeats: int, trials: int = 20) -> None:
    from studies.storage.journal import FlockLock, SweepJournalBackend

    J = optuna.storages.journal
    print(
        f"journal: appends per second, {trials} trials of {1 + N_PARAMS + N_REPORTS + 3} records per round "
        f"(one append per public call), median of {repeats} rounds; files in {tempfile.gettempdir()}"
    )
    with tempfile.TemporaryDirectory(prefix="sweeps-upstream-") as folder:
        makers = {
            "Optuna's JournalFileBackend, its symlink lock": J.JournalFileBackend,
            "SweepJournalBackend, the same symlink lock": SweepJournalBackend,
            "Optuna's JournalFileBackend, a flock": lambda p: J.JournalFileBackend(p, lock_obj=FlockLock(p)),
            "SweepJournalBackend, a flock (as sweeps opens it)": lambda p: SweepJournalBackend(
                p, lock_obj=FlockLock(p)
            ),
        }
        rates = _interleaved(
            {name: (lambda make=make: _journal_round(make, folder, trials)) for name, make in makers.items()}, repeats
        )
        names = list(rates)
        for i, name in enumerate(names):
            rate = _median(rates[name])
            vs = "" if i % 2 == 0 else f"   {rate / _median(rates[names[i - 1]]):4.1f}x the line above (fsync on ends)"
            print(f"  {name:50s} {rate:7.0f} appends/s{vs}")
        # The same records either way: Optuna reads our file as its own.
        a, b = os.path.join(folder, "a"), os.path.join(folder, "b")
        for path, cls in ((a, J.JournalFileBackend), (b, SweepJournalBackend)):
            s = optuna.storages.JournalStorage(cls(path))
            _write_trial_public(s, s.create_new_study([optuna.study.StudyDirection.MINIMIZE], "x"), 7)
        ta, tb = (optuna.storages.JournalStorage(J.JournalFileBackend(p)).get_all_trials(0) for p in (a, b))
        same = [(t.params, t.intermediate_values, t.user_attrs, t.values) for t in ta] == [
            (t.params, t.intermediate_values, t.user_attrs, t.values) for t in tb
        ]
        print(f"  the same trial read back by Optuna from both files: {same}")


# -- postgres ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _throwaway_database() -> Iterator[str]:
    import psycopg

    name = f"sweeps_upstream_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG}/{name}"
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _throwaway_storage() -> Iterator[optuna.storages.RDBStorage]:
    """An RDBStorage on a throwaway database (Optuna's experimental warnings hushed)."""
    with _throwaway_database() as url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(url)
        try:
            yield storage
        finally:
            storage.engine.dispose()


def _write_trial_batched(storage: optuna.storages.RDBStorage, study_id: int, seed: int) -> int:
    """The same trial: created by the public call, the rest in one studies._optuna_compat.rdb_write."""
    compat.rdb_write(storage, [_trial_writes(storage.create_new_trial(study_id), seed)])
    return 2


def _trial_writes(trial_id: int, seed: int) -> compat.TrialWrites:
    """The benchmark's trial (parameters, reports, attributes, end) as one batch of writes."""
    rng = np.random.default_rng(seed)
    w = compat.TrialWrites(trial_id)
    w.params = [(name, float(rng.random()), dist) for name, dist in DISTS.items()]
    w.intermediate = {step: float(rng.random()) for step in range(N_REPORTS)}
    w.user_attrs = {"outcome": "complete", "seconds": 1.5}
    w.state, w.values = optuna.trial.TrialState.COMPLETE, [float(rng.random())]
    return w


def bench_postgres(repeats: int, trials: int = 10) -> None:
    print(
        f"postgres: ms per trial ({N_PARAMS} parameters, {N_REPORTS} reports, 2 attributes, end), {trials} "
        f"trials per round, median of {repeats} rounds, {PG.split('@')[-1]} (a throwaway database)"
    )
    with _throwaway_storage() as storage:
        sid = {k: storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], k) for k in ("single", "batch")}
        calls: dict[str, int] = {}

        def case(name: str, write: Callable) -> Callable[[], float]:
            def run() -> float:
                t0 = time.perf_counter()
                calls[name] = sum(write(storage, sid[name], seed) for seed in range(trials)) // trials
                return (time.perf_counter() - t0) / trials

            return run

        times = _interleaved(
            {"single": case("single", _write_trial_public), "batch": case("batch", _write_trial_batched)}, repeats
        )
        a, b = _median(times["single"]), _median(times["batch"])
        print(f"  public calls, a transaction each ({calls['single']}/trial)  {a * 1e3:7.1f} ms")
        print(f"  create + one rdb_write ({calls['batch']}/trial)                {b * 1e3:7.1f} ms   {a / b:5.1f}x")
        key = lambda t: (t.params, t.intermediate_values, t.user_attrs, t.values, t.state)  # noqa: E731
        same = [key(t) for t in storage.get_all_trials(sid["single"])] == [
            key(t) for t in storage.get_all_trials(sid["batch"])
        ]
        print(f"  the same trials stored either way: {same}")


def bench_reads(repeats: int, trials: int = 2000) -> None:
    """A worker's first read of a grown study: Optuna's ``_get_trials`` (ORM objects) against
    ``studies._optuna_compat.rdb_read_trials`` (plain queries), on PostgreSQL."""
    print(
        f"reads: a study of {trials} trials ({N_PARAMS} parameters, {N_REPORTS} reports, 2 attributes each) "
        f"read whole, seconds, median of {repeats} rounds, {PG.split('@')[-1]} (a throwaway database)"
    )
    with _throwaway_storage() as storage:
        sid = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "reads")
        for first in range(0, trials, 100):
            made = compat.rdb_create_trials(storage, sid, 100)
            compat.rdb_write(
                storage, [_trial_writes(compat.trial_id(t), seed) for seed, t in enumerate(made, start=first)]
            )
        ids = {compat.trial_id(t) for t in storage.get_all_trials(sid, deepcopy=False)}
        got: dict[str, list] = {}

        def case(name: str, read: Callable[[], list]) -> Callable[[], float]:
            def run() -> float:
                t0 = time.perf_counter()
                got[name] = read()
                return time.perf_counter() - t0

            return run

        times = _interleaved(
            {
                "orm": case("orm", lambda: storage._get_trials(sid, None, set(ids), 2**31 - 1)),
                "plain": case("plain", lambda: compat.rdb_read_trials(storage, sid, include=ids, after=None)),
            },
            repeats,
        )
        a, b = _median(times["orm"]), _median(times["plain"])
        print(f"  Optuna's _get_trials (ORM objects)         {a:7.3f} s")
        print(f"  rdb_read_trials (plain queries)            {b:7.3f} s   {a / b:5.1f}x")

        def key(t):  # noqa: ANN001, ANN202
            return (
                t.number,
                t.state,
                t.params,
                t.distributions,
                t.intermediate_values,
                t.user_attrs,
                t.system_attrs,
                t.values,
                t.datetime_start,
                t.datetime_complete,
            )

        print(f"  the same trials either way: {[key(t) for t in got['orm']] == [key(t) for t in got['plain']]}")


# -- mlflow ------------------------------------------------------------------------------------------


def _bulk_log_metrics_once(self, run_id, metrics):  # noqa: ANN001 - SqlAlchemyStore's signature
    """SqlAlchemyStore._log_metrics_once with the metric rows inserted by one Core executemany
    instead of one ORM object each; the latest-metric rows kept as MLflow keeps them. FOR
    THIS BENCHMARK ONLY: sweeps writes MLflow through its public client, never its tables."""
    import sqlalchemy
    from mlflow.store.tracking.dbmodels.models import SqlMetric
    from mlflow.utils.validation import _validate_metric

    rows, seen, newest = [], set(), {}
    for idx, m in enumerate(metrics):
        _validate_metric(m.key, m.value, m.timestamp, m.step, path="" if len(metrics) == 1 else f"metrics[{idx}]")
        if m in seen:
            continue
        seen.add(m)
        is_nan, value = self.sanitize_metric_value(m.value)
        row = dict(run_uuid=run_id, key=m.key, value=value, timestamp=m.timestamp, step=m.step, is_nan=is_nan)
        rows.append(row)
        old = newest.get(m.key)
        if old is None or (row["step"], row["timestamp"], row["value"]) > (old["step"], old["timestamp"], old["value"]):
            newest[m.key] = row
    with self.ManagedSessionMaker(read_only=False) as session:
        run = self._get_run(run_uuid=run_id, session=session)
        self._check_run_is_active(run)
        try:
            with session.begin_nested():
                session.execute(sqlalchemy.insert(SqlMetric.__table__), rows)  # Core: no ORM per row
        except sqlalchemy.exc.IntegrityError:  # a point logged before: MLflow's own path sorts it out
            duplicate = True
        else:
            duplicate = False
            _update_latest(session, run_id, newest)
    if duplicate:
        _ORIGINAL[0](self, run_id, metrics)


def _update_latest(session, run_id: str, newest: dict) -> None:  # noqa: ANN001
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric

    latest = {
        m.key: m
        for m in session.query(SqlLatestMetric)
        .filter(SqlLatestMetric.run_uuid == run_id, SqlLatestMetric.key.in_(sorted(newest)))
        .with_for_update()
    }
    for key, row in newest.items():
        old = latest.get(key)
        if old is None:
            session.add(SqlLatestMetric(**row))
        elif (row["step"], row["timestamp"], row["value"]) > (old.step, old.timestamp, old.value):
            old.value, old.step, old.timestamp, old.is_nan = row["value"], row["step"], row["timestamp"], row["is_nan"]


_ORIGINAL: list = []


@contextlib.contextmanager
def _bulk_metrics(mode: str) -> Iterator[None]:
    """``"orm"``: MLflow as it is; ``"bulk"``: its metric insert replaced by the Core one."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if not _ORIGINAL:
        _ORIGINAL.append(SqlAlchemyStore._log_metrics_once)
    if mode == "orm":
        yield
        return
    SqlAlchemyStore._log_metrics_once = _bulk_log_metrics_once
    try:
        yield
    finally:
        SqlAlchemyStore._log_metrics_once = _ORIGINAL[0]


def bench_mlflow(repeats: int, runs: int = 20, epochs: int = 100) -> None:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    from studies.tracking import sqlite as mlflow_sqlite

    print(
        f"mlflow: CPU ms per run on a local SQLite store (WAL, synchronous=NORMAL), {runs} runs per round, "
        f"median of {repeats} rounds; curves: 3 x {epochs} points in one log_batch, latest first"
    )
    with tempfile.TemporaryDirectory(prefix="sweeps-upstream-") as folder:
        uri = f"sqlite:///{os.path.join(folder, 'mlflow.db')}"
        mlflow_sqlite.tune(uri)
        with mlflow_sqlite.creating(uri):
            client = mlflow.MlflowClient(tracking_uri=uri)
            experiment = client.create_experiment("bench")
        params = [
            Param(k, str(v))
            for k, v in {
                "learning_rate": 0.03,
                "hidden": "8,8",
                "activation": "tanh",
                "seed": 0,
                "epochs": epochs,
            }.items()
        ]
        tags = [RunTag("outcome", "complete"), RunTag("mlflow.runName", "t1 tanh 2x8 lr=0.03")]
        kept: dict[str, str] = {}

        ts = int(time.time() * 1000)

        def one_run(with_curves: bool, mode: str) -> float:
            metrics = (
                [
                    Metric(key, 1.0 / e, ts, e)
                    for e in range(epochs, 0, -1)
                    for key in ("train_cost", "val_cost", "val_accuracy")
                ]
                if with_curves
                else []
            )
            with _bulk_metrics(mode):
                t0 = time.process_time()  # CPU: the commits do not wait for the disk (synchronous=NORMAL)
                for _ in range(runs):
                    run = client.create_run(experiment)
                    client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
                    client.set_terminated(run.info.run_id, "FINISHED")
                seconds = (time.process_time() - t0) / runs
            kept[mode] = run.info.run_id
            return seconds

        times = _interleaved(
            {
                "empty": lambda: one_run(False, "orm"),
                "orm": lambda: one_run(True, "orm"),
                "bulk": lambda: one_run(True, "bulk"),
            },
            repeats,
        )
        empty = _median(times["empty"])
        n = 3 * epochs
        orm = _median(times["orm"]) - empty
        print(f"  {'empty run (create, params, tags, terminate)':44s} {empty * 1e3:6.1f} ms")
        for mode, label in (("orm", "MLflow's ORM insert"), ("bulk", "Core bulk insert (patched)")):
            t = _median(times[mode])
            print(
                f"  {f'+ {n} points, {label}':44s} {t * 1e3:6.1f} ms   {(t - empty) / n * 1e6:5.1f} us/point   "
                f"{t / empty:4.1f}x the empty run   metric cost {orm / (t - empty):4.1f}x lower"
            )
        ref = kept["orm"]
        same = all(
            [(m.step, m.value, m.timestamp) for m in client.get_metric_history(ref, k)]
            == [(m.step, m.value, m.timestamp) for m in client.get_metric_history(kept[mode], k)]
            and client.get_run(ref).data.metrics == client.get_run(kept[mode]).data.metrics
            for k in ("train_cost", "val_cost", "val_accuracy")
            for mode in ("bulk",)
        )
        print(f"  the same curves and latest values either way: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=["tpe", "journal", "postgres", "reads", "mlflow", "all"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    benches = {
        "tpe": bench_tpe,
        "journal": bench_journal,
        "postgres": bench_postgres,
        "reads": bench_reads,
        "mlflow": bench_mlflow,
    }
    for name, bench in benches.items():
        if args.which in (name, "all"):
            bench(args.repeats)
            print()


if __name__ == "__main__":
    main()
