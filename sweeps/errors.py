"""How the command line reports a user's mistake: one line, exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

__all__ = ["UserError", "user_errors"]

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """A bad argument, file or name: printed as ``Error: <message>``, exit code 2."""

    exit_code = 2


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's ``ValueError`` into a :class:`UserError`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise UserError(" ".join(str(exc).split())) from None

    return wrapper
