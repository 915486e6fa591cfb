"""Leases: an exclusive, named right held by one process at a time, beside the storage.

One process at a time writes a sweep's trials to one MLflow (else a finished trial could be
logged twice). Reading who holds a record and then writing one's own is not exclusive:
two processes can both read "free" and both write. A lease is taken with the storage
backend's own atomic primitive instead, and is released by the backend itself when its
holder dies, on any host:

- journal file or SQLite (one machine): a POSIX record lock on a byte of ``<file>.leases``
  (released by the kernel with the process);
- PostgreSQL: a session advisory lock on a connection of its own (released with the
  connection; the server notices a vanished host through TCP keepalives within a minute);
- MySQL/MariaDB: ``GET_LOCK`` on a connection of its own (the same);
- Redis: a key set with ``NX`` and an expiry, renewed by a thread while held (an absent
  holder's key expires).

Example:
    >>> lease = Lease("sweeps.journal", "mlflow:abc")  # doctest: +SKIP
    >>> lease.acquire()  # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid

from studies.storage.opening import storage_file

__all__ = ["Lease"]

# A held PostgreSQL/MySQL connection whose host vanishes is closed by the server after about
# IDLE + INTERVAL * COUNT seconds.
_PG_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 20,
    "keepalives_interval": 5,
    "keepalives_count": 4,
    "options": "-c tcp_keepalives_idle=20 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=4",
}
_REDIS_TTL_MS = 30_000

_files: dict[str, int] = {}  # one descriptor per leases file and process (closing any releases all)
_files_lock = threading.Lock()


def _key64(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    """An exclusive named lease beside the storage at ``storage_url`` (a journal path or URL).

    Args:
        storage_url: where the sweep's storage is (the lease lives beside it).
        name: what the lease is for; processes taking the same name exclude each other.
        ttl_ms: on Redis, how long the lease outlives a holder that vanished (it is renewed
            every third of it while held).
    """

    def __init__(self, storage_url: str, name: str, *, ttl_ms: int = _REDIS_TTL_MS) -> None:
        self.url = storage_url
        self.name = name
        self.ttl_ms = int(ttl_ms)  # Redis: how long a vanished holder's lease outlives it
        self.held = False
        self._release: contextlib.ExitStack | None = None
        scheme = storage_url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in storage_url else ""
        self.kind = {
            "": "file",
            "file": "file",
            "sqlite": "file",
            "postgresql": "postgresql",
            "postgres": "postgresql",
            "mysql": "mysql",
            "mariadb": "mysql",
            "redis": "redis",
            "rediss": "redis",
        }.get(scheme, "none")

    def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); never waits."""
        if self.held:
            return True
        taker = {
            "file": self._file,
            "postgresql": self._postgres,
            "mysql": self._mysql,
            "redis": self._redis,
            "none": self._none,
        }[self.kind]
        stack = contextlib.ExitStack()
        try:
            self.held = taker(stack)
        except BaseException:
            stack.close()
            raise
        if self.held:
            self._release = stack
        else:
            stack.close()
        return self.held

    def release(self) -> None:
        """Give the lease up (a no-op when not held)."""
        stack, self._release, self.held = self._release, None, False
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order
        with contextlib.suppress(Exception):
            self.release()

    # -- backends ------------------------------------------------------------------------------

    def _file(self, stack: contextlib.ExitStack) -> bool:
        import fcntl

        path = storage_file(self.url) or self.url
        leases = os.path.realpath(path) + ".leases"
        with _files_lock:
            fd = _files.get(leases)
            if fd is None:
                fd = _files[leases] = os.open(leases, os.O_RDWR | os.O_CREAT, 0o644)
        offset = _key64(self.name) % (1 << 40)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            return False
        stack.callback(fcntl.lockf, fd, fcntl.LOCK_UN, 1, offset)
        return True

    def _connection(self, stack: contextlib.ExitStack, connect_args: dict):
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args)
        stack.callback(engine.dispose)
        conn = engine.connect()
        stack.callback(conn.close)
        return conn

    def _postgres(self, stack: contextlib.ExitStack) -> bool:
        import sqlalchemy

        conn = self._connection(stack, dict(_PG_KEEPALIVE))
        got = conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key64(self.name)}).scalar()
        conn.commit()
        return bool(got)

    def _mysql(self, stack: contextlib.ExitStack) -> bool:
        import sqlalchemy

        conn = self._connection(stack, {})
        name = "sweeps." + hashlib.sha256(self.name.encode()).hexdigest()[:40]
        got = conn.execute(sqlalchemy.text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar()
        return got == 1

    def _redis(self, stack: contextlib.ExitStack) -> bool:
        import redis

        client = redis.Redis.from_url(self.url)
        stack.callback(client.close)
        key, token = f"sweeps:lease:{hashlib.sha256(self.name.encode()).hexdigest()[:40]}", uuid.uuid4().hex
        ttl = self.ttl_ms
        if not client.set(key, token, nx=True, px=ttl):
            return False
        renew = client.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
        )
        drop = client.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
        )
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(ttl / 3000):
                with contextlib.suppress(Exception):
                    renew(keys=[key], args=[token, ttl])

        thread = threading.Thread(target=keep, name="sweep-lease", daemon=True)
        thread.start()
        stack.callback(lambda: drop(keys=[key], args=[token]))
        stack.callback(stop.set)
        return True

    def _none(self, stack: contextlib.ExitStack) -> bool:
        """Another database (Oracle, SQL Server): no lease primitive here; every process may write."""
        return True
