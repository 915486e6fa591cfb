"""Test hooks: a test slows one step down through the environment (``SWEEPS_TEST_SLOW_<STEP>``
= seconds) instead of using epoch counts as timers, so that it can catch a run in a given
phase on any machine. Unset (always, outside the tests), a hook is one dictionary lookup.

Steps: ``MLFLOW_RUN`` (each run the MLflow writer writes), ``EPOCH`` (each epoch a worker trains:
the engine, which imports nothing of ``studies``, reads ``SWEEPS_TEST_SLOW_EPOCH`` itself, once per
run, in :func:`engine.train` and each stack).
"""

from __future__ import annotations

import os
import time

__all__ = ["pause"]


def pause(step: str) -> None:
    """Sleep as long as ``SWEEPS_TEST_SLOW_<step>`` says, if it is set."""
    seconds = os.environ.get(f"SWEEPS_TEST_SLOW_{step}")
    if seconds:
        time.sleep(float(seconds))
