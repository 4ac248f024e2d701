"""The ``dmrules`` command: parses arguments and dispatches, nothing else.

Every subcommand lives in its own module under :mod:`dmrules.commands` and exposes
``register(subparsers)``, which adds its parser(s) and sets ``func`` to a handler. Command modules
import only the standard library at module level (heavy packages such as torch are imported inside
the handlers), so ``dmrules --help`` and ``dmrules data`` start fast.

Errors: a bad flag or value prints one line on stderr and exits 2 (no traceback). Handlers signal
bad input by raising :class:`dmrules.UsageError` (or ``ValueError`` from a config check). Output
options (``--out``, ``--work``, ``--export``) are checked before any work, and ``--out`` is locked
for the command's duration (one writer per output, :func:`dmrules.results.lock`). An OS error while
working (disk full, read-only file system, ...) is one line naming the path, exit 1; a closed pipe
(``| head``) ends quietly. Set ``DMRULES_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> module under dmrules.commands that registers it; the order is the order in --help.
COMMAND_MODULES = ("theory", "sims", "data", "ddpm", "mitigate", "sweep", "ceiling", "baseline")

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


# output options checked before any work (issue 12): name -> kind (None: by suffix, F.parquet is a file)
OUTPUT_OPTIONS = {"out": None, "work": "dir", "export": "dir"}


def _check_outputs(args) -> str | None:
    """Check every output option before the work starts; returns the ``--out`` to lock (or None)."""
    from dmrules import results as R

    for name, kind in OUTPUT_OPTIONS.items():
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            R.check_output(value, kind, flag=f"--{name}")
    out = getattr(args, "out", None)
    # one writer per output; under torchrun only rank 0 writes (and locks)
    return out if isinstance(out, str) and out and os.environ.get("RANK", "0") == "0" else None


def _missing_action(args, parser) -> int:
    group = getattr(args, "_parser", None)
    if group is None or args.command is None:  # `dmrules` alone: the overview on stdout
        parser.print_help()
        return 0
    actions = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
    names = ", ".join(actions[0].choices) if actions else "?"
    sys.stderr.write(f"{group.prog}: error: choose an action: {names} (see {group.prog} --help)\n")
    return 2


def _one_line(args, message: str) -> None:
    prog = getattr(args, "_prog", "dmrules")
    sys.stderr.write(f"{prog}: error: {' '.join(message.split())}\n")


def _os_message(exc: OSError) -> str:
    from dmrules.results import WriteError

    if isinstance(exc, WriteError):
        return str(exc)
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {exc.strerror}" if where and exc.strerror else (str(exc) or exc.__class__.__name__)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `dmrules ... --json | head`: the reader left; stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell tool killed by the broken pipe


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        return _missing_action(args, parser)
    debug = os.environ.get("DMRULES_DEBUG", "") not in ("", "0")
    try:
        out = _check_outputs(args)
        if out is None:
            rc = args.func(args)
        else:
            from dmrules import results as R

            with R.lock(out, what="--out"):
                rc = args.func(args)
    except ValueError as exc:  # includes dmrules.UsageError
        if debug:
            raise
        _one_line(args, str(exc) or exc.__class__.__name__)
        return 2
    except BrokenPipeError:
        raise
    except OSError as exc:  # disk full, read-only, permission denied ...: one line naming the path, exit 1
        if debug:
            raise
        _one_line(args, _os_message(exc))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: re-run the same command to resume where it stopped\n")
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
