"""Keeping the passwords of storage and tracking URLs out of messages and logs.

A password may hold any character a URL can carry: ``@``, ``:``, ``/``, ``?``, ``#``,
percent escapes, non-ASCII. The password is everything between ``://user:`` and the
*last* ``@`` (parsers that stop at the first ``@`` or ``/`` misread such a URL, and their
messages then quote a piece of the password as a host name: those pieces are hidden too).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["redact", "scrub"]

MASK = "***"
# scheme://user:password@host...: the password runs to the last '@' (greedy), the user to the first ':'.
_URL = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?P<user>[^:/@?#\s]*):)(?P<password>.*)@(?P<tail>[^@]*)$", re.DOTALL
)
# The same inside a text: a URL's password runs to the last '@' before white space or a quote.
_IN_TEXT = re.compile(r"(://[^:/@?#\s'\"]*:)[^\s'\"]*@")
_SEPARATORS = "@:/?#"


def _password(url: str | None) -> str | None:
    m = _URL.match(url) if url else None
    return m.group("password") if m and m.group("password") else None


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``: safe to print or log.

    Example:
        >>> redact("postgresql://bob:p@ss/w:rd@db:5432/x")
        'postgresql://bob:***@db:5432/x'
    """
    m = _URL.match(url)
    if m is None or not m.group("password"):
        return url
    return f"{m.group('head')}{MASK}@{m.group('tail')}"


def _pieces(password: str) -> list[str]:
    """The password, its decoded form, and every run of them between separators: what a
    parser that splits at one of them takes for a password, a host or a path. Longest first."""
    out: set[str] = set()
    for secret in {password, unquote(password)}:
        cuts = [-1] + [i for i, ch in enumerate(secret) if ch in _SEPARATORS] + [len(secret)]
        out.update(secret[a + 1 : b] for k, a in enumerate(cuts) for b in cuts[k + 1 :])
    return sorted((p for p in out if p), key=len, reverse=True)


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message, say) with the password of ``url``, any piece of it a
    parser may have quoted, and the password of any URL in the text hidden."""
    text = _IN_TEXT.sub(rf"\1{MASK}@", text)
    password = _password(url)
    if password is None:
        return text
    for piece in _pieces(password):
        if len(piece) >= 4:
            text = text.replace(piece, MASK)
        else:  # too short to hide everywhere (it would garble the text): where a parser puts it
            text = re.sub(rf"(?<![^\s'\"@:/]){re.escape(piece)}(?![^\s'\"@:/])", MASK, text)
    return text
