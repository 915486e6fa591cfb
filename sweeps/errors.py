"""How the command line reports a user's mistake: one line, exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from studies.errors import ParameterError, SweepsError

__all__ = ["UserError", "user_errors", "EXIT_MLFLOW_INCOMPLETE"]

# 'sweep run' and 'sweep worker' finished every trial, but MLflow did not get every run
# (interrupted at the end, its writer died, or the tracking store failed): 'sweep sync' writes them.
EXIT_MLFLOW_INCOMPLETE = 3

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """A bad argument, file or name: printed as ``Error: <message>``, exit code 2."""

    exit_code = 2


def _flag(param: str) -> str | None:
    """How the running command spells the library's parameter ``param``: its option's flag
    (``--storage``) or its argument's name (``NAME``)."""
    ctx = click.get_current_context(silent=True)
    for p in ctx.command.params if ctx is not None else ():
        if p.name == param:
            if isinstance(p, click.Option):
                return max(p.opts, key=len)
            return p.human_readable_name
    return None


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's errors (:class:`SweepsError`) into a :class:`UserError`, naming
    parameters by the flags that set them. Any other exception is a bug: it keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ParameterError as exc:
            flag = _flag(exc.param)
            raise UserError(" ".join((exc.named(flag) if flag else str(exc)).split())) from None
        except SweepsError as exc:
            raise UserError(" ".join(str(exc).split())) from None

    return wrapper
