"""The sweep file as a whole: a good file and the presets read back the same; every kind of
mistake gives exit 2, one line, and writes nothing."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from studies.sweep.space import Choice, Range
from sweeps.cli import cli
from sweeps.spec import load_spec, spec_from_dict
from tests.sweeps.spec.sweep_files import BAD, GOOD, assert_clean_error, edit, run_file


def test_the_example_file_is_valid(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(GOOD)
    config = load_spec(str(path))
    assert config.name == "demo" and [d.name for d in config.datasets] == ["circle", "xor"]
    assert config.space.searched["learning_rate"] == Range(1e-4, 10.0, log=True)
    assert config.space.searched["hidden_units"].integer
    assert config.space.searched["activation"] == Choice(("sigmoid", "tanh", "relu"))
    assert config.space.fixed == {"epochs": 3, "batch_size": 10, "optimizer": "sgd"}
    assert config.direction == "minimize"
    assert spec_from_dict(config.to_dict()) == config  # what the storage keeps reads back the same


def test_presets_are_valid():
    for name in ("playground", "classics"):
        config = load_spec(name)
        assert config.name == name and len(config.datasets) == 4


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_sweep_files(in_tmp, text, message):
    path = in_tmp / "sweep.toml"
    path.write_text(text)
    result = run_file(path)
    assert_clean_error(result, message, in_tmp)
    assert "sweep.toml" in result.output  # the file is named


def test_an_over_long_name_states_the_limit_and_is_not_repeated(in_tmp):
    long = "a" * 100_000
    path = in_tmp / "sweep.toml"
    path.write_text(edit('name = "demo"', f'name = "{long}"'))
    result = run_file(path)
    assert_clean_error(result, "'name' must be a plain name of at most 100 characters", in_tmp)
    assert "(100000 characters, at most 100)" in result.output and len(result.output) < 500, result.output[:300]
    status = CliRunner().invoke(cli, ["status", long])  # a NAME on the command line: the same rule
    assert status.exit_code == 2 and "at most 100 characters" in status.output and len(status.output) < 500
    assert "a" * 101 not in status.output and os.listdir(in_tmp) == ["sweep.toml"]
    exact = "b" * 100  # the limit itself is a name
    ok = CliRunner().invoke(cli, ["status", exact])
    assert ok.exit_code == 2 and f"no sweep named '{exact}'" in ok.output


def test_file_that_is_not_text(in_tmp):
    path = in_tmp / "sweep.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    assert_clean_error(run_file(path), "not a text file", in_tmp)


def test_unknown_spec_or_preset(in_tmp):
    result = CliRunner().invoke(cli, ["run", "no-such-sweep"])
    assert result.exit_code == 2
    assert "no sweep file or preset named 'no-such-sweep'; the presets are ['classics', 'playground']" in result.output
    assert os.listdir(in_tmp) == []


def test_a_mistyped_preset_gets_a_guess(in_tmp):
    result = CliRunner().invoke(cli, ["run", "playgrund"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = "no sweep file or preset named 'playgrund' (did you mean 'playground'?); the presets are"
    assert line in result.output and os.listdir(in_tmp) == []


def test_presets_command_lists_and_shows():
    r = CliRunner().invoke(cli, ["presets"])
    assert r.exit_code == 0 and "playground" in r.output and "classics" in r.output
    r = CliRunner().invoke(cli, ["presets", "--show", "playground"])
    assert r.exit_code == 0 and 'name = "playground"' in r.output
