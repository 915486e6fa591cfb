"""Fixtures shared by the test tree: real PostgreSQL databases, made and dropped per test; and the
order in which pytest-xdist's workers take the test files (docs/testing.md)."""

from __future__ import annotations

import uuid

import pytest

# Started first, so that the long tests are not the last ones left running on one worker: the
# files that took longest (seconds of their tests, quiet, two workers, 2026-12-03), longest first;
# then the files with tests marked as below. A file missing here only starts later.
_LONGEST_FILES = (
    "tests/studies/test_scale_out.py",  # 216 s
    "tests/studies/test_stops.py",  # 208 s
    "tests/studies/test_warm_start.py",  # 83 s
    "tests/studies/test_browser.py",  # 48 s, and its browser's start
    "tests/studies/test_mlflow_server.py",  # 55 s
    "tests/studies/test_sweep_e2e.py",  # 51 s
    "tests/studies/test_budget_hosts.py",  # 50 s
    "tests/studies/test_report.py",  # 43 s
    "tests/studies/test_dashboard_browser.py",  # 36 s
)
_LONGEST_FIRST = ("browser", "mlflow_server", "slow")


def pytest_collection_modifyitems(session, config, items):
    """Under pytest-xdist ('--dist loadfile': each file's tests on one worker, so that a sweep
    built once per module is still built once), hand out the longest files first; inside a file
    the order stays the file's own ('--no-loadscope-reorder' in addopts keeps xdist from sorting
    the files by their number of tests instead). Without xdist ('-n 0'), the files' own order."""
    import xdist

    if not xdist.is_xdist_worker(session):  # not an xdist worker: nothing to share out
        return

    last = len(_LONGEST_FILES) + len(_LONGEST_FIRST)

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        if path in _LONGEST_FILES:
            return _LONGEST_FILES.index(path)
        marked = (i for i, m in enumerate(_LONGEST_FIRST) if item.get_closest_marker(m))
        return len(_LONGEST_FILES) + next(marked, len(_LONGEST_FIRST))

    files: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        files[path] = min(files.get(path, last), rank(item))
    items.sort(key=lambda item: files[item.nodeid.split("::", 1)[0]])  # stable: files and tests keep their order


PG = "postgresql://postgres@127.0.0.1:5432"


def _admin():
    import psycopg  # the 'test' extra installs it: a missing driver fails, it does not skip

    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def _pg_databases():
    """Fresh PostgreSQL databases on the machine's server, made by the function yielded, dropped after."""
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


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database on the machine's server; returns a function making more."""
    yield from _pg_databases()


@pytest.fixture(scope="module")
def module_pg_database():
    """As ``pg_database``, for a module's shared fixtures: dropped after the module's tests."""
    yield from _pg_databases()


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
