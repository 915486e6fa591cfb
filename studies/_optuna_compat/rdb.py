"""Batched writes and incremental reads on Optuna's RDB storage, with its own models."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from studies._optuna_compat.writes import TrialWrites

# -- RDB ---------------------------------------------------------------------------------------


def _models():
    from optuna.storages._rdb import models

    return models


def preload_rdb() -> None:
    """Import what opening an RDB storage imports (Optuna's models, alembic), ahead of time."""
    _models()
    import alembic.migration  # noqa: F401
    import alembic.script  # noqa: F401


@contextmanager
def _session(storage: optuna.storages.RDBStorage, *, durable: bool = True) -> Iterator[Any]:
    """Optuna's own transaction scope: commit on success, rollback (and Optuna's errors) on failure.

    ``durable=False`` (PostgreSQL): the commit does not wait for the write-ahead log to reach
    the disk. The records are written and visible at once, and a crash of a worker loses
    nothing; only a crash of the database server itself may lose the last fraction of a
    second of them, as a power loss does the journal's records between two fsyncs. A trial's
    end is always written durably.
    """
    import sqlalchemy
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        if not durable and storage.engine.dialect.name == "postgresql":
            session.execute(sqlalchemy.text("SET LOCAL synchronous_commit TO OFF"))
        yield session


def _utc(dt: datetime.datetime) -> datetime.datetime:
    """What ``TrialModel.datetime_*`` setters store: naive UTC from naive local time."""
    return dt.astimezone(datetime.UTC).replace(tzinfo=None)


def rdb_read_trials(
    storage: optuna.storages.RDBStorage, study_id: int, *, include: set[int], after: int | None
) -> list[FrozenTrial]:
    """The trials whose id is in ``include`` or greater than ``after`` (``after=None``: exactly
    ``include``), by id, equal to what Optuna's ``RDBStorage._get_trials`` reads.

    Read with six plain queries (a trial's columns, then each of its child tables) instead of
    Optuna's ORM objects: a worker joining a study of 2,000 trials reads it several times
    faster (docs/upstream.md, section 4). A large ``include`` is read as the study's trials
    from the smallest id wanted on, filtered here, so that no query carries thousands of
    bound parameters.
    """
    import sqlalchemy

    m = _models()
    T = m.TrialModel
    include = set(include)
    after = _NO_MORE if after is None else after
    wide = len(include) > _MOST_BOUND
    if wide:
        # from the smallest id wanted: an included one, or the first after ``after``
        where = sqlalchemy.and_(T.study_id == study_id, T.trial_id >= min(min(include), after + 1))
    elif include:
        where = sqlalchemy.and_(
            T.study_id == study_id, sqlalchemy.or_(T.trial_id.in_(sorted(include)), T.trial_id > after)
        )
    else:
        where = sqlalchemy.and_(T.study_id == study_id, T.trial_id > after)

    def child(model: Any, *columns: Any, order: Any) -> list[Any]:
        query = sqlalchemy.select(model.trial_id, *columns).join(T, T.trial_id == model.trial_id).where(where)
        return session.execute(query.order_by(order)).all()

    with _session(storage) as session:
        m.StudyModel.find_or_raise_by_id(study_id, session)
        rows = session.execute(
            sqlalchemy.select(T.trial_id, T.number, T.state, T._datetime_start_utc, T._datetime_complete_utc)
            .where(where)
            .order_by(T.trial_id)
        ).all()
        if wide:
            rows = [r for r in rows if r[0] in include or r[0] > after]
        if not rows:
            return []
        P, V, IV = m.TrialParamModel, m.TrialValueModel, m.TrialIntermediateValueModel
        UA, SA = m.TrialUserAttributeModel, m.TrialSystemAttributeModel
        return _frozen_trials(
            rows,
            params=child(P, P.param_name, P.param_value, P.distribution_json, order=P.param_id),
            values=child(V, V.objective, V.value, V.value_type, order=V.trial_value_id),
            inter=child(
                IV, IV.step, IV.intermediate_value, IV.intermediate_value_type, order=IV.trial_intermediate_value_id
            ),
            user=child(UA, UA.key, UA.value_json, order=UA.trial_user_attribute_id),
            system=child(SA, SA.key, SA.value_json, order=SA.trial_system_attribute_id),
        )


def _frozen_trials(
    rows: list[Any], *, params: list[Any], values: list[Any], inter: list[Any], user: list[Any], system: list[Any]
) -> list[FrozenTrial]:
    """``FrozenTrial``s from the trials' rows and their child tables' rows (trial id first),
    as ``RDBStorage._build_frozen_trial_from_trial_model`` builds them; each distinct
    distribution parsed once."""
    m = _models()
    V, IV = m.TrialValueModel, m.TrialIntermediateValueModel
    fields: dict[int, dict[str, Any]] = {
        r[0]: {
            "params": {},
            "distributions": {},
            "values": {},
            "intermediate_values": {},
            "user_attrs": {},
            "system_attrs": {},
        }
        for r in rows
    }
    dists: dict[str, Any] = {}
    for tid, name, stored, dist_json in params:
        f = fields.get(tid)
        if f is None:
            continue
        dist = dists.get(dist_json)
        if dist is None:
            dist = dists[dist_json] = optuna.distributions.json_to_distribution(dist_json)
        f["params"][name] = dist.to_external_repr(stored)
        f["distributions"][name] = dist
    for tid, objective, value, kind in values:
        if tid in fields:
            fields[tid]["values"][objective] = V.stored_repr_to_value(value, kind)
    for tid, step, value, kind in inter:
        if tid in fields:
            fields[tid]["intermediate_values"][step] = IV.stored_repr_to_intermediate_value(value, kind)
    for table, key in ((user, "user_attrs"), (system, "system_attrs")):
        for tid, name, value_json in table:
            if tid in fields:
                fields[tid][key][name] = json.loads(value_json)

    out = []
    for tid, number, state, start, complete in rows:
        f = fields[tid]
        vals = f.pop("values")
        out.append(
            FrozenTrial(
                number=number,
                state=state,
                value=None,
                values=[vals[i] for i in range(len(vals))] if vals else None,
                datetime_start=_local(start),
                datetime_complete=_local(complete),
                trial_id=tid,
                **f,
            )
        )
    return out


_MOST_BOUND = 500  # more ids than this: read the study's trials from the smallest on, filter here


def _local(dt: datetime.datetime | None) -> datetime.datetime | None:
    """What ``TrialModel.datetime_*`` getters return: naive local time from naive UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)


_NO_MORE = 2**31 - 1  # a trial id above every other (INTEGER columns): "no trial beyond those included"


def rdb_probe_states(
    storage: optuna.storages.RDBStorage, study_id: int, *, include: set[int], after: int
) -> dict[int, tuple[TrialState, int]]:
    """Id -> (state, number) of the trials whose id is in ``include`` or greater than
    ``after``: one small query, to learn which trials changed before reading them whole."""
    import sqlalchemy

    T = _models().TrialModel
    where = T.trial_id > after
    if include:
        where = sqlalchemy.or_(where, T.trial_id.in_(sorted(include)))
    with _session(storage) as session:
        rows = session.query(T.trial_id, T.state, T.number).filter(T.study_id == study_id, where).all()
    return {trial_id: (state, number) for trial_id, state, number in rows}


def rdb_create_trials(
    storage: optuna.storages.RDBStorage, study_id: int, n: int, *, user_attrs: dict[str, Any] | None = None
) -> list[FrozenTrial]:
    """Create ``n`` RUNNING trials in one transaction, as ``create_new_trial`` does each (under
    the study's row lock that numbers them), with ``user_attrs`` and, when the storage has a
    heartbeat, a first heartbeat: no trial is ever RUNNING without one. Returns them."""
    import sqlalchemy

    models = _models()
    attrs = dict(user_attrs or {})
    now = datetime.datetime.now()
    with _session(storage, durable=False) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        rows = [
            models.TrialModel(study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=now)
            for _ in range(n)
        ]
        session.add_all(rows)
        session.flush()
        rows.sort(key=lambda r: r.trial_id)
        first = rows[0].count_past_trials(session)
        extra: list[Any] = []
        beat = session.execute(sqlalchemy.func.now()).scalar() if storage.heartbeat_interval else None
        for i, row in enumerate(rows):
            row.number = first + i
            extra += [
                models.TrialUserAttributeModel(trial_id=row.trial_id, key=k, value_json=json.dumps(v))
                for k, v in attrs.items()
            ]
            if beat is not None:
                extra.append(models.TrialHeartbeatModel(trial_id=row.trial_id, heartbeat=beat))
        session.add_all(extra)
        out = [
            FrozenTrial(
                number=r.number,
                state=TrialState.RUNNING,
                value=None,
                values=None,
                datetime_start=now,
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs=dict(attrs),
                system_attrs={},
                intermediate_values={},
                trial_id=r.trial_id,
            )
            for r in rows
        ]
    return out


def rdb_record_heartbeats(storage: optuna.storages.RDBStorage, trial_ids: Iterable[int]) -> None:
    """``record_heartbeat`` for several trials in one transaction (the database's clock)."""
    import sqlalchemy

    ids = sorted(set(trial_ids))
    if not ids:
        return
    models = _models()
    H = models.TrialHeartbeatModel
    with _session(storage, durable=False) as session:
        now = session.execute(sqlalchemy.func.now()).scalar()
        have = {row.trial_id: row for row in session.query(H).filter(H.trial_id.in_(ids)).with_for_update()}
        for trial_id in ids:
            if trial_id in have:
                have[trial_id].heartbeat = now
            else:
                session.add(H(trial_id=trial_id, heartbeat=now))


def rdb_write(storage: optuna.storages.RDBStorage, writes: Sequence[TrialWrites]) -> set[int]:
    """Write every trial's pending writes in one transaction; returns the ids of trials that
    were no longer RUNNING (finished by another process: their writes are dropped, as
    Optuna's own calls would refuse them)."""
    import sqlalchemy

    writes = [w for w in writes if not w.empty()]
    if not writes:
        return set()
    models = _models()
    T = models.TrialModel
    ids = [w.trial_id for w in writes]
    with _session(storage, durable=any(w.state is not None for w in writes)) as session:
        states = dict(session.query(T.trial_id, T.state).filter(T.trial_id.in_(ids)).with_for_update())
        dropped = {i for i in ids if states.get(i) != TrialState.RUNNING}
        live = [w for w in writes if w.trial_id not in dropped]
        inserts: dict[Any, list[dict[str, Any]]] = {}

        def insert(model: Any, **row: Any) -> None:
            inserts.setdefault(model, []).append(row)

        for w in live:
            for name, value, dist in w.params:
                insert(
                    models.TrialParamModel,
                    trial_id=w.trial_id,
                    param_name=name,
                    param_value=value,
                    distribution_json=distribution_to_json(dist),
                )
            for step, value in sorted(w.intermediate.items()):
                stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
                insert(
                    models.TrialIntermediateValueModel,
                    trial_id=w.trial_id,
                    step=step,
                    intermediate_value=stored,
                    intermediate_value_type=kind,
                )
            for cls, attrs in (
                (models.TrialUserAttributeModel, w.user_attrs),
                (models.TrialSystemAttributeModel, w.system_attrs),
            ):
                for key, value in attrs.items():
                    if key in w.updated_keys:
                        session.query(cls).filter(cls.trial_id == w.trial_id, cls.key == key).update(
                            {cls.value_json: json.dumps(value)}, synchronize_session=False
                        )
                    else:
                        insert(cls, trial_id=w.trial_id, key=key, value_json=json.dumps(value))
            for objective, value in enumerate(w.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(float(value))
                insert(models.TrialValueModel, trial_id=w.trial_id, objective=objective, value=stored, value_type=kind)
        for model, rows in inserts.items():  # one multi-row INSERT per table
            session.execute(sqlalchemy.insert(model), rows)
        finishing = [w for w in live if w.state is not None]
        if finishing:  # one UPDATE, a row of parameters per trial
            session.execute(
                sqlalchemy.update(T),
                [
                    {
                        "trial_id": w.trial_id,
                        "state": w.state,
                        "_datetime_complete_utc": _utc(w.datetime_complete or datetime.datetime.now()),
                    }
                    for w in finishing
                ],
            )
    return dropped
