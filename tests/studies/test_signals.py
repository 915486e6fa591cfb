"""signals.watch_parent: a worker whose launcher is gone leaves, even if it was gone before
the worker began to watch."""

from __future__ import annotations

import os
import subprocess
import sys
import time

_CHILD = """
import sys, time
from studies.execution import signals
signals.install()
signals.watch_parent(parent=int(sys.argv[1]) or None, every=0.2)
print("watching", flush=True)
time.sleep(30)
"""


def _start(parent: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(parent)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "watching"
    return child


def test_a_launcher_that_died_before_the_watch_began_is_noticed():
    """Its parent then is already init (or a subreaper): watching "the parent now" would never fire;
    watching the launcher's pid, given by it, does."""
    child = _start(parent=1)  # not this child's parent: as if its launcher had been killed already
    assert child.wait(timeout=10) == 128 + 15  # left as SIGTERM makes an idle worker leave


def test_a_live_parent_is_left_alone():
    child = _start(parent=0)  # the parent now: this test's process, alive
    try:
        time.sleep(1.5)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
