"""dmrules: what diffusion models learn, in theory and simulation.

This package is the command line only (``dmrules ...`` / ``python -m dmrules ...``) plus the small
shared helpers for writing results (:mod:`dmrules.results`). The science lives in the four packages
``theory`` (maths, no I/O), ``sims`` (two-layer networks), ``fullscale`` (pixel-space DDPMs on
Tasks A-D) and ``reports`` (figures, tables, REPORT.md).
"""

__version__ = "0.1.0"


class UsageError(ValueError):
    """Bad input from the user: the CLI prints the message on one line and exits with code 2."""
