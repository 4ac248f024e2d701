"""One module per command group; each exposes ``register(subparsers)``.

Conventions (keep them, outside tools rely on them):
- import only the standard library at module level; import torch/pandas inside handlers;
- a handler is ``def _run(args) -> int``; bad input raises :class:`dmrules.UsageError`;
- set ``parser.set_defaults(func=_run, _prog=parser.prog)`` so errors are prefixed by the command;
- a group with sub-actions (``dmrules theory score``) sets ``_parser`` so a bare group prints help.
"""

import argparse


def parse_floats(text: str) -> list[float]:
    """argparse type for comma-separated floats, e.g. ``--t 0.05,0.1,1``."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def parse_ints(text: str) -> list[int]:
    """argparse type for comma-separated integers, e.g. ``--m 5,20,80``."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def parse_names(text: str) -> list[str]:
    """argparse type for comma-separated names, e.g. ``--networks patchwise,joint`` (empty items dropped;
    the command checks the names)."""
    return [x for x in text.split(",") if x]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
