"""The library's errors (one family, :class:`SweepsError`, defined on the ground floor) and its
one warning: the library names a parameter (``'storage'``), the command line names the flag
that set it (``'--storage'``)."""

from __future__ import annotations

import warnings

from engine.errors import SweepsError

__all__ = ["SweepsError", "ParameterError", "JournalWarning"]


class ParameterError(SweepsError):
    """A bad value for the parameter ``param``: the message is its name, then ``rest``.

    Example:
        >>> str(ParameterError("backend", " must be one of ['dask', 'loky'], but got 'x'."))
        "'backend' must be one of ['dask', 'loky'], but got 'x'."
    """

    def __init__(self, param: str, rest: str) -> None:
        self.param, self.rest = param, rest
        super().__init__(f"'{param}'{rest}")

    def named(self, name: str) -> str:
        """The message, naming the parameter as ``name`` (a flag, say)."""
        return f"'{name}'{self.rest}"


class JournalWarning(UserWarning):
    """A journal file was repaired: its torn last record was cut off."""


_format_default = warnings.formatwarning


def _format(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - warnings' signature
    """A :class:`JournalWarning` is news for the user, in any process (a worker's too): one line,
    like the command line's, without the Python source line that raised it."""
    if isinstance(category, type) and issubclass(category, JournalWarning):
        return f"Warning: {message}\n"
    return _format_default(message, category, filename, lineno, line)


warnings.formatwarning = _format
