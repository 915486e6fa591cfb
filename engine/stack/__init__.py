"""Many networks trained as one stack (see :mod:`engine.stack.trainer`): members of any widths,
depths, activations and inputs, joining and leaving between epochs."""

from engine.stack.trainer import Member, Stack, stack_widths, train_stacked

__all__ = ["Member", "Stack", "stack_widths", "train_stacked"]
