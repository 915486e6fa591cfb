"""Stopping cleanly on SIGTERM or SIGINT, at any moment.

A worker's handler raises :class:`Interrupted` in its main thread, so that the trials in
flight are failed (never left RUNNING); the launcher's (``sweep run``) raises
``KeyboardInterrupt``, and the launcher tidies up. A signal that arrives while the process
writes to the storage waits until the write is done (:func:`critical`): a journal line or a
transaction is never cut in the middle. Every signal is remembered (:func:`received`), so
that a run that was asked to stop never reports success. Between tasks (a loky worker
waiting for work) a worker just leaves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import TypedDict

__all__ = ["Interrupted", "armed", "critical", "install", "quiet", "received", "watch_parent"]


class Interrupted(BaseException):
    """Raised in a worker on SIGTERM or SIGINT, so that its trials are failed rather than left RUNNING."""


class _State(TypedDict):
    armed: bool  # a stop signal raises (else a worker exits, a launcher raises)
    depth: int  # critical or quiet sections entered
    pending: int  # a signal held until the critical section is done (0: none)
    received: int  # the last stop signal (0: none)
    exc: type[BaseException]  # what a stop signal raises
    exit: bool  # exit on the spot when not armed


_state: _State = {"armed": False, "depth": 0, "pending": 0, "received": 0, "exc": Interrupted, "exit": True}


def _raise(signum: int) -> None:
    exc = _state["exc"]
    raise exc(signum) if exc is Interrupted else exc()


def _handler(signum: int, frame: object) -> None:
    _state["received"] = signum
    if not _state["armed"]:
        if _state["exit"]:
            os._exit(128 + signum)  # a worker between tasks: nothing is in flight
        _raise(signum)
    if _state["depth"]:
        _state["pending"] = signum  # raised when the write is done
        return
    _raise(signum)


def install(*, launcher: bool = False) -> bool:
    """Install the handlers for SIGTERM and SIGINT (main thread only); returns whether they were.

    ``launcher``: raise ``KeyboardInterrupt`` (also when not armed) instead of
    :class:`Interrupted`, and never exit on the spot.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    _state["exc"] = KeyboardInterrupt if launcher else Interrupted
    _state["exit"] = not launcher
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return True


def received() -> int:
    """The last stop signal this process received (0: none)."""
    return int(_state["received"])


@contextlib.contextmanager
def armed() -> Iterator[None]:
    """While inside: a stop signal raises (outside, a worker process exits)."""
    _state["armed"], _state["pending"] = True, 0
    try:
        yield
    finally:
        _state["armed"] = False


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A write that a stop signal must not cut: the signal takes effect when it is done."""
    _state["depth"] = int(_state["depth"]) + 1
    try:
        yield
    finally:
        _state["depth"] = int(_state["depth"]) - 1
        if not _state["depth"] and _state["pending"] and _state["armed"]:
            signum, _state["pending"] = int(_state["pending"]), 0
            _raise(signum)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Tidying up after a stop: further signals are remembered, not raised, until it is done."""
    _state["depth"] = int(_state["depth"]) + 1
    try:
        yield
    finally:
        _state["depth"] = int(_state["depth"]) - 1
        _state["pending"] = 0


_watching: set[int] = set()


def watch_parent(*, parent: int | None = None, every: float = 1.0) -> None:
    """Stop this process (as SIGTERM would) when the process that started it is gone, e.g.
    killed with SIGKILL: a worker must not train on as an orphan. Once per process.

    ``parent``: the pid of the process that started this one, when known; else this
    process's parent now (which is already init if the starter died before this call)."""
    parent = parent or os.getppid()
    if os.getpid() in _watching:
        return
    _watching.add(os.getpid())

    def watch() -> None:
        import time

        while True:
            time.sleep(every)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="sweep-parent-watch", daemon=True).start()
