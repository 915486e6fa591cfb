"""The docs' commands are tested as the README's are: every code block of README.md and docs/*.md.

- ``bash``: each ``sweep ...`` command (a line, or a part joined by ``&&``, ``||``, ``;`` or ``|``)
  is parsed by the real command line (``sweeps.cli.cli``) with click's own parser, without
  running it: an unknown subcommand or option, a bad choice or value, a missing required
  option or an extra argument fails. ``python benchmarks/X.py`` must name an existing script
  and options it defines; ``pip install -e ".[extra]"`` extras ``pyproject.toml`` defines.
- ``python``: run in a temporary folder.
- ``toml``: a whole sweep file (it has ``name =``) is validated as ``sweep run`` validates it
  (``sweeps.spec.spec_from_dict``), in a temporary folder holding ``data/mine.csv``, the docs'
  example of the reader's own data; a fragment says ``# fragment`` in its first line and is
  only parsed as TOML.
- ``text``: not checked. Any other language, or none, is refused: nothing escapes the checks.
- Relative links point at files that exist, and their ``#anchors`` at headings that exist.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = ("bash", "python", "text", "toml")
SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}
REDIRECT = re.compile(r"^\d*(?:[<>]{1,2}|>&|&>)$")
MINE_CSV = "sepal,petal,species\n" + "".join(
    f"{i % 7 + 0.5},{i % 5 + 1.5},{('setosa', 'versicolor', 'virginica')[i % 3]}\n" for i in range(45)
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # the line of its opening fence, from 1
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (fences at the start of a line)."""
    blocks: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            if opened is None:
                opened, body = (number, line[3:].strip()), []
            else:
                blocks.append(Block(path, opened[0], opened[1], "\n".join(body) + "\n"))
                opened = None
        elif opened is not None:
            body.append(line)
    assert opened is None, f"{path.relative_to(ROOT)}:{opened[0]}: a code block is never closed"
    return blocks


BLOCKS = [block for path in DOCS for block in _blocks(path)]


def _of(language: str) -> list[Block]:
    return [b for b in BLOCKS if b.language == language]


def _ids(blocks: list[Block]) -> list[str]:
    return [b.where for b in blocks]


# -- bash ------------------------------------------------------------------------------------


