"""Feature learning: the exact expected DSM loss of the tied quadratic network and the early-phase
growth-rate predictions (theory.growth), each checked against a direct computation."""

import math

import pytest
import torch

from theory import (FeatureLearningSetup, TwoPatchSignalNoise, classification_rate_ratio, diffusion_growth_ratio,
                    expected_dsm_loss_quadratic, n_snr2, snr)
from theory.checks import early_growth_measurement
from theory.growth import classification_early_rates, diffusion_early_increments


def _sampled_loss(W, x0, alpha, beta, eps):
    """||s(alpha x0 + beta eps) - eps||^2 for every eps row; s(x) = (1/m) sum_r <w_r, x>^2 w_r."""
    x = alpha * x0 + beta * eps
    return ((((x @ W.T) ** 2) @ W / W.shape[0] - eps) ** 2).sum(1)


def test_expected_loss_vs_monte_carlo(gen):
    W = 0.3 * torch.randn(5, 30, generator=gen, dtype=torch.float64)
    x0 = torch.randn(3, 30, generator=gen, dtype=torch.float64)
    closed = expected_dsm_loss_quadratic(W, x0, 0.8, 0.6)
    eps = torch.randn(300_000, 30, generator=gen, dtype=torch.float64)
    for i in range(3):
        v = _sampled_loss(W, x0[i], 0.8, 0.6, eps)
        se = v.std().item() / math.sqrt(v.numel())
        assert abs(v.mean().item() - closed[i].item()) < 5 * se
        assert se < 0.002 * closed[i].item()  # the comparison is sharp


def test_expected_gradient_vs_sampled_gradient_average(gen):
    W = (0.4 * torch.randn(4, 8, generator=gen, dtype=torch.float64)).requires_grad_(True)
    x0 = torch.randn(2, 8, generator=gen, dtype=torch.float64)
    (closed,) = torch.autograd.grad(expected_dsm_loss_quadratic(W, x0, 0.7, 0.5).sum(), W)
    grads = []
    for _ in range(20):  # 20 independent batches of 20000 draws: mean and standard error per entry
        eps = torch.randn(20_000, 8, generator=gen, dtype=torch.float64)
        loss = sum(_sampled_loss(W, x0[i], 0.7, 0.5, eps).mean() for i in range(2))
        grads.append(torch.autograd.grad(loss, W)[0])
    g = torch.stack(grads)
    mean, se = g.mean(0), g.std(0) / math.sqrt(g.shape[0])
    assert ((mean - closed).abs() / se).max() < 5
    assert (se.norm() / closed.norm()).item() < 0.02  # sharp enough to see a wrong factor


def test_batched_leading_dims_and_per_example_times(gen):
    E, m, d, n = 3, 4, 6, 5
    W = torch.randn(E, m, d, generator=gen, dtype=torch.float64)
    x0 = torch.randn(n, d, generator=gen, dtype=torch.float64)
    alpha = torch.rand(n, generator=gen, dtype=torch.float64) * 0.5 + 0.3
    beta = (1 - alpha**2).sqrt()
    out = expected_dsm_loss_quadratic(W, x0, alpha, beta)
    assert out.shape == (E, n)
    for e in range(E):
        for i in range(n):
            one = expected_dsm_loss_quadratic(W[e], x0[i:i + 1], alpha[i].item(), beta[i].item())
            assert out[e, i].item() == pytest.approx(one.item(), rel=1e-12)
    with pytest.raises(ValueError, match="patch dimension"):
        expected_dsm_loss_quadratic(W, torch.zeros(n, d + 1), 0.8, 0.6)


def test_expected_loss_vs_lambdified_sympy(gen):
    from theory import symbolic

    f = symbolic.quadratic_dsm_closed_form().numeric["expected_loss"]
    W = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    x0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    ours = expected_dsm_loss_quadratic(W, x0, 0.9, 0.4)
    for i in range(4):
        assert ours[i].item() == pytest.approx(f(*W.reshape(-1).tolist(), *x0[i].tolist(), 0.9, 0.4), rel=1e-12)


