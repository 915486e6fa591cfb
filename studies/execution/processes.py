"""Processes: who ran a trial (and whether it is still alive), and stopping a process
together with everything it started (servers start helpers of their own)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from typing import cast

__all__ = ["descendants", "process_alive", "process_identity", "stop_tree"]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1], start time
    [19]); ``None`` for no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def process_identity() -> dict[str, object]:
    """Host, pid and the pid's start time: enough to tell later whether this process is gone."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def process_alive(identity: dict[str, object]) -> bool | None:
    """True/False for a process of this host, ``None`` when it ran elsewhere (can't tell)."""
    if identity.get("host") != socket.gethostname():
        return None
    try:
        pid = int(cast("int | str", identity.get("pid", -1)))  # an int as written; anything else fails here
    except (TypeError, ValueError):
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields is not None and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent: gone all the same
    start = identity.get("start")
    return start is None or _start_time(pid) == start


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), read from /proc; [] where there is no /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        try:
            ppid = int(fields[1]) if fields else None
        except (ValueError, IndexError):
            ppid = None
        if ppid is not None:
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop_tree(pid: int, *, grace: float = 10.0) -> None:
    """SIGTERM ``pid`` and all its descendants (whatever their process group), SIGKILL what is left."""
    tree = [pid, *descendants(pid)]
    for p in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = [p for p in tree if _alive(p)]
        if not alive:
            return
        time.sleep(0.1)
    for p in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    if not fields:
        return False
    return fields[0] != "Z"
