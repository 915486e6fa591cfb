"""The dask backend: the same workers as joblib tasks on a real dask.distributed LocalCluster."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.studies.test_scale_out import _counts, _no_duplicates, _studies, sweep_cmd

pytestmark = [pytest.mark.slow, pytest.mark.dask]


def test_sweep_on_a_local_dask_cluster(sweep_file, tmp_path):
    from dask.distributed import LocalCluster

    path = sweep_file("dsk", trials=12, jobs=2, epochs=3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        worker_pids = set(cluster.get_client().run(os.getpid).values())
        r = subprocess.run(
            sweep_cmd("run", str(path), "--no-mlflow", "--backend", "dask", "--scheduler", cluster.scheduler_address),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert r.returncode == 0, r.stderr
    journal = str(tmp_path / "sweeps.journal")
    assert _counts(journal) == {"dsk/circle": (12, 0), "dsk/xor": (12, 0)}
    _no_duplicates(journal)
    ran_on = {
        t.user_attrs["worker"]["pid"]
        for s in _studies(journal).values()
        for t in s.get_trials()
        if "worker" in t.user_attrs
    }
    assert ran_on and ran_on <= worker_pids  # every trial ran in a dask worker process


def test_dask_backend_needs_a_scheduler(sweep_file):
    path = sweep_file("dsk2", trials=2, jobs=1, epochs=1)
    r = subprocess.run(
        sweep_cmd("run", str(path), "--no-mlflow", "--backend", "dask"), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: '--backend dask' needs '--scheduler tcp://HOST:PORT' (the dask scheduler's address)."
    )
