"""Monte Carlo references for the exact formulas: the posterior mean and the score by
self-normalised importance sampling (SNIS) with the prior as proposal.

E[x_0 | x_t = x] = ∫ x_0 N(x; alpha x_0, beta^2 I) p_0(dx_0) / ∫ N(x; alpha x_0, beta^2 I) p_0(dx_0),
estimated with K prior draws x_0^k and weights w_k ∝ exp((alpha <x, x_0^k> - alpha^2 ||x_0^k||^2 / 2) / beta^2)
(the x-only factor cancels). The standard error is the delta-method SNIS one,
se^2 = sum_k w_k^2 (x_0^k - mean)^2 (weights normalised), and ESS = 1 / sum_k w_k^2. Works for any law
with a ``sample`` method; accurate while the ESS is large (moderate t, small d).
"""

from __future__ import annotations

import math

import torch

from theory.schedules import ou_alpha_beta2_float


def posterior_mean_is(dist, x, t: float, n_samples: int = 200_000, generator: torch.Generator | None = None,
                      chunk: int = 50_000):
    """(mean ``[N, 2d]``, standard error ``[N, 2d]``, ESS ``[N]``) of E[x_0 | x_t = x] at one OU time t."""
    t = float(t)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"OU time t must be finite and > 0, got {t}")
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples}")
    x = torch.as_tensor(x, dtype=torch.float64)
    alpha, beta2 = ou_alpha_beta2_float(t)
    draws = [dist.sample(min(chunk, n_samples - i), generator=generator).to(x) for i in range(0, n_samples, chunk)]
    x0 = torch.cat(draws)  # [K, 2d]
    logw = (alpha * (x @ x0.T) - 0.5 * alpha**2 * (x0**2).sum(1)) / beta2  # [N, K]
    w = torch.softmax(logw, dim=1)
    mean = w @ x0
    w2 = w**2
    var = w2 @ x0**2 - 2 * mean * (w2 @ x0) + mean**2 * w2.sum(1, keepdim=True)
    return mean, var.clamp_min(0).sqrt(), 1.0 / w2.sum(1)


def score_is(dist, x, t: float, n_samples: int = 200_000, generator: torch.Generator | None = None):
    """(score, standard error, ESS) by Tweedie from :func:`posterior_mean_is`."""
    mean, se, ess = posterior_mean_is(dist, x, t, n_samples, generator)
    alpha, beta2 = ou_alpha_beta2_float(t)
    x = torch.as_tensor(x, dtype=torch.float64)
    return (alpha * mean - x) / beta2, alpha / beta2 * se, ess
