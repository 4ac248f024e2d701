"""The ``dmrules`` command: parses arguments and dispatches, nothing else.

Every subcommand lives in its own module under :mod:`dmrules.commands` and exposes
``register(subparsers)``, which adds its parser(s) and sets ``func`` to a handler. Command modules
import only the standard library at module level (heavy packages such as torch are imported inside
the handlers), so ``dmrules --help`` and ``dmrules data`` start fast.

Errors: a bad flag or value prints one line on stderr and exits 2 (no traceback). Handlers signal
bad input by raising :class:`dmrules.UsageError` (or ``ValueError`` from a config check). Set
``DMRULES_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> module under dmrules.commands that registers it; the order is the order in --help.
COMMAND_MODULES = ("theory", "sims", "data", "ddpm", "mitigate")

DESCRIPTION = """\
dmrules: theory and simulation toolkit for what diffusion models learn.

Run `dmrules COMMAND --help` for each command's options. `make figures` regenerates every figure.
"""


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def build_parser() -> Parser:
    parser = Parser(
        prog="dmrules",
        description=DESCRIPTION,
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=24, width=100),
    )
    from dmrules import __version__

    parser.add_argument("--version", action="version", version=f"dmrules {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"dmrules.commands.{name}")
        except ModuleNotFoundError as exc:  # a command group not written yet
            if exc.name != f"dmrules.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        # `dmrules` or `dmrules theory` with no action: show the relevant help.
        (getattr(args, "_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    debug = os.environ.get("DMRULES_DEBUG", "") not in ("", "0")
    try:
        rc = args.func(args)
    except ValueError as exc:  # includes dmrules.UsageError
        if debug:
            raise
        prog = getattr(args, "_prog", "dmrules")
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        sys.stderr.write(f"{prog}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: re-run the same command to resume where it stopped\n")
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
