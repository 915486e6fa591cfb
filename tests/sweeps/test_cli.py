"""The command group: it starts at once (no Optuna, MLflow or matplotlib for --help, presets),
lists its commands without importing them, and tells a user's mistake from a bug."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sweeps.cli import COMMANDS, cli

HEAVY = ("optuna", "mlflow", "matplotlib", "sklearn")


def test_the_listed_short_help_is_each_commands_own():
    for name, (module, attr, short) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        assert command.name == name
        assert short == command.get_short_help_str(limit=65), name


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["presets"],
        ["presets", "--show", "playground"],
        ["run", "--help"],
        ["status", "--help"],
        ["compare", "--help"],
        ["ui", "--help"],
    ],
)
def test_light_commands_import_none_of_the_heavy_libraries(args):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sweeps", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    imported = {m.group(1).strip().split(".")[0] for m in re.finditer(r"import time:.*\|(.*)$", proc.stderr, re.M)}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_a_bug_keeps_its_traceback_and_says_it_is_one(monkeypatch):
    import sweeps.commands.train as train_module

    def broken(*args, **kwargs):
        raise ZeroDivisionError("an internal bug")

    monkeypatch.setattr(train_module, "train", broken)
    result = CliRunner().invoke(cli, ["train", "--dataset", "xor", "--epochs", "1"])
    assert result.exit_code == 70  # EX_SOFTWARE: not 1, which 'sweep reproduce' uses for "differs"
    assert "Traceback" in result.output and "ZeroDivisionError: an internal bug" in result.output
    assert "is a bug in sweeps" in result.output.splitlines()[-1]


def test_a_users_mistake_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["train", "--dataset", "no-such-set"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "no-such-set" in lines[0]


def test_a_stop_signal_while_the_handlers_are_restored_leaves_the_outcome(monkeypatch):
    # SIGTERM just as a command ends (its handlers being put back) raised KeyboardInterrupt there.
    import signal as signal_module

    import sweeps.cli

    real, calls = signal_module.signal, []

    def signal_then_stop(sig, handler):
        calls.append(sig)
        if len(calls) == 3:  # install set two; the first restore is hit by the stop signal
            raise KeyboardInterrupt
        return real(sig, handler)

    monkeypatch.setattr(sweeps.cli.signal, "signal", signal_then_stop)
    r = CliRunner().invoke(cli, ["presets"])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert len(calls) >= 3
