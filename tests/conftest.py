"""Fixtures shared by the test tree: real PostgreSQL databases, made and dropped per test."""

from __future__ import annotations

import uuid

import pytest

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
