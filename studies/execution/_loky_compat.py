"""The one name of loky (joblib's process executor) it does not export: its worker processes.

Stopping a sweep must reach every worker process, to fail its trials and make sure it is
gone; loky's executor keeps them in ``_processes`` (pid -> process). Checked by
tests/studies/test_optuna_compat.py, which fails loudly when loky renames it.
"""

from __future__ import annotations

__all__ = ["worker_processes"]


def worker_processes(executor) -> list:  # noqa: ANN001 - a loky ProcessPoolExecutor
    """The executor's worker processes (``multiprocessing.Process``-like: terminate, kill, join)."""
    return list(executor._processes.values())
