"""The two data laws: sampling, exact scores and posterior means (theory.distributions, theory.zeta)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from theory import RulePatches, TwoPatchSignalNoise, ZetaLaw
from theory.montecarlo import posterior_mean_is, score_is

DISCRETE = {"support": [0.2, 0.5, 0.9], "weights": [1.0, 2.0, 1.0]}
LAWS = {  # name -> factory(d)
    "fl": lambda d=5: TwoPatchSignalNoise(d, 1.5, 0.6, seed=1),
    "rules-uniform": lambda d=5: RulePatches(d, "uniform", seed=2),
    "rules-discrete": lambda d=5: RulePatches(d, DISCRETE, seed=3),
}


def _noised(dist, n, t, gen):
    x0 = dist.sample(n, generator=gen)
    a, b = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    return a * x0 + b * torch.randn(x0.shape, generator=gen, dtype=torch.float64)


# ---- sampling and attributes ---------------------------------------------------------------------------
def test_two_patch_law_attributes_and_samples(gen):
    dist = TwoPatchSignalNoise(40, 2.0, 0.5, seed=7)
    assert dist.mu.shape == (2, 40) and dist.mu.dtype == torch.float64
    assert torch.allclose(dist.mu.norm(dim=1), torch.full((2,), 2.0, dtype=torch.float64))
    assert abs(dist.mu[0] @ dist.mu[1]) < 1e-12
    assert dist.snr == pytest.approx(2.0 / (0.5 * math.sqrt(40)))
    x, lat = dist.sample(4000, generator=gen, return_latents=True)
    assert x.shape == (4000, 80) and x.dtype == torch.float64
    y, xi = lat["y"], lat["xi"]
    assert y.dtype == torch.long and set(y.unique().tolist()) == {-1, 1}
    assert abs((y > 0).double().mean().item() - 0.5) < 0.03
    assert torch.equal(x[y > 0, :40], dist.mu[0].expand(int((y > 0).sum()), 40))
    assert torch.equal(x[:, 40:], xi)
    assert (xi @ dist.mu.T).abs().max() < 1e-12  # xi ⊥ mu
    # E||xi||^2 = sigma^2 (d - 2)
    assert (xi**2).sum(1).mean().item() == pytest.approx(0.25 * 38, rel=0.02)


def test_rules_law_attributes_and_samples(gen):
    dist = RulePatches(10, DISCRETE, seed=1)
    assert dist.u.norm().item() == pytest.approx(1) and dist.v.norm().item() == pytest.approx(1)
    assert abs(dist.u @ dist.v) < 1e-12
    assert dist.zeta_mean == pytest.approx(0.2 * 0.25 + 0.5 * 0.5 + 0.9 * 0.25)
    x, lat = dist.sample(3000, generator=gen, return_latents=True)
    z = lat["zeta"]
    assert set(np.round(z.unique().numpy(), 12)) == {0.2, 0.5, 0.9}
    # the hidden rule: ||x(1)|| + ||x(2)|| = 1
    assert torch.allclose(x[:, :10].norm(dim=1) + x[:, 10:].norm(dim=1), torch.ones(3000, dtype=torch.float64))
    assert RulePatches(3).zeta_mean == 0.5


def test_same_seed_same_law_and_samples():
    a, b = RulePatches(6, seed=5), RulePatches(6, seed=5)
    assert torch.equal(a.u, b.u) and not torch.equal(a.u, RulePatches(6, seed=6).u)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(TwoPatchSignalNoise(6, 1, 1, 2).sample(5, g1), TwoPatchSignalNoise(6, 1, 1, 2).sample(5, g2))


# ---- scores: closed form vs autograd of the exact log-density -------------------------------------------
@pytest.mark.parametrize("name", sorted(LAWS))
@pytest.mark.parametrize("t", [0.003, 0.1, 1.0, 6.0])
def test_score_matches_autograd_of_log_density(name, t, gen):
    dist = LAWS[name]()
    x = _noised(dist, 64, t, gen).requires_grad_(True)
    (auto,) = torch.autograd.grad(dist.log_prob(x, t).sum(), x)
    closed = dist.score(x.detach(), t)
    rel = ((closed - auto).norm(dim=1) / auto.norm(dim=1)).max().item()
    assert rel < 1e-8


def test_two_patch_log_density_against_dense_gaussian(gen):
    dist, t = TwoPatchSignalNoise(6, 1.3, 0.8, seed=0), 0.4
    a, b = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x = _noised(dist, 20, t, gen)
    P = dist.mu.T @ torch.linalg.pinv(dist.mu.T)  # projection onto span(mu), computed densely
    cov = b**2 * torch.eye(6, dtype=torch.float64) + a**2 * 0.64 * (torch.eye(6, dtype=torch.float64) - P)
    noise = torch.distributions.MultivariateNormal(torch.zeros(6, dtype=torch.float64), cov).log_prob(x[:, 6:])
    comps = torch.stack([torch.distributions.MultivariateNormal(a * mu, b**2 * torch.eye(6, dtype=torch.float64)).log_prob(x[:, :6])
                         for mu in dist.mu])
    ref = torch.logsumexp(comps, 0) - math.log(2) + noise
    assert torch.allclose(dist.log_prob(x, t), ref, rtol=1e-12, atol=1e-10)


def test_rules_uniform_log_density_against_scipy_quadrature(gen):
    dist, t = RulePatches(3, seed=0), 0.2
    a, b = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x = _noised(dist, 5, t, gen)
    for row, lp in zip(x, dist.log_prob(x, t)):
        def dens(z):
            x0 = torch.cat([z * dist.u, (1 - z) * dist.v])
            return math.exp(-((row - a * x0) ** 2).sum().item() / (2 * b**2)) / (2 * math.pi * b**2) ** 3
        assert math.log(integrate.quad(dens, 0, 1, epsabs=0, epsrel=1e-12)[0]) == pytest.approx(lp.item(), rel=1e-9)


def test_per_sample_times_and_float32(gen):
    dist = RulePatches(4, seed=0)
    x = _noised(dist, 6, 0.3, gen)
    t = torch.tensor([0.05, 0.1, 0.3, 0.3, 1.0, 2.0], dtype=torch.float64)
    per = dist.score(x, t)
    for i in range(6):
        assert torch.allclose(per[i], dist.score(x[i:i + 1], t[i].item())[0], rtol=1e-13)
    s32 = dist.score(x.float(), 0.3)
    assert s32.dtype == torch.float32 and torch.allclose(s32.double(), dist.score(x, 0.3), rtol=1e-4, atol=1e-4)


# ---- scores and posterior means vs Monte Carlo ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAWS))
@pytest.mark.parametrize("t", [0.05, 0.5])
def test_posterior_mean_and_score_vs_importance_sampling(name, t, gen):
    dist = LAWS[name](4)  # importance sampling with prior proposals needs a small d
    x = _noised(dist, 12, t, gen)
    mean, se, ess = posterior_mean_is(dist, x, t, 100_000, gen)
    keep = ess > 500
    assert keep.sum() >= 8
    floor = 1e-9 * (1 + mean.abs())
    z = ((dist.posterior_mean(x, t) - mean).abs() / (se**2 + floor**2).sqrt())[keep]
    assert z.max() < 5
    score, sse, _ = score_is(dist, x, t, 100_000, gen)
    rel = ((dist.score(x, t) - score).norm(dim=1) / dist.score(x, t).norm(dim=1))[keep]
    assert rel.max() < 0.05


def test_tweedie_link_and_posterior_regression(gen):
    """score = (alpha E[x0|x] - x)/beta^2, and E[x0|x_t] minimises the regression error on (x0, x_t) pairs."""
    dist, t = TwoPatchSignalNoise(4, 1.0, 0.7, seed=4), 0.3
    a, b = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x0 = dist.sample(200_000, gen)
    xt = a * x0 + b * torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    pm = dist.posterior_mean(xt, t)
    assert torch.allclose(dist.score(xt[:10], t), (a * pm[:10] - xt[:10]) / b**2, rtol=1e-12, atol=1e-12)
    # orthogonality of the residual to functions of x_t (here: x_t itself and the posterior mean)
    resid = x0 - pm
    for f in (xt, pm):
        corr = (resid * f).sum(1).mean() / (resid.norm(dim=1) * f.norm(dim=1)).mean()
        assert abs(corr.item()) < 0.01
    worse = x0 - 1.05 * pm  # any other function of x_t does worse
    assert (resid**2).sum(1).mean() < (worse**2).sum(1).mean()


# ---- the zeta posterior ---------------------------------------------------------------------------------------
def test_uniform_zeta_posterior_against_scipy_truncnorm_in_the_tails():
    centre = torch.tensor([-80.0, -8.0, -0.3, 0.0, 0.5, 0.97, 1.2, 6.0, 120.0], dtype=torch.float64)
    scale = torch.tensor([0.5, 0.4, 0.01, 0.2, 30.0, 0.003, 0.1, 1.0, 3.0], dtype=torch.float64)
    ours = ZetaLaw().posterior_mean(centre, scale).numpy()
    c, s = centre.numpy(), scale.numpy()
    ref = stats.truncnorm.mean(-c / s, (1 - c) / s, loc=c, scale=s)
    assert np.max(np.abs(ours - ref)) < 1e-9
    assert np.all((ours >= 0) & (ours <= 1))


def test_discrete_zeta_posterior_is_a_softmax():
    law = ZetaLaw.from_spec(DISCRETE)
    c, s = torch.tensor([0.1, 0.55, 2.0], dtype=torch.float64), torch.tensor([0.3, 0.05, 1.0], dtype=torch.float64)
    sup, w = np.array(DISCRETE["support"]), np.array(DISCRETE["weights"]) / 4
    for ci, si, got in zip(c.numpy(), s.numpy(), law.posterior_mean(c, s).numpy()):
        p = w * np.exp(-((sup - ci) ** 2) / (2 * si**2))
        assert got == pytest.approx(np.sum(p * sup) / np.sum(p), rel=1e-12)


def test_zeta_law_specs():
    assert ZetaLaw.from_spec("uniform") == ZetaLaw()
    assert ZetaLaw.from_spec("0.2,0.8") == ZetaLaw("discrete", (0.2, 0.8), (0.5, 0.5))
    assert ZetaLaw.from_spec("0.2,0.8:1,3").weights == (0.25, 0.75)
    assert ZetaLaw.from_spec({"support": [0.1, 0.4], "weights": [0, 1]}).support == (0.4,)


# ---- bad input ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: TwoPatchSignalNoise(1, 1.0, 1.0), "d must be"),
    (lambda: TwoPatchSignalNoise(2.5, 1.0, 1.0), "d must be"),
    (lambda: TwoPatchSignalNoise(5, 0.0, 1.0), "mu_norm"),
    (lambda: TwoPatchSignalNoise(5, 1.0, -1.0), "sigma_xi"),
    (lambda: TwoPatchSignalNoise(5, 1.0, float("nan")), "sigma_xi"),
    (lambda: RulePatches(1), "d must be"),
    (lambda: RulePatches(4, "gaussian"), "unknown zeta law"),
    (lambda: RulePatches(4, {"support": [0.2, 1.3], "weights": [1, 1]}), r"\[0, 1\]"),
    (lambda: RulePatches(4, {"support": [0.2, 0.3], "weights": [1]}), "as many weights"),
    (lambda: RulePatches(4, {"support": [0.2], "weights": [-1]}), "weights"),
    (lambda: RulePatches(4, {"values": [0.2]}), "support"),
    (lambda: RulePatches(4, 3.0), "unknown zeta law"),
])
def test_bad_construction_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", sorted(LAWS))
def test_bad_calls_raise(name):
    dist = LAWS[name]()
    x = torch.zeros(3, 10, dtype=torch.float64)
    for fn in (dist.score, dist.posterior_mean, dist.log_prob):
        with pytest.raises(ValueError, match="OU time"):
            fn(x, 0.0)
        with pytest.raises(ValueError, match="OU time"):
            fn(x, torch.tensor([0.1, -1.0, 0.2]))
        with pytest.raises(ValueError, match="shape"):
            fn(torch.zeros(3, 9), 0.1)
        with pytest.raises(ValueError, match="shape"):
            fn(x, torch.ones(4))
    with pytest.raises(ValueError, match="positive integer"):
        dist.sample(0)
