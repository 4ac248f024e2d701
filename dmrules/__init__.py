"""dmrules: what diffusion models learn, in theory and simulation.

This package is the command line (``dmrules ...`` / ``python -m dmrules ...``: ``dmrules.cli`` and
``dmrules.commands``, parsing and dispatch only) and, below it, the ground floor :mod:`dmrules.core`
(results I/O with provenance, locks, named random streams, the resumable loop), which imports none
of the science packages (``dmrules.results`` and ``dmrules.locks`` are the same modules under their
old names). The science lives in the four packages
``theory`` (maths, no I/O), ``sims`` (two-layer networks), ``fullscale`` (pixel-space DDPMs on
Tasks A-D) and ``reports`` (figures, tables, REPORT.md).
"""

__version__ = "0.1.0"


class UsageError(ValueError):
    """Bad input from the user: the CLI prints the message on one line and exits with code 2."""
