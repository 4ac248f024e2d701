"""The feature-learning paper's claims (arXiv 2412.01021), small scale, CPU.

Protocol of spec §7 (d = 1000, sigma_xi = 0.05, sigma0 = 0.01, m = 20, alpha = 0.8, beta = 0.6),
fewer models and steps. Every threshold below is a statement of the paper (or of ``theory.growth``)
that a wrong model, a wrong loss or a wrong metric would break.
"""

import math

import pandas as pd
import pytest

from sims import analysis, fl

N_SNR2 = (0.1, 0.3, 0.75, 2.0, 6.75, 20.0)


def _grid(objective, ns, values, seeds=(0,)):
    return [fl.FLModel(objective, n, math.sqrt(v / n), s) for n in ns for v in values for s in seeds]


@pytest.fixture(scope="module")
def pair():
    """Both objectives at n = 30 across n·SNR² (the Figure 2 setting plus neighbours), trained."""
    dif = fl.train_group(_grid("diffusion", (30,), N_SNR2, (0, 1)), fl.DiffusionSetup(lr=0.05, steps=1500), n_log=12)
    cls = fl.train_group(_grid("classification", (30,), N_SNR2, (0, 1)),
                         fl.ClassificationSetup(lr=20.0, steps=600, n_test=300), n_log=12)
    df = pd.DataFrame(dif + cls)
    df["n_snr2"] = df.n_snr2.round(6)
    pm = analysis.per_model(df)
    return df, pm.groupby(["objective", "n_snr2"], as_index=False)[
        ["final_ratio", "signal", "noise", "test_acc"]].mean()


def test_dsm_early_growth_rate_slope_matches_theory():
    """Early growth-rate ratio (exact expected gradient: step 1 of GD on the closed form) is
    n·SNR²/2 (theory.growth): log-log slope in [0.8, 1.2] over three n and six n·SNR²."""
    models = _grid("diffusion", (8, 16, 32), N_SNR2)
    df = pd.DataFrame(fl.train_group(models, fl.DiffusionSetup(lr=0.05, steps=2), n_log=4))
    s = analysis.slopes(df, "diffusion")
    assert 0.8 <= s["early"]["slope"] <= 1.2, s
    assert abs(s["early"]["slope"] - s["theory"]["slope"]) < 0.1, s
    assert 0.85 <= s["early_over_theory_median"] <= 1.15, s
    lo, hi = s["early_over_theory_range"]
    assert 0.6 < lo and hi < 1.6, s  # every single model, not only the fit


def test_dsm_learns_both_features_and_ratio_rises(pair):
    df, g = pair
    d = g[g.objective == "diffusion"].set_index("n_snr2")
    init = df[(df.objective == "diffusion") & (df.step == 0)].groupby("n_snr2")[["signal", "noise"]].mean()
    # both features are learned: each alignment grows several-fold over its initial value ...
    assert (d.signal > 3 * init.signal).all() and (d.noise > 3 * init.noise).all()
    # ... and the final signal/noise ratio rises with n·SNR² (monotone in the mean over seeds)
    assert d.final_ratio.is_monotonic_increasing
    # balanced: over a 9x step in n·SNR² (Figure 2's 0.75 -> 6.75) the ratio moves by less than 9x
    assert 1.5 < d.final_ratio[6.75] / d.final_ratio[0.75] < 9


def test_classification_transition_is_sharp_near_n_snr2_of_one(pair):
    _, g = pair
    c = g[g.objective == "classification"].set_index("n_snr2")
    d = g[g.objective == "diffusion"].set_index("n_snr2")
    # noise memorisation below n·SNR² ~ 1: noise alignment dominates, chance-level generalisation
    for v in (0.1, 0.3, 0.75):
        assert c.final_ratio[v] < 0.05 and c.noise[v] > 1.0, c.loc[v]
        assert c.test_acc[v] < 0.8
    # signal learning above: the signal dominates, the test set is classified
    for v in (6.75, 20.0):
        assert c.final_ratio[v] > 10 and c.signal[v] > 1.0, c.loc[v]
        assert c.test_acc[v] > 0.97
    # winner-take-all: across 0.75 -> 6.75 classification jumps by > 100x, diffusion by < 10x
    assert c.final_ratio[6.75] / c.final_ratio[0.75] > 100
    assert d.final_ratio[6.75] / d.final_ratio[0.75] < 10


def test_transition_point_from_a_grid():
    models = _grid("classification", (10, 40), (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0))
    df = pd.DataFrame(fl.train_group(models, fl.ClassificationSetup(lr=20.0, steps=600, n_test=50), n_log=6))
    tr = analysis.transition(df)
    # the switch lies between n·SNR² = 0.5 and 8 (theory: ~1 up to constants and logs; this law's
    # rate ratio is n·SNR²/2, see theory.growth), and it is sharp (a fraction of a decade)
    assert 0.5 < tr["point"] < 8, tr
    assert tr["width"] < 0.5, tr
