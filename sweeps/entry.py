"""The ``sweep`` console script: stop signals are handled from the first instant to the last.

Importing the command line takes a moment (Optuna, NumPy, ...); a SIGINT or SIGTERM then
ends the process with the same one line and exit code as later on, since nothing has
been written yet. The command group then takes the signals over (see ``sweeps.cli``).

Once the command has finished, its exit code is decided: a stop signal during the exit
(joining helper processes, then Python's teardown, which can take a second after a report
or a run) ends the process at once with that code, never with "interrupted" nor as killed
by the signal (143).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys


def _early(signum: int, frame: object) -> None:
    sys.stderr.write("Error: interrupted; nothing was written.\n")
    sys.stderr.flush()
    os._exit(2)


def _finished(code: int) -> None:
    """From now on, a stop signal ends the process with ``code``: the command is done."""

    def leave(signum: int, frame: object) -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)


def _teardown() -> None:
    # The last exit handler (registered first): what follows is Python's teardown, which gives
    # the signals' default action (death by the signal) back to handlers written in Python, but
    # keeps an "ignore".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def main() -> None:
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    atexit.register(_teardown)  # before anything the command imports registers its own
    from sweeps.cli import main as cli_main

    try:
        cli_main()
    except SystemExit as exc:
        code = _code(exc)
    else:
        code = 0
    _finished(code)
    _leave(code)


def _leave(code: int) -> None:
    """End with the command's code: the exit handlers run (helper processes joined), then the
    process leaves without Python's teardown, whose restoring of the signals' default actions
    let a stop signal landing there (about one Ctrl-C in five, 0.8 s after the start, while loky's
    helpers were being joined) end the process as killed by the signal instead."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
