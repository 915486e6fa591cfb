"""The library's errors about a named parameter: the library names the parameter (``'storage'``),
the command line names the flag that set it (``'--storage'``)."""

from __future__ import annotations

__all__ = ["ParameterError"]


class ParameterError(ValueError):
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
