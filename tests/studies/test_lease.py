"""Leases are exclusive across processes and end with their holder, on every backend."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from studies.storage.lease import Lease

HOLD = """
import sys, time
from studies.storage.lease import Lease
lease = Lease(sys.argv[1], sys.argv[2], ttl_ms=1500)
print(lease.acquire(), flush=True)
time.sleep(600)
"""


def _holder(url: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url, name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "True"
    return proc


def _free_within(url: str, name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lease = Lease(url, name, ttl_ms=1500)
        if lease.acquire():
            lease.release()
            return True
        time.sleep(0.2)
    return False


def _exclusive_and_freed_by_death(url: str) -> None:
    holder = _holder(url, "mlflow:a")
    try:
        assert not Lease(url, "mlflow:a").acquire()  # held by another process
        other = Lease(url, "mlflow:b")
        assert other.acquire()  # another name is another lease
        other.release()
    finally:
        holder.kill()  # SIGKILL: the holder never releases
        holder.wait()
    assert _free_within(url, "mlflow:a", 30)
    # Taken, released, taken again by another process.
    mine = Lease(url, "mlflow:a")
    assert mine.acquire() and mine.acquire()  # idempotent while held
    later = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from studies.storage.lease import Lease; print(Lease(sys.argv[1], 'mlflow:a').acquire())",
            url,
        ],
        capture_output=True,
        text=True,
    )
    assert later.stdout.strip() == "False", later.stderr
    mine.release()
    assert _free_within(url, "mlflow:a", 5)


def test_lease_on_a_journal_file(tmp_path):
    _exclusive_and_freed_by_death(str(tmp_path / "sweeps.journal"))


def test_lease_on_sqlite(tmp_path):
    _exclusive_and_freed_by_death(f"sqlite:///{tmp_path}/s.db")


@pytest.mark.postgres
def test_lease_on_postgres(pg_database):
    _exclusive_and_freed_by_death(pg_database())


@pytest.mark.mysql
def test_lease_on_mysql(mysql_database):
    _exclusive_and_freed_by_death(mysql_database())


@pytest.mark.redis
def test_lease_on_redis(redis_url):
    _exclusive_and_freed_by_death(redis_url)


RACE = """
import sys, time
from studies.storage.lease import Lease
lease = Lease(sys.argv[1], "race")
while not lease.acquire():
    time.sleep(0.01)
start = time.time()
time.sleep(0.3)
end = time.time()
lease.release()
print(start, end, flush=True)
"""


@pytest.mark.parametrize("backend", ["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_processes_hold_it_one_at_a_time(tmp_path, request, backend):
    url = str(tmp_path / "sweeps.journal") if backend == "file" else request.getfixturevalue("pg_database")()
    procs = [subprocess.Popen([sys.executable, "-c", RACE, url], stdout=subprocess.PIPE, text=True) for _ in range(5)]
    spans = sorted(tuple(map(float, p.communicate(timeout=300)[0].split())) for p in procs)
    assert len(spans) == 5
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans  # each took it after the previous gave it up
