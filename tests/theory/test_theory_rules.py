"""psi_t, the rule-conforming error and the patch-wise constant L_t (theory.rules; our reconstruction)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import ndtr

from theory import (RulePatches, bound, bound_class, bound_mc, dsm_gap_constant_vs_optimum, patchwise_optimum, psi,
                    rule_error)
from theory import rules as R

T = [0.05, 0.1, 1.0]


def _noised(dist, n, t, gen):
    x0 = dist.sample(n, generator=gen)
    a, b = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    return a * x0 + b * torch.randn(x0.shape, generator=gen, dtype=torch.float64)


# ---- psi and the error decomposition ----------------------------------------------------------------------
@pytest.mark.parametrize("zeta", ["uniform", "0.1,0.4,0.95:2,1,1"])
def test_exact_score_conforms(zeta, gen):
    dist, t = RulePatches(5, zeta, seed=0), 0.2
    x = _noised(dist, 500, t, gen)
    values = psi(dist.score, x, t, dist.u, dist.v)
    target = math.exp(-t) / -math.expm1(-2 * t)
    assert torch.allclose(values, torch.full_like(values, target), rtol=1e-12)
    assert rule_error(dist.score, t, x=x, u=dist.u, v=dist.v).total_scaled < 1e-24


def test_rule_error_decomposition():
    t = 0.3
    target = math.exp(-t) / -math.expm1(-2 * t)
    values = torch.tensor([target + 1.0, target - 0.5, target + 2.0, target + 0.5], dtype=torch.float64)
    e = rule_error(values, t)
    assert e.bias2 == pytest.approx(0.75**2) and e.variance == pytest.approx(values.var(unbiased=False).item())
    assert e.total == pytest.approx(((values - target) ** 2).mean().item(), rel=1e-12)
    assert e.total_scaled == pytest.approx(e.total / target**2)
    assert e.bias2_scaled + e.variance_scaled == pytest.approx(e.total_scaled)
    with pytest.raises(ValueError, match="one OU time"):
        rule_error(values, [0.1, 0.2])
    with pytest.raises(ValueError, match="needs samples"):
        rule_error(lambda x, t: x, t)


def test_psi_of_a_constant_offset_score(gen):
    """A score that adds c u to the exact one shifts psi by exactly c: the bias is c^2."""
    dist, t = RulePatches(3, seed=1), 0.5
    x = _noised(dist, 50, t, gen)
    shifted = lambda x, t: dist.score(x, t) + 0.7 * torch.cat([dist.u, torch.zeros(3, dtype=torch.float64)])  # noqa: E731
    e = rule_error(shifted, t, x=x, u=dist.u, v=dist.v)
    assert e.bias2 == pytest.approx(0.49, rel=1e-10) and e.variance < 1e-20


# ---- L_t ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("zeta", ["uniform", "0.2,0.5,0.8"])
def test_bound_quadrature_vs_monte_carlo_within_2_percent(zeta):
    q = bound(T, zeta)
    mc, se = bound_mc(T, zeta, n=200_000, seed=11)
    assert np.all(se / mc < 0.005)  # the MC error is well below the 2 % tolerance
    assert np.all(np.abs(mc / q - 1) < 0.02)


def test_bound_against_independent_scipy_quadrature():
    """L_t/(alpha/beta^2)^2 = E[(E[zeta|a] - E[zeta|b])^2], here by nested scipy.integrate.quad over
    (zeta, g) with the textbook truncated-normal mean, independent of the toolkit's code."""
    t = 0.1
    alpha, beta = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    tau = beta / alpha

    def post(c):  # E[zeta | centre c], prior U[0, 1], scale tau: the textbook truncated-normal mean
        if c < 0.5:  # use the lower tail of Phi, where differences keep their digits
            return 1.0 - post(1.0 - c)
        lo, hi = -c / tau, (1 - c) / tau
        return c + tau * (math.exp(-lo * lo / 2) - math.exp(-hi * hi / 2)) / math.sqrt(2 * math.pi) / (ndtr(hi) - ndtr(lo))

    assert post(0.3) == pytest.approx(stats.truncnorm.mean(-0.3 / tau, 0.7 / tau, loc=0.3, scale=tau), rel=1e-12)

    def cond(z):  # E[(G - H)^2 | zeta] = 2 Var(G | zeta) (G, H iid given zeta)
        m1 = integrate.quad(lambda g: post(z + tau * g) * stats.norm.pdf(g), -9, 9, epsabs=1e-12)[0]
        m2 = integrate.quad(lambda g: post(z + tau * g) ** 2 * stats.norm.pdf(g), -9, 9, epsabs=1e-12)[0]
        return 2 * (m2 - m1**2)

    ref = integrate.quad(cond, 0, 1, points=[tau, 1 - tau], epsabs=1e-10, limit=100)[0]
    assert bound(t, scaled=True) == pytest.approx(ref, rel=1e-6)


