"""The command line around a sweep file: its overrides checked by the file's rules, the flags
named in errors, help with examples, and nothing written to answer."""

from __future__ import annotations

import os
import tomllib

import pytest
from click.testing import CliRunner

from sweeps.cli import cli
from sweeps.limits import max_jobs
from sweeps.spec import spec_from_dict
from tests.sweeps.spec.sweep_files import GOOD, assert_clean_error, edit, run_file


def test_command_line_limits(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_text(GOOD)
    assert_clean_error(
        run_file(path, "--jobs", str(max_jobs() + 1), "--check"),
        f"command line: 'jobs' must be at most {max_jobs()}",
        in_tmp,
    )
    for flag in ("--batch", "--stack"):
        assert_clean_error(
            run_file(path, flag, "10000000000", "--check"),
            "command line: 'stack' must be at most 1024 (trials a worker trains at once",
            in_tmp,
        )


def test_bad_command_line_overrides(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_text(GOOD)
    assert_clean_error(
        run_file(path, "--trials", "0"), "command line: 'trials' must be an integer >= 1, but got 0", in_tmp
    )


def test_a_sweep_stored_before_the_step_rule_resumes_from_its_own_file_and_joins_with_overrides(in_tmp):
    from studies.execution.runner import open_sweep
    from studies.storage.opening import open_storage
    from sweeps.spec import apply_overrides

    text = edit("low = 1e-4, high = 10.0, log = true", "low = 0.1, high = 1.0, step = 0.25")
    stored = spec_from_dict(tomllib.loads(text), origin="t", stored=True)
    # 'sweep worker' validates the stored sweep again with its --jobs/--batch: by the same old rules.
    assert apply_overrides(stored, jobs=1, stack=2, stored=True).space.searched["learning_rate"].step == 0.25
    with pytest.raises(ValueError, match="must divide high - low"):
        apply_overrides(stored, jobs=1)
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    assert_clean_error(run_file(path, "--check"), "'search.learning_rate.step' must divide high - low", in_tmp)
    assert_clean_error(run_file(path, "--check", "--storage", "sqlite:///x.db"), "must divide high - low", in_tmp)
    assert sorted(os.listdir(in_tmp)) == ["sweep.toml"]  # no storage written to answer (no journal, no SQLite file)
    open_sweep(stored, open_storage("sweeps.journal"))  # the same sweep, stored before the rule existed
    r = run_file(path, "--check", "--jobs", "1", "--trials", "5")
    assert r.exit_code == 0, r.output
    assert "sweep 'demo' is valid" in r.output
    # Another sweep, or this one changed, is new: the rule applies.
    for other in (text.replace('name = "demo"', 'name = "other"'), text.replace("epochs = 3", "epochs = 4")):
        folder = in_tmp / "more"
        folder.mkdir(exist_ok=True)
        (folder / "sweep.toml").write_text(other)
        assert_clean_error(run_file(folder / "sweep.toml", "--check"), "must divide high - low", folder)


def test_library_errors_name_the_flag_that_set_the_parameter(tmp_path, monkeypatch):
    """The library names its parameters ('storage'); the command line names its flags."""
    from click.testing import CliRunner

    from sweeps.cli import cli

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["status", "x", "--storage", "ftp://me:pw@host/x"])
    assert r.exit_code == 2 and r.output.startswith("Error: '--storage' must be a journal file path"), r.output
    assert "pw" not in r.output
    r = CliRunner().invoke(cli, ["run", "playground", "--storage", "ftp://host/x"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "'--storage' must be" in r.output, r.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_looking_for_a_sweep_in_a_missing_journal_creates_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sweeps.cli import cli

    monkeypatch.chdir(tmp_path)
    for args in (
        ["status", "gone"],
        ["sync", "gone"],
        ["report", "gone"],
        ["worker", "gone"],
        ["reproduce", "gone", "--dataset", "circle", "--trial", "1"],
    ):
        for storage in ([], ["--storage", "sqlite:///gone.db"]):  # opening SQLite would create its file too
            r = CliRunner().invoke(cli, args + storage)
            assert r.exit_code == 2 and "no sweep named 'gone'" in r.output, (args, storage, r.output)
    assert not list(tmp_path.iterdir())


def test_the_file_a_storage_keeps_its_records_in():
    from studies.storage.opening import storage_file

    assert storage_file("sweeps.journal") == "sweeps.journal"
    assert storage_file("file:///tmp/a b.journal") == "/tmp/a b.journal"
    assert storage_file("sqlite:///x.db?timeout=5") == "x.db"
    assert storage_file("sqlite:////abs/x.db") == "/abs/x.db"
    assert storage_file("sqlite:///:memory:") is None
    assert storage_file("postgresql://u:pw@127.0.0.1/db") is None and storage_file("redis://127.0.0.1") is None


@pytest.mark.parametrize(
    "command", ["run", "worker", "status", "presets", "sync", "train", "report", "reproduce", "ui"]
)
def test_every_command_has_help_with_examples(command):
    r = CliRunner().invoke(cli, [command, "--help"])
    assert r.exit_code == 0 and "Examples:" in r.output
