"""Fixtures shared by the test tree: real PostgreSQL databases, made and dropped per test; and the
order in which pytest-xdist's workers share the tests out (docs/testing.md)."""

from __future__ import annotations

import uuid

import pytest

_SHARED_SCOPES = ("class", "module", "package", "session")
# Started first, so that the long tests are not the last ones left running on one worker.
_LONGEST_FIRST = ("browser", "mlflow_server", "slow")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the 'xdist_group' marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist ('--dist loadgroup'), keep each module whose tests share a fixture wider than
    one test (a sweep built once per module) on one worker, so that it is still built once, and hand
    out the slow tests first. Without xdist ('-n 0'), the order is the files' own."""
    if not hasattr(config, "workerinput"):  # not an xdist worker: nothing to share out
        return
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        shared = defs is not None and any(
            d[-1].scope in _SHARED_SCOPES and d[-1].baseid for d in defs.name2fixturedefs.values() if d
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))

    def rank(item) -> int:
        return next((i for i, m in enumerate(_LONGEST_FIRST) if item.get_closest_marker(m)), len(_LONGEST_FIRST))

    items.sort(key=rank)  # stable: each rank keeps the files' order


PG = "postgresql://postgres@127.0.0.1:5432"


def _admin():
    import psycopg  # the 'test' extra installs it: a missing driver fails, it does not skip

    return psycopg.connect(f"{PG}/postgres", autocommit=True)


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database on the machine's server; returns a function making more."""
    made: list[str] = []

    def make() -> str:
        name = f"sweeps_test_{uuid.uuid4().hex[:10]}"
        conn = _admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        made.append(name)
        return f"{PG}/{name}"

    yield make
    conn = _admin()
    try:
        with conn.cursor() as cur:
            for name in made:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


MYSQL = "mysql+pymysql://root@127.0.0.1:3306"


@pytest.fixture
def mysql_database():
    """A fresh MariaDB/MySQL database on the machine's server; returns a function making more."""
    import pymysql  # the 'test' extra installs it: a missing driver fails, it does not skip

    made: list[str] = []

    def make() -> str:
        name = f"sweeps_test_{uuid.uuid4().hex[:10]}"
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
        try:
            conn.cursor().execute(f"CREATE DATABASE `{name}`")
        finally:
            conn.close()
        made.append(name)
        return f"{MYSQL}/{name}"

    yield make
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        for name in made:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture
def redis_url():
    """A Redis database of the machine's server for this test alone (one of 1-15, emptied
    before and after; a key marks it taken so that concurrent test sessions pick others)."""
    import random

    import redis

    for db in random.Random(uuid.uuid4().int).sample(range(1, 16), 15):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        if client.set("sweeps:test:taken", "1", nx=True, ex=3600):
            client.flushdb()
            client.set("sweeps:test:taken", "1", ex=3600)
            break
    else:  # pragma: no cover - fifteen concurrent sessions
        raise RuntimeError("no free Redis database among 1-15")
    try:
        yield f"redis://127.0.0.1:6379/{db}"
    finally:
        client.flushdb()
        client.close()