def test_bound_quadrature_is_converged(monkeypatch):
    coarse = bound([0.01, 0.1, 1.0], "0.2,0.5,0.8", scaled=True), bound([0.01, 0.1, 1.0], scaled=True)
    monkeypatch.setattr(R, "_GL_X", np.polynomial.legendre.leggauss(24)[0])
    monkeypatch.setattr(R, "_GL_W", np.polynomial.legendre.leggauss(24)[1])
    R._scaled_bound_one.cache_clear()  # results are cached per (t, law, degree)
    try:
        fine = bound([0.01, 0.1, 1.0], "0.2,0.5,0.8", scaled=True), bound([0.01, 0.1, 1.0], scaled=True)
    finally:
        R._scaled_bound_one.cache_clear()
    for c, f in zip(coarse, fine):
        assert np.allclose(c, f, rtol=1e-8, atol=0)


def test_bound_units_shapes_and_limits():
    t = np.array([0.001, 0.05, 0.1, 1.0, 5.0])
    scaled, psi_units = bound(t, scaled=True), bound(t)
    k2 = (np.exp(-t) / -np.expm1(-2 * t)) ** 2
    assert np.allclose(psi_units, scaled * k2, rtol=1e-14)
    assert isinstance(bound(0.1), float) and bound([0.1]).shape == (1,)
    assert np.all(scaled > 0)
    # small t: E[zeta|a] - E[zeta|b] ≈ tau (g1 + g2) away from the ends, so scaled L_t ≈ 2 tau^2 (ours)
    tau2 = -np.expm1(-2 * 1e-4) / np.exp(-2e-4)
    assert bound(1e-4, scaled=True) == pytest.approx(2 * tau2, rel=0.05)
    assert bound(1e-4, scaled=True) < 2 * tau2  # the truncation at 0 and 1 only removes variance


def test_bound_matches_two_conditional_variances():
    """Our symmetry identity: L_t/(alpha/beta^2)^2 = 2 E_zeta Var(E[zeta|a] | zeta) (E[H|zeta] = E[G|zeta])."""
    from theory.zeta import ZetaLaw

    for zeta in ("uniform", "0.2,0.5,0.8"):
        law = ZetaLaw.from_spec(zeta)
        for t in (0.05, 1.0):
            alpha, beta = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
            tau = beta / alpha
            z, zw, row, g, gw = R._rule(law, tau)
            G = R._pm(law, z[row] + tau * g, tau)
            e1 = np.bincount(row, gw * G, z.size)
            e2 = np.bincount(row, gw * G**2, z.size)
            assert bound(t, zeta, scaled=True) == pytest.approx(2 * np.sum(zw * (e2 - e1**2)), rel=1e-9)


def test_patchwise_optimum_is_the_conditional_expectation_of_the_exact_score(gen):
    """DSM over patch-wise functions: s_pw(1) = E[s*(1) | x(1)]; checked by binning on a (d = 2)."""
    dist, t = RulePatches(2, seed=0), 0.2
    x = _noised(dist, 400_000, t, gen)
    exact = dist.score(x, t)[:, :2] @ dist.u
    pw = patchwise_optimum(x, t, dist.u, dist.v)[:, :2] @ dist.u
    a = x[:, :2] @ dist.u
    edges = torch.quantile(a, torch.linspace(0.02, 0.98, 15, dtype=torch.float64))
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (a >= lo) & (a < hi)
        assert abs((exact[sel] - pw[sel]).mean().item()) < 4 * (exact[sel] - pw[sel]).std().item() / math.sqrt(sel.sum().item()) + 1e-3


