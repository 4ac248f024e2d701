"""The locality ladder's theory rung (theory.sampling): the rules law sampled with the exact and the
DSM-optimal patch-wise score."""

from __future__ import annotations

import math

import pytest
import torch

from theory import RulePatches, patchwise_optimum
from theory import sampling as S


def test_timesteps_match_the_fullscale_sampler():
    from fullscale.diffusion import ddim_timesteps

    for steps in (1, 2, 10, 100, 999):
        assert S.ddim_timesteps(steps) == ddim_timesteps(steps)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sampler_reproduces_a_gaussian_law(eta):
    """N(m, sigma^2) data with its exact score: the samples have the law's mean and variance (999 steps;
    at 50 steps DDIM's discretisation shrinks the std to 0.28 / 0.25 for eta 0 / 1, measured)."""
    m, sig = 0.7, 0.3

    def score(x, t):
        a, b2 = math.exp(-t), -math.expm1(-2 * t)
        return -(x - a * m) / (a * a * sig * sig + b2)

    gen = torch.Generator().manual_seed(0)
    x = S.reverse_sample(score, torch.randn(20000, 1, generator=gen, dtype=torch.float64), steps=999, eta=eta,
                         generator=gen)
    assert abs(float(x.mean()) - m) < 0.015  # 5 standard errors of the mean
    assert abs(float(x.std()) - sig) < 0.01


def test_exact_score_samples_obey_the_rule_and_the_law():
    law = RulePatches(3)
    x = S.sample_rules(law, 2000, "exact", steps=100, eta=0.0, seed=1)
    summ = S.rule_summary(x, 3)
    assert summ["residual_abs_mean"] < 1e-12 and summ["within_005"] == 1.0
    assert summ["r2"] > 0.999999 and abs(summ["slope"] + 1) < 1e-9
    assert summ["ks_uniform"] < 0.05  # ||x(1)|| = zeta ~ Uniform[0, 1] (KS 5 % critical value ~0.03)


def test_patchwise_score_samples_violate_the_rule():
    law = RulePatches(3)
    x = S.sample_rules(law, 2000, "patchwise", steps=100, eta=1.0, seed=1)
    summ = S.rule_summary(x, 3)
    assert summ["residual_std"] > 0.02 and summ["within_005"] < 0.95
    assert summ["r2"] < 0.99
    # the DSM-optimal patch-wise score is each patch's marginal score, so the sampler draws the product
    # of the marginals: ||x(1)|| and ||x(2)|| independent Uniform[0, 1], r = zeta1 - zeta2 with std
    # sqrt(1/6) = 0.408 and no linear relation (docs/baselines.md; at 100 steps DDIM gives 0.38-0.40)
    assert abs(summ["residual_std"] - math.sqrt(1 / 6)) < 0.05 and abs(summ["slope"]) < 0.15
    # the last step's output is [E[zeta|a] u, (1 - E[zeta|b]) v]: both norms in [0, 1]
    n1, n2 = x[:, :3].norm(dim=1), x[:, 3:].norm(dim=1)
    assert float(n1.max()) <= 1 + 1e-12 and float(n2.max()) <= 1 + 1e-12


def test_patchwise_residual_is_the_last_step_posterior_gap():
    """One step from x_t returns E[zeta|a] - E[zeta|b] as the residual (the docstring's formula)."""
    law = RulePatches(2)
    gen = torch.Generator().manual_seed(3)
    xt = torch.randn(500, 4, generator=gen, dtype=torch.float64)
    x0 = S.reverse_sample(S.score_of(law, "patchwise"), xt, steps=1)
    t = -0.5 * math.log(float(__import__("theory").ddpm_schedule().alpha_bar[999]))
    alpha, beta = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    ref = (xt + beta**2 * patchwise_optimum(xt, t, law.u, law.v)) / alpha
    assert torch.allclose(x0, ref, atol=1e-12)


def test_bad_arguments():
    law = RulePatches(2)
    with pytest.raises(ValueError):
        S.sample_rules(law, 0)
    with pytest.raises(ValueError):
        S.sample_rules(law, 4, score="joint")
    with pytest.raises(ValueError):
        S.sample_rules(law, 4, steps=1000)
    with pytest.raises(ValueError):
        S.reverse_sample(law.score, torch.zeros(2, 4), eta=2.0)
    with pytest.raises(ValueError):
        S.rule_residual(torch.zeros(2, 5), 2)
