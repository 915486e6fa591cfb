"""The library's one family of errors.

Every floor (the engine, the studies, the command line) raises :class:`SweepsError`, or a
subclass, for what a user can fix: a bad argument, sweep file, dataset or storage, a name
that does not exist. The command line turns exactly this family into one line and exit code
2; anything else is a bug and keeps its traceback. It is a ``ValueError``, so that code
catching bad values catches these too.

Example:
    >>> from engine.errors import SweepsError
    >>> issubclass(SweepsError, ValueError)
    True
"""

from __future__ import annotations

__all__ = ["SweepsError"]


class SweepsError(ValueError):
    """A mistake or a condition the user can fix; its message says what and how, in one line."""