# ---- L_t(F) ---------------------------------------------------------------------------------------------------
def test_bound_class_limits():
    t = [0.05, 0.5]
    assert np.max(bound_class(t, 0, scaled=True)) < 1e-12  # constants conform exactly
    assert np.allclose(bound_class(t, 9, scaled=True), bound(t, scaled=True), rtol=1e-3)
    # odd symmetry of the uniform law: degree 2k projects like degree 2k - 1
    assert np.allclose(bound_class(t, 2, scaled=True), bound_class(t, 1, scaled=True), rtol=1e-9)
    with pytest.raises(ValueError, match="degree"):
        bound_class(0.1, -1)


def test_bound_class_vs_monte_carlo_least_squares(gen):
    """L_t(F) for cubics: fit g, h by least squares on samples (the DSM optimum in F), then measure."""
    t = 0.1
    alpha, beta = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    tau = beta / alpha
    n = 400_000
    z = torch.rand(n, generator=gen, dtype=torch.float64)
    ca = z + tau * torch.randn(n, generator=gen, dtype=torch.float64)  # a / alpha
    cb = z - tau * torch.randn(n, generator=gen, dtype=torch.float64)  # 1 - b / alpha
    # targets: the exact score's projections are E[zeta | a, b]; regress zeta itself (same projection)
    V = lambda c: torch.stack([c**k for k in range(4)], 1)  # noqa: E731
    ga = V(ca) @ torch.linalg.lstsq(V(ca), z[:, None]).solution
    hb = V(cb) @ torch.linalg.lstsq(V(cb), z[:, None]).solution
    mc = ((ga - hb) ** 2).mean().item()
    assert bound_class(t, 3, scaled=True) == pytest.approx(mc, rel=0.02)


# ---- DSM prefers the violating optimum ----------------------------------------------------------------------
@pytest.mark.parametrize("zeta", ["uniform", "0.2,0.5,0.8"])
def test_constants_have_strictly_larger_dsm_loss(zeta):
    t = np.array([0.01, 0.05, 0.1, 0.5, 1.0, 3.0])
    gap = dsm_gap_constant_vs_optimum(t, zeta)
    assert np.all(gap.gap > 0) and np.all(gap.excess_optimum > 0)
    assert np.allclose(gap.excess_constant - gap.excess_optimum, gap.gap)
    assert np.allclose(gap.rule_error_optimum, bound(t, zeta), rtol=1e-12)
    assert np.all(gap.rule_error_constant == 0)


def test_dsm_gap_against_monte_carlo_dsm_losses(gen):
    dist, t = RulePatches(2, seed=3), 0.1
    alpha, beta = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x0 = dist.sample(300_000, gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    xt = alpha * x0 + beta * eps
    k = alpha / beta**2
    const = torch.cat([-xt[:, :2] / beta**2 + k * 0.5 * dist.u, -xt[:, 2:] / beta**2 + k * 0.5 * dist.v], 1)
    loss = lambda s: ((s + eps / beta) ** 2).sum(1)  # noqa: E731  DSM loss, target -eps/beta
    opt = patchwise_optimum(xt, t, dist.u, dist.v)
    diff = loss(const) - loss(opt)
    se = diff.std().item() / math.sqrt(diff.numel())
    gap = dsm_gap_constant_vs_optimum(t)
    assert abs(diff.mean().item() - gap.gap[0]) < 5 * se and gap.gap[0] > 20 * se
    excess = ((opt - dist.score(xt, t)) ** 2).sum(1).mean().item()
    assert excess == pytest.approx(gap.excess_optimum[0], rel=0.02)


@pytest.mark.parametrize("bad", [0.0, -1.0, [0.1, -0.2], float("nan")])
def test_bad_times_raise(bad):
    with pytest.raises(ValueError, match="OU time"):
        bound(bad)


def test_bad_zeta_raises():
    with pytest.raises(ValueError, match="unknown zeta law"):
        bound(0.1, "normal")