# ---- growth predictions ------------------------------------------------------------------------------------
def test_setup_and_formulas():
    cfg = FeatureLearningSetup.from_n_snr2(30, 1000, 0.75, sigma_xi=0.05)
    assert n_snr2(cfg) == pytest.approx(0.75) and snr(cfg) == pytest.approx(math.sqrt(0.75 / 30))
    assert diffusion_growth_ratio(cfg, exact=False) == pytest.approx(0.375)
    assert diffusion_growth_ratio(cfg) == pytest.approx(0.375 * 1000 / 998)
    assert classification_rate_ratio(cfg) == pytest.approx(diffusion_growth_ratio(cfg))
    inc = diffusion_early_increments(cfg, eta=0.1, alpha=0.8, beta=0.6, m=20, w_norm_sq=1e-3)
    assert inc["signal"] / inc["noise"] == pytest.approx(diffusion_growth_ratio(cfg))
    with pytest.raises(ValueError, match="mu_norm"):
        FeatureLearningSetup(10, 100, -1.0, 1.0)
    with pytest.raises(ValueError, match="d must be"):
        FeatureLearningSetup(10, 2, 1.0, 1.0)
    with pytest.raises(ValueError, match="attribute"):
        snr(object())


@pytest.mark.parametrize("n_snr2_value", [0.75, 6.75])
def test_early_dsm_growth_ratio_matches_n_snr2_over_2(n_snr2_value):
    """The paper's Figure 2 pair: one exact-expected-gradient DSM step from a small init."""
    measured, first_order, formula = early_growth_measurement(n=20, d=2000, n_snr2=n_snr2_value, seed=1)
    assert measured == pytest.approx(first_order, rel=0.01)
    assert measured == pytest.approx(formula, rel=0.1)
    assert formula == pytest.approx(n_snr2_value / 2 * 2000 / 1998)


def test_early_dsm_growth_is_linear():
    """Diffusion: increments do not scale with the current alignment (they scale with ||w||^2), so
    doubling the initial <w, mu> leaves the first-step signal increment nearly unchanged."""
    gen = torch.Generator().manual_seed(0)
    d, n, m = 500, 10, 8
    dist = TwoPatchSignalNoise(d, 2.0, 0.1, seed=0)
    X = dist.sample(n, gen)
    patches = torch.stack([X[:, :d], X[:, d:]])
    W0 = 1e-3 * torch.randn(m, d, generator=gen, dtype=torch.float64)
    W0 = W0 - (W0 @ dist.mu[0])[:, None] * dist.mu[0] / 4.0  # remove the mu_+ component ...
    incs = []
    for c in (1e-4, 2e-4):  # ... and set it to c
        W = (W0 + c * dist.mu[0] / 2.0).requires_grad_(True)
        (g,) = torch.autograd.grad(expected_dsm_loss_quadratic(W, patches, 0.8, 0.6).sum(0).mean(), W)
        incs.append((-g @ dist.mu[0]).mean().item())
    assert incs[1] == pytest.approx(incs[0], rel=0.05)


def test_early_classification_rates():
    """Logistic GD on the quadratic two-layer classifier from a small init: <w_{j,r}, mu_j> grows by the
    factor 1 + eta n_j ||mu||^2/(n m) per step, the noise coefficients by ≈ 1 + eta ||xi||^2/(n m)."""
    gen = torch.Generator().manual_seed(2)
    d, n, m, eta = 1500, 10, 4, 0.5
    cfg = FeatureLearningSetup.from_n_snr2(n, d, 6.75, sigma_xi=0.1)
    dist = TwoPatchSignalNoise(d, cfg.mu_norm, cfg.sigma_xi, seed=2)
    X, lat = dist.sample(n, gen, return_latents=True)
    y = lat["y"].to(torch.float64)
    W = 1e-4 * torch.randn(2, m, d, generator=gen, dtype=torch.float64)  # j = +1, -1
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)

    def loss(W):
        F = ((torch.einsum("jrd,npd->njrp", W, X.view(n, 2, d))) ** 2).sum((-1, -2)) / m  # [n, 2]
        return torch.nn.functional.softplus(-y * (F @ sign)).mean()

    Wr = W.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(Wr), Wr)
    W1 = W - eta * g
    rates = classification_early_rates(cfg, eta=eta, m=m)
    j_plus = lat["y"] > 0
    n_j = int(j_plus.sum())
    sig0, sig1 = W[0] @ dist.mu[0], W1[0] @ dist.mu[0]
    exact_signal = eta * n_j * cfg.mu_norm**2 / (n * m)  # the sample's own n_j
    assert torch.allclose(sig1 / sig0 - 1, torch.full_like(sig0, exact_signal), rtol=1e-4)
    xi = lat["xi"][j_plus]
    noise0, noise1 = W[0] @ xi.T, W1[0] @ xi.T
    noise_rate = ((noise1 - noise0) * noise0).sum() / (noise0**2).sum()  # Rayleigh quotient of the step
    assert noise_rate.item() == pytest.approx(rates["noise"], rel=0.15)
    assert exact_signal / noise_rate.item() == pytest.approx(classification_rate_ratio(cfg) * n_j / (n / 2), rel=0.15)
