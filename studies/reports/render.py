"""The report as blocks, rendered to one self-contained HTML file and to Markdown + PNG files.

Every string that comes from a user (sweep and dataset names, column names, parameters)
is escaped for the format it lands in.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass

__all__ = ["Heading", "Text", "Table", "Image", "Code", "to_html", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[object]]


@dataclass(frozen=True)
class Image:
    name: str  # file name for Markdown (plain, made by us)
    png: bytes
    alt: str


@dataclass(frozen=True)
class Code:
    text: str
    lang: str = "toml"  # the Markdown fence's language


Block = Heading | Text | Table | Image | Code

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}
img{max-width:100%;display:block;margin:0.6em 0}pre{background:#f6f6f6;padding:0.8em;overflow:auto}
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:2em}"""


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def to_html(title: str, blocks: list[Block]) -> str:
    """One self-contained page: inline CSS, figures as PNG data URIs, no scripts."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Code):
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<img alt="{html.escape(b.alt, quote=True)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out)


# What Markdown would misread anywhere in a line (emphasis, code, links, entities, table cells,
# strikethrough; an '_' inside a word, as in 'val_cost', is none of these); '<' becomes '&lt;', so
# no raw HTML gets through; other punctuation stays as it is, so that the text reads as text.
_MD_INLINE = re.compile(r"([\\`*\[\]&|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
# What it would misread at the start of a line only: a heading, a quote, a list item, a rule.
_MD_LINE_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d+)([.)]))")


def _line_start(m: re.Match[str]) -> str:
    if m.group(2):
        return f"{m.group(1)}\\{m.group(2)}"
    return f"{m.group(1)}{m.group(3)}\\{m.group(4)}"


def md_escape(text: str, *, line_start: bool = True) -> str:
    r"""A user's string as literal Markdown text, on one line: a backslash before each character
    Markdown would misread, '<' as '&lt;', and nothing else (``line_start=False``: text that does
    not start a line, a table's cell, where '1.' or '-' mean nothing).

    >>> print(md_escape("val_cost 0.1 (best) <b>x</b> _a_"))
    val_cost 0.1 (best) &lt;b>x&lt;/b> \_a\_
    >>> print(md_escape("1. not a list"))
    1\. not a list
    """
    one_line = " ".join(str(text).splitlines())
    escaped = _MD_INLINE.sub(r"\\\1", one_line).replace("<", "&lt;")
    return _MD_LINE_START.sub(_line_start, escaped) if line_start else escaped


def to_markdown(title: str, blocks: list[Block], figures_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the PNG files it links to (relative to the Markdown file)."""
    out, files = [f"# {md_escape(title)}", ""], {}
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + md_escape(b.text), ""]
        elif isinstance(b, Text):
            out += [md_escape(b.text), ""]
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            out += [fence + b.lang, b.text.replace(fence, ""), fence, ""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(md_escape(h, line_start=False) for h in b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out += ["| " + " | ".join(md_escape(_cell(c), line_start=False) for c in r) + " |" for r in b.rows]
            out.append("")
        elif isinstance(b, Image):
            path = f"{figures_dir}/{b.name}"
            files[path] = b.png
            out += [f"![{md_escape(b.alt, line_start=False)}]({path})", ""]
    return "\n".join(out), files
