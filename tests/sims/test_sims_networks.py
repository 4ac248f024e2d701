"""The stacked networks: formulas, the indexed-patch fast path, the closed form vs sampled noise."""

import math

import pytest
import torch

from sims import networks as N
from sims import rulenets as RN


def test_tied_score_matches_the_formula(gen):
    W = torch.randn(3, 4, 7, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
    s = N.tied_score(W, x)
    for M in range(3):
        for i in range(5):
            ref = sum((W[M, r] @ x[M, i]) ** 2 * W[M, r] for r in range(4)) / 4  # (1/m) sum_r <w_r,x>^2 w_r
            torch.testing.assert_close(s[M, i], ref)


def test_classifier_indexed_equals_direct(gen):
    W = torch.randn(2, 2, 3, 6, generator=gen, dtype=torch.float64)
    patches = torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    index = torch.randint(5, (2, 4, 2), generator=gen)
    x = N.gather_patches(patches, index)
    assert x.shape == (2, 4, 2, 6)
    torch.testing.assert_close(N.classifier_indexed(W, patches, index), N.classifier_output(W, x))
    # F_j = (1/m) sum_r sum_p sigma(<w_jr, x^(p)>), f = F_+1 - F_-1 for one example by hand
    F = [sum((W[0, j, r] @ x[0, 0, p]) ** 2 for r in range(3) for p in range(2)) / 3 for j in range(2)]
    assert N.classifier_output(W, x)[0, 0].item() == pytest.approx(float(F[0] - F[1]), rel=1e-12)


def test_activations():
    z = torch.tensor([-2.0, 0.5])
    torch.testing.assert_close(N.activation("quadratic")(z), torch.tensor([4.0, 0.25]))
    torch.testing.assert_close(N.activation("relu")(z), torch.tensor([0.0, 0.5]))
    torch.testing.assert_close(N.activation("relu3")(z), torch.tensor([0.0, 0.125]))
    with pytest.raises(ValueError, match="unknown activation"):
        N.activation("tanh")


def test_masked_mean_ignores_padding():
    v = torch.tensor([[1.0, 3.0, 100.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(N.masked_mean(v, mask), torch.tensor([2.0, 2.0]))


def test_sampled_dsm_loss_agrees_with_theory_closed_form(gen):
    """Our network + sampled eps and theory's exact expectation are the same loss (Monte Carlo)."""
    from theory.growth import expected_dsm_loss_quadratic

    M, m, d, n, K = 2, 3, 6, 2, 40000
    W = 0.6 * torch.randn(M, m, d, generator=gen, dtype=torch.float64)
    x0 = torch.randn(M, n, 1, d, generator=gen, dtype=torch.float64)
    eps = torch.randn(M, K, n, 1, d, generator=gen, dtype=torch.float64)
    alpha, beta = 0.8, 0.6
    xt = alpha * x0.unsqueeze(1) + beta * eps
    s = N.tied_score(W, xt.reshape(M, -1, d)).reshape(M, K, n, 1, d)
    per = (s - eps).square().sum((-1, -2))  # [M, K, n]
    mc, se = per.mean(1), per.std(1) / math.sqrt(K)
    exact = expected_dsm_loss_quadratic(W, x0[:, :, 0], alpha, beta)
    assert torch.all((mc - exact).abs() < 5 * se), (mc, exact, se)
    torch.testing.assert_close(N.sampled_dsm_loss(W, x0, eps, alpha, beta), per.mean((1, 2)))


def test_patchwise_rule_net_is_separable_and_joint_is_not(gen):
    d, M, m = 5, 2, 4
    gens = [torch.Generator().manual_seed(i) for i in range(M)]
    x = torch.randn(M, 3, 2 * d, generator=gen, dtype=torch.float64)
    a, b = torch.full((M, 3, 1), 0.8, dtype=torch.float64), torch.full((M, 3, 1), 0.6, dtype=torch.float64)
    x2 = x.clone()
    x2[..., d:] += 1.0  # change patch 2 only
    for net in RN.NETWORKS:
        p = RN.init_params(net, M, m, d, gens, dtype=torch.float64)
        p["B"] = torch.randn(p["B"].shape, generator=gen, dtype=torch.float64)
        s1, s2 = RN.score(p, x, a, b, "relu"), RN.score(p, x2, a, b, "relu")
        same = torch.allclose(s1[..., :d], s2[..., :d])
        assert same == (net == "patchwise")


def test_time_features_are_chebyshev():
    a = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    e = RN.time_features(a, torch.sqrt(1 - a**2), k=4)
    s = e[:, 1]
    torch.testing.assert_close(e[:, 0], torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(e[:, 3], 4 * s**3 - 3 * s)
    assert torch.all(s.abs() <= 1)
