"""Noisy-Digits (sklearn 8x8 digits + a Gaussian patch): data law and the qualitative claim."""

import pandas as pd
import pytest
import torch

from sims import analysis, digits, fl


def test_digits_data_law():
    model = digits.DigitsModel("classification", 30, 0.4, 0, d=digits.DIM, sigma_xi=0.2, classes=(3, 8))
    dat = model.data(n_test=50)
    assert dat["patches"].shape == (60, 64) and dat["index"].shape == (30, 2)
    sig = dat["patches"][dat["index"][:, 0]]
    torch.testing.assert_close(sig.norm(dim=1), torch.full((30,), model.mu_norm, dtype=torch.float64))
    assert set(dat["y"].tolist()) <= {-1, 1} and set(dat["y_test"].tolist()) <= {-1, 1}
    # held-out digits are not training digits
    test_sig = dat["test_patches"][dat["test_index"][:, 0]]
    assert torch.cdist(sig, test_sig).min() > 0
    # the noise patch has the advertised scale: E||xi||^2 = sigma^2 d
    assert abs(dat["xi"].square().sum(1).mean().item() / (0.2**2 * 64) - 1) < 0.2
    assert model.mu_norm == pytest.approx(0.4 * 0.2 * 8)
    # same seed, same data
    torch.testing.assert_close(model.data()["patches"], dat["patches"])


def test_noisy_digits_classification_switches_and_diffusion_learns_both():
    sweep = digits.DigitsSweep(ns=(40,), snrs=(0.05, 0.7), seeds=(0, 1),
                               diffusion=fl.DiffusionSetup(lr=0.05, steps=1500),
                               classification=fl.ClassificationSetup(lr=20.0, steps=600, n_test=200))
    rows = []
    for obj in sweep.objectives:
        rows += fl.train_group(sweep.models(obj), sweep.setup(obj), n_log=8)
    pm = analysis.per_model(pd.DataFrame(rows))
    g = pm.groupby(["objective", "snr"]).mean(numeric_only=True)
    c_lo, c_hi = g.loc[("classification", 0.05)], g.loc[("classification", 0.7)]
    assert c_lo.final_ratio < 0.1 and c_hi.final_ratio > 2  # noise memorised vs digit learned
    assert c_hi.test_acc > 0.95 and c_lo.test_acc < c_hi.test_acc
    d_lo, d_hi = g.loc[("diffusion", 0.05)], g.loc[("diffusion", 0.7)]
    assert d_hi.final_ratio > 5 * d_lo.final_ratio  # rises with SNR ...
    assert d_lo.signal > 0 and d_lo.noise > 0 and d_hi.noise > 0.1 * d_lo.noise  # ... both still learned


def test_build_sweep_validates():
    from dmrules import UsageError
    from sims.experiments import build_digits_sweep

    base = digits.DigitsSweep()
    with pytest.raises(UsageError, match="two different digits"):
        build_digits_sweep(base, classes=[3, 3])
    with pytest.raises(UsageError, match="every n"):
        build_digits_sweep(base, ns=[5000])
    with pytest.raises(UsageError, match="SNR"):
        build_digits_sweep(base, snrs=[0.0])
