"""The ``sweep`` console script: stop signals are handled from the first instant.

Importing the command line takes a moment (Optuna, NumPy, ...); a SIGINT or SIGTERM then
ends the process with the same one line and exit code as later on, since nothing has
been written yet. The command group then takes the signals over (see ``sweeps.cli``).
"""

from __future__ import annotations

import os
import signal
import sys


def _early(signum: int, frame: object) -> None:
    sys.stderr.write("Error: interrupted; nothing was written.\n")
    sys.stderr.flush()
    os._exit(2)


def main() -> None:
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    from sweeps.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
