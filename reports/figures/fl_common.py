"""Shared inputs of the feature-learning figures (``fl_*``): the sims tables they read.

Nothing is trained here; the tables come from ``dmrules sims fl`` / ``dmrules sims digits``
(quick preset for ``make figures``, paper preset for ``make figures-full``, both CPU-sized).
"""

from __future__ import annotations

from reports.pipeline import Result

# paper presets: ~45 min (FL) on one CPU core, minutes on a GPU; digits stays CPU-sized
FL = Result("sims_fl", {"default": ["sims", "fl", "--preset", "quick"], "full": ["sims", "fl", "--preset", "paper"]})
DIGITS = Result("sims_digits", {"default": ["sims", "digits", "--preset", "quick"],
                                "full": ["sims", "digits", "--preset", "paper"]}, needs_gpu_for=())
OBJECTIVES = ("diffusion", "classification")


def load(path):
    """The table, with n·SNR² rounded (it is computed as n·SNR² from a rounded SNR)."""
    from dmrules.core.results import read_table

    df = read_table(path)
    df["n_snr2"] = df["n_snr2"].round(4)
    df["ratio"] = df["signal"] / df["noise"]
    return df


def per_model(df):
    from sims.analysis import per_model as pm

    return pm(df)
