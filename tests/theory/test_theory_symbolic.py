"""The sympy derivations behind the numeric code (theory.symbolic): each claim simplifies to 0."""

import numpy as np
import pytest
import sympy as sp
import torch

from theory import RulePatches, symbolic


@pytest.mark.parametrize("derivation", symbolic.ALL, ids=lambda f: f.__name__)
def test_derivation_is_proved(derivation):
    d = derivation()
    assert d.proved, f"{d.name}: residual {d.residual}"


def test_rule_identity_star_is_proved_symbolically():
    d = symbolic.rule_identity()
    assert d.proved and sp.simplify(d.residual) == 0


def test_a_wrong_claim_is_not_proved():
    """The machinery can fail: the posterior with the wrong variance s^2 = beta^2/alpha^2 is rejected."""
    E = symbolic._rules_exponent()
    wrong = sp.diff(E + (symbolic.zeta - symbolic.M_RULES) ** 2 / (2 * symbolic.beta**2 / symbolic.alpha**2), symbolic.zeta)
    assert symbolic.Derivation("wrong", "", symbolic._zero(wrong)).proved is False
    # and an off-by-two Stein identity is rejected too
    q, g = sp.Symbol("q", positive=True), sp.Symbol("g", real=True)
    lhs = symbolic._gauss_expect((symbolic.alpha * symbolic.c + symbolic.beta * sp.sqrt(q) * g) ** 2 * sp.sqrt(q) * g, [g])
    assert sp.simplify(lhs - symbolic.alpha * symbolic.beta * symbolic.c * q) != 0


def test_numeric_posterior_equals_lambdified_symbolic(gen):
    """theory.distributions (stable torch) against the lambdified sympy closed forms."""
    post = symbolic.rules_posterior()
    mean = symbolic.rules_uniform_posterior().numeric["posterior_mean"]
    score_ab = symbolic.rules_uniform_score().numeric["score_ab"]
    dist, t = RulePatches(3, seed=0), 0.3
    alpha, beta = np.exp(-t), np.sqrt(-np.expm1(-2 * t))
    x = alpha * dist.sample(50, gen) + beta * torch.randn(50, 6, generator=gen, dtype=torch.float64)
    a, b = (x[:, :3] @ dist.u).numpy(), (x[:, 3:] @ dist.v).numpy()
    m, s = post.numeric["m"](a, b, alpha), post.numeric["s"](alpha, beta)
    assert np.allclose(dist.zeta_posterior_mean(x, t).numpy(), mean(m, s), rtol=1e-11)
    sa, sb = score_ab(a, b, alpha, beta)
    score = dist.score(x, t)
    assert np.allclose((score[:, :3] @ dist.u).numpy(), sa, rtol=1e-10)
    assert np.allclose((score[:, 3:] @ dist.v).numpy(), sb, rtol=1e-10)


def test_growth_ratio_lambdified():
    from theory import FeatureLearningSetup, diffusion_growth_ratio

    f = symbolic.growth_ratio().numeric["ratio"]
    cfg = FeatureLearningSetup(30, 1000, 0.25, 0.05)
    snr = cfg.mu_norm / (cfg.sigma_xi * np.sqrt(cfg.d))
    assert diffusion_growth_ratio(cfg) == pytest.approx(f(cfg.n, cfg.d, snr), rel=1e-12)
