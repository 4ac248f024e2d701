"""One module per command group; each exposes ``register(subparsers)``.

Conventions (keep them, outside tools rely on them):
- import only the standard library at module level; import torch/pandas inside handlers;
- a handler is ``def _run(args) -> int``; bad input raises :class:`dmrules.UsageError`;
- set ``parser.set_defaults(func=_run, _prog=parser.prog)`` so errors are prefixed by the command;
- a group with sub-actions (``dmrules theory score``) sets ``_parser`` so a bare group prints help;
- every numeric option uses a validating type from here (:func:`number` / :func:`numbers` or the
  ready-made ones below), never a bare ``float`` / ``int``: NaN, infinities and values outside the
  documented range are refused while parsing, before any work (issue 12; tests/test_faults.py walks
  every parser and checks this, so a new option cannot skip it).
"""

import argparse
import math


def _fmt_range(lo, hi, lo_open, hi_open) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "finite"


def _convert(text: str, kind, lo, hi, lo_open, hi_open, what=None, listed=False):
    """One value of ``kind`` (int or float), finite and inside the bounds, or ArgumentTypeError."""
    noun = what or ("an integer" if kind is int else "a number")
    try:
        value = kind(text.strip())
    except (ValueError, TypeError, OverflowError):
        plain = ("comma-separated integers" if kind is int else "comma-separated numbers") if listed else noun
        raise argparse.ArgumentTypeError(f"expected {plain}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    bad = ((lo is not None and (value < lo or (lo_open and value == lo)))
           or (hi is not None and (value > hi or (hi_open and value == hi))))
    if bad:
        raise argparse.ArgumentTypeError(f"expected {noun} {_fmt_range(lo, hi, lo_open, hi_open)}, got {text!r}")
    return value


def number(kind=float, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False, what: str | None = None):
    """argparse type: one finite ``kind`` (float or int) in [lo, hi] (open ends with ``*_open``);
    ``what`` names the value in messages ("an OU time t").

    The returned function carries ``bounds = (lo, hi, lo_open, hi_open)`` and ``kind`` (read by the
    option fuzz test)."""

    def parse(text: str):
        return _convert(text, kind, lo, hi, lo_open, hi_open, what)

    parse.bounds, parse.kind = (lo, hi, lo_open, hi_open), kind
    parse.__name__ = f"{kind.__name__}_{_fmt_range(lo, hi, lo_open, hi_open).replace(' ', '')}"
    return parse


def numbers(kind=float, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False, what: str | None = None):
    """argparse type: comma-separated finite ``kind`` values, each in [lo, hi] (at least one)."""
    plural = "integers" if kind is int else "numbers"

    def parse(text: str):
        items = [x for x in text.split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected at least one of comma-separated {plural}, got {text!r}")
        try:
            return [_convert(x, kind, lo, hi, lo_open, hi_open, what, listed=True) for x in items]
        except argparse.ArgumentTypeError as exc:
            if len(items) == 1:
                raise
            raise argparse.ArgumentTypeError(f"{exc} (in {text!r})") from None

    parse.bounds, parse.kind = (lo, hi, lo_open, hi_open), kind
    parse.__name__ = f"{kind.__name__}s_{_fmt_range(lo, hi, lo_open, hi_open).replace(' ', '')}"
    return parse


# The DDPM schedule's length T (``theory.ddpm_schedule``'s default; the noise process
# ``theory.schedules.VPProcess`` owns time). The CLI may not import torch at start-up, so the bounds and help
# texts of its step options read this mirror; tests/test_owners.py pins it to the process.
DDPM_T = 1000
T_MAX = DDPM_T - 1  # the last DDPM step index (VPProcess().t_max): the ancestral sampler's step count
# more torch-free mirrors, pinned to their owners by tests/test_owners.py: the sims presets (the keys of
# sims.experiments' FL_PRESETS, RULES_PRESETS and DIGITS_PRESETS) and the data laws of theory.checks.make_dist
SIMS_PRESETS = ("quick", "paper")
THEORY_DISTS = ("rules", "fl")

# ready-made types
parse_floats = numbers(float)  # comma-separated finite floats, e.g. ``--t 0.05,0.1,1``
parse_ints = numbers(int)  # comma-separated integers, e.g. ``--m 5,20,80``
positive_floats = numbers(float, lo=0, lo_open=True)
positive_ints = numbers(int, lo=1, what="positive integers")
nonneg_ints = numbers(int, lo=0)
positive_int = number(int, lo=1, what="a positive integer")
nonneg_int = number(int, lo=0)  # seeds, counts that may be 0
positive_float = number(float, lo=0, lo_open=True)  # learning rates, times, lengths
nonneg_float = number(float, lo=0)  # warm-ups, scales
finite_float = number(float)
unit_float = number(float, lo=0, hi=1)  # probabilities, DDIM eta


def parse_names(text: str) -> list[str]:
    """argparse type for comma-separated names, e.g. ``--networks patchwise,joint`` (empty items dropped;
    the command checks the names)."""
    return [x for x in text.split(",") if x]


# tasks: the registry (fullscale.tasks.registry, standard library only: cheap at start-up) is the one list
def task_choices() -> tuple:
    """Every registered task's name (A, B, C, D and any registered task), for metavars and defaults."""
    from fullscale.tasks import registry

    return registry.names()


def task_metavar() -> str:
    return "|".join(task_choices())


def paper_tasks() -> tuple:
    """The rules paper's own tasks (A-D, the registry's built-in ones): the authors' evaluator covers only these."""
    from fullscale.tasks import registry

    return tuple(registry.BUILTIN)


def task_name(text: str) -> str:
    """argparse type for ``--task``: a registered task's name (case-insensitive), else one line naming the choices."""
    from fullscale.tasks import registry

    try:
        return registry.canonical(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def task_names(text: str) -> list[str]:
    """argparse type for ``--tasks A,C``: comma-separated registered task names (at least one)."""
    from fullscale.tasks import registry

    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"give at least one task, e.g. {','.join(registry.names())}")
    try:
        return [registry.canonical(x) for x in items]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
