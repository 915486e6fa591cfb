"""Servers that never outlive the command that started them, however it ends.

``sweep ui`` starts MLflow's server (which starts uvicorn workers and job consumers of its
own) and optuna-dashboard. If ``sweep ui`` is killed with SIGKILL, nothing of it runs to
stop them, and they would go on serving. So they are started by a small watchdog process
instead: it makes itself the "subreaper" of everything below it (Linux: orphans of its
children are re-parented to it, not to init), reads commands from a pipe whose other end
only the command holds, and when that pipe closes (the command exited or died) it stops
the whole tree below it and leaves. Commands carry the servers' environment (URLs with
passwords), never their command lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from studies.execution.processes import descendants, stop_tree

__all__ = ["Supervisor"]

_PR_SET_CHILD_SUBREAPER = 36


def _subreaper() -> None:
    with contextlib.suppress(Exception):  # Linux only; elsewhere the process groups still go
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _reap_forever() -> None:
    """Collect the exit status of whatever ends below the watchdog (no zombies pile up)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)


def _stop_everything(grace: float) -> None:
    tree = descendants(os.getpid())
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and descendants(os.getpid()):
        time.sleep(0.1)
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _stop_and_exit(signum: int, frame: object) -> None:
    _stop_everything(5.0)
    os._exit(0)


def watchdog_main() -> None:
    """The watchdog: ``start`` commands in, children's pids out; end of input stops them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command decides; a terminal's Ctrl-C is its
    signal.signal(signal.SIGTERM, _stop_and_exit)
    _subreaper()
    threading.Thread(target=_reap_forever, daemon=True).start()
    grace = 10.0
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "start":
            log = cmd.get("log")  # a file of the command's own (made with O_EXCL): the child's stderr
            err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
            proc = subprocess.Popen(
                cmd["args"],
                env=cmd["env"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
            if log:
                err.close()  # type: ignore[union-attr]
            sys.stdout.write(f"{proc.pid}\n")
            sys.stdout.flush()
        elif cmd.get("cmd") == "stop":
            grace = float(cmd.get("grace", grace))
            break
    _stop_everything(grace)
    os._exit(0)


class Supervisor:
    """Start processes that end when this process ends, even by SIGKILL (with all they started).

    Example:
        >>> with Supervisor() as sup:  # doctest: +SKIP
        ...     pid = sup.start([sys.executable, "-m", "mlflow", "ui"], env=dict(os.environ))
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from studies.execution.supervisor import watchdog_main; watchdog_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def start(self, args: list[str], *, env: dict[str, str], log: str | None = None) -> int:
        """Start ``args`` under the watchdog (environment ``env``; its stderr appended to the
        file ``log``, else dropped); returns its pid."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"cmd": "start", "args": args, "env": env, "log": log}) + "\n")
        self._proc.stdin.flush()
        return int(self._proc.stdout.readline())

    def alive(self, pid: int) -> bool:
        """Whether a child started here still runs."""
        return pid in descendants(self._proc.pid)

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop every process started here (and what they started); wait until they are gone."""
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps({"cmd": "stop", "grace": grace}) + "\n")
            self._proc.stdin.close()
        try:
            self._proc.wait(grace + 10)
        except subprocess.TimeoutExpired:
            stop_tree(self._proc.pid, grace=1.0)
            self._proc.wait()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