def _commands(text: str) -> list[list[str]]:
    """The simple commands of a shell block: continuation lines joined, comments dropped, split
    at ``&&``, ``||``, ``;``, ``|`` and parentheses, without redirections or leading ``VAR=value``."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        tokens = list(lexer)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in SEPARATORS:
                commands.append(command)
                command = []
            elif REDIRECT.match(token):
                i += 1  # and its target
            else:
                command.append(token)
            i += 1
        commands.append(command)
    out = []
    for command in commands:
        while command and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]):
            command = command[1:]
        if command:
            out.append(command)
    return out


def check_sweep(args: list[str]) -> None:
    """Parse ``sweep ARGS`` with the real command line, without running it; raise
    ``AssertionError`` saying what is wrong."""
    from sweeps.cli import cli

    parent = click.Context(cli, info_name="sweep")
    shown = " ".join(["sweep", *args])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            if not args or args[0].startswith("-"):
                cli.make_context("sweep", list(args))
                return
            command = cli.get_command(parent, args[0])
            if command is None:
                raise AssertionError(f"{shown!r}: no command {args[0]!r}; the commands are {cli.list_commands(parent)}")
            command.make_context(args[0], list(args[1:]), parent=parent)
        except click.exceptions.Exit:
            pass  # --help, --version
        except click.ClickException as exc:
            raise AssertionError(f"{shown!r}: {exc.format_message()}") from None


def check_benchmark(args: list[str]) -> None:
    """``python benchmarks/X.py ARGS``: the script exists and defines each ``--option`` given
    (up to a bare ``--``, after which the arguments are another command's)."""
    script = ROOT / args[0]
    assert script.is_file(), f"{' '.join(args)!r}: there is no {args[0]}"
    source = script.read_text(encoding="utf-8")
    for arg in args[1:]:
        if arg == "--":
            break
        if arg.startswith("--"):
            option = arg.split("=", 1)[0]
            assert f'"{option}"' in source, f"{' '.join(args)!r}: {args[0]} has no option {option!r}"


def check_extras(args: list[str]) -> None:
    """``pip install -e ".[a,b]"``: extras that pyproject.toml defines."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for arg in args:
        found = re.fullmatch(r"\.\[(.+)\]", arg)
        for extra in found.group(1).split(",") if found else ():
            assert extra.strip() in extras, f"{' '.join(args)!r}: no extra {extra!r}; pyproject has {sorted(extras)}"


def check_command(args: list[str]) -> None:
    """Check one simple command of a shell block, if it is one of ours."""
    if args[0] == "sweep":
        check_sweep(args[1:])
    elif args[0].startswith("python") and args[1:3] == ["-m", "sweeps"]:
        check_sweep(args[3:])
    elif args[0].startswith("python") and len(args) > 1 and args[1].startswith("benchmarks/"):
        check_benchmark(args[1:])
    elif args[:2] == ["pip", "install"]:
        check_extras(args[2:])


@pytest.mark.parametrize("block", _of("bash"), ids=_ids(_of("bash")))
def test_bash_block_commands_exist_with_their_options(block):
    for args in _commands(block.text):
        try:
            check_command(args)
        except AssertionError as exc:
            raise AssertionError(f"{block.where}: {exc}") from None


def test_the_docs_show_sweep_commands():
    shown = [args for b in _of("bash") for args in _commands(b.text) if args[0] == "sweep"]
    assert len(shown) >= 20, shown  # the parser above found them: a change of format would hide them


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("sweep run playground --no-such-option", "No such option"),
        ("sweep nosuch playground", "no command 'nosuch'"),
        ("sweep train --dataset xor --optimizer adamw", "'adamw' is not one of"),
        ("sweep reproduce playground --dataset circle", "Missing option '--trial'"),
        ("sweep status playground extra", "unexpected extra argument"),
        ("pip install -e . && sweep run playground --jobs two", "'two' is not a valid integer"),
        ("python benchmarks/nosuch.py", "there is no benchmarks/nosuch.py"),
        ("python benchmarks/warm_start.py --seed 3", "has no option '--seed'"),
        ('pip install -e ".[nosuch]"', "no extra 'nosuch'"),
    ],
)
def test_a_bad_command_fails_loudly(line, complaint):
    with pytest.raises(AssertionError, match=re.escape(complaint)):
        for args in _commands(line):
            check_command(args)


def test_commands_are_split_as_the_shell_splits_them():
    text = (
        '(apt-get update -qq && apt-get install -y chromium) >/dev/null 2>&1; pip install -e ".[test]" && pytest\n'
        "PYTHONPATH=. sweep presets --show playground > my-sweep.toml   # a comment --nope\n"
        "sweep run my-sweep.toml \\\n    --check\n"
    )
    assert _commands(text) == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "chromium"],
        ["2"],
        ["pip", "install", "-e", ".[test]"],
        ["pytest"],
        ["sweep", "presets", "--show", "playground"],
        ["sweep", "run", "my-sweep.toml", "--check"],
    ]


# -- python, toml ----------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of("python"), ids=_ids(_of("python")))
def test_python_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("block", _of("toml"), ids=_ids(_of("toml")))
def test_toml_block_is_a_valid_sweep_file_or_says_it_is_a_fragment(block, tmp_path, monkeypatch):
    from sweeps.spec import spec_from_dict

    data = tomllib.loads(block.text)  # a fragment too is TOML
    if block.text.lstrip().startswith("# fragment"):
        return
    assert re.search(r"^name\s*=", block.text, flags=re.M), (
        f"{block.where}: a TOML block is a whole sweep file (with 'name =') or says '# fragment' in its first line"
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text(MINE_CSV, encoding="utf-8")
    spec_from_dict(data, origin=block.where)


def test_every_block_names_a_checked_language():
    bad = [f"{b.where} ({b.language or 'none'})" for b in BLOCKS if b.language not in LANGUAGES]
    assert not bad, f"code blocks must be one of {list(LANGUAGES)}: {bad}"


# -- links -----------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(path: Path) -> str:
    """The file without its code blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.sub(r"(`+).+?\1", "", text, flags=re.S)


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a Markdown file's headings (a repeated one gets -1, -2, ...)."""
    found: dict[str, int] = {}
    text = re.sub(r"^```.*?^```[^\n]*$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for line in text.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        n = found.get(slug, 0)
        found[slug] = n + 1
        if n:
            found[f"{slug}-{n}"] = 1
    return set(found)


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_point_at_files_and_headings_that_exist(path):
    broken = []
    for target in LINK.findall(_prose(path)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target} (no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading '#{anchor}' in {dest.relative_to(ROOT)})")
    assert not broken, f"{path.relative_to(ROOT)}: broken links: {broken}"
