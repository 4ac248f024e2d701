"""The locality ladder's first rung in theory: sample the rules law with the exact score and with the
DSM-optimal patch-wise score, and measure the samples' rule residual (issue 14, section 2).

Toolkit's own construction (docs/baselines.md, "Theory rung"). L_t (``theory.rules.bound``) is a
score-level constant; here is what the patch-wise score does to *samples*, the quantity every other
rung of the ladder measures. The sampler is the full-scale one in OU notation: DDIM (Song et al.
2021, Eq. 12) on the DDPM process (``theory.VPProcess``, T = 1000), ``steps`` evenly spaced
timesteps T-1 -> 1 (999 -> 1 at T = 1000; ``VPProcess.grid``), eta = 0 (deterministic) or 1
(stochastic, ancestral-like), and, as in ``fullscale.diffusion.ddim_sample``, the last step returns the denoiser's x0_hat. With a score s,
x0_hat = (x + beta^2 s(x)) / alpha (Tweedie) and eps_hat = (x - alpha x0_hat) / beta, at OU time
t = -log(ab) / 2 (alpha = sqrt(ab), beta = sqrt(1 - ab)).

Rule residual of a sample: r = ||x(1)|| + ||x(2)|| - 1 (0 on the law's support). For the two scores
the final x0_hat is explicit (ours, from ``RulePatches.posterior_mean`` and
``theory.rules.patchwise_optimum``):
  exact:      x0_hat = [E[zeta|a,b] u, (1 - E[zeta|a,b]) v]   -> r = 0 identically;
  patch-wise: x0_hat = [E[zeta|a] u, (1 - E[zeta|b]) v]       -> r = E[zeta|a] - E[zeta|b],
so a patch-wise sampler leaves each sample with the residual of its last denoising step, whose
spread the earlier steps decide. No I/O; imports only torch and theory.
"""

from __future__ import annotations

import math

import torch

from theory.distributions import RulePatches
from theory.rules import patchwise_optimum
from theory.schedules import VPProcess

SCORES = ("exact", "patchwise")


PROCESS = VPProcess()  # the DDPM process (T = 1000): owns the schedule and the sampling grid


def ddim_timesteps(steps: int) -> list[int]:
    """``steps`` evenly spaced DDPM timesteps from T-1 down to 1: ``VPProcess.grid`` (the grid of
    fullscale's samplers); only the integer check is added here."""
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= PROCESS.t_max:
        raise ValueError(f"steps must be an integer in 1..{PROCESS.t_max}, got {steps}")
    return PROCESS.grid(int(steps))


def reverse_sample(score_fn, x: torch.Tensor, steps: int = 100, eta: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """DDIM from x = x_T (``[N, D]``) with ``score_fn(x, t_ou) -> [N, D]``; returns the final x0_hat."""
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    ab_table = PROCESS.schedule.alpha_bar.to(torch.float64)
    ts = ddim_timesteps(steps)
    x = x.to(torch.float64)
    for k, i in enumerate(ts):
        ab = float(ab_table[i])
        ab_prev = float(ab_table[ts[k + 1]]) if k + 1 < len(ts) else 1.0
        alpha, beta = math.sqrt(ab), math.sqrt(1.0 - ab)
        x0 = (x + beta**2 * score_fn(x, -0.5 * math.log(ab))) / alpha  # Tweedie
        if k + 1 == len(ts):
            return x0
        eps = (x - alpha * x0) / beta
        sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x


def score_of(law: RulePatches, which: str):
    """The exact score of ``law`` or its DSM-optimal patch-wise score (derivation, section 4)."""
    if which == "exact":
        return law.score
    if which == "patchwise":
        return lambda x, t: patchwise_optimum(x, t, law.u, law.v, law.zeta)
    raise ValueError(f"score must be one of {', '.join(SCORES)}, got {which!r}")


def sample_rules(law: RulePatches, n: int, score: str = "exact", steps: int = 100, eta: float = 1.0,
                 seed: int = 0) -> torch.Tensor:
    """``n`` samples ``[n, 2d]`` of ``law`` drawn backwards from N(0, I) with the chosen score."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"number of samples n must be a positive integer, got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(int(n), 2 * law.d, generator=gen, dtype=torch.float64)
    return reverse_sample(score_of(law, score), x, steps=steps, eta=eta, generator=gen)


def rule_residual(x: torch.Tensor, d: int) -> torch.Tensor:
    """||x(1)|| + ||x(2)|| - 1 per sample, ``[N]``."""
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != 2 * d:
        raise ValueError(f"x must have shape [N, 2d] = [N, {2 * d}], got {list(x.shape)}")
    return x[:, :d].norm(dim=1) + x[:, d:].norm(dim=1) - 1.0


def rule_summary(x: torch.Tensor, d: int) -> dict:
    """The residual's distribution and the rules paper's style of fit: OLS of ||x(2)|| on ||x(1)||
    (the rule: slope -1, intercept 1) and its R^2; ``conform_pct``: the paper's bin metric with the
    rule's line, ||x(2)|| in the 0.05-wide bin holding 1 - ||x(1)|| (ours, by analogy with
    ``fullscale.evaluate.metrics.conform_pct``); ``within_005``: |r| < 0.05."""
    r = rule_residual(x, d).to(torch.float64)
    n1, n2 = x[:, :d].norm(dim=1).to(torch.float64), x[:, d:].norm(dim=1).to(torch.float64)
    xc, yc = n1 - n1.mean(), n2 - n2.mean()
    sxx = float((xc * xc).sum())
    slope = float((xc * yc).sum()) / sxx if sxx > 0 else float("nan")
    intercept = float(n2.mean() - slope * n1.mean())
    res = yc - slope * xc
    syy = float((yc * yc).sum())
    r2 = 1.0 - float((res * res).sum()) / syy if syy > 0 else float("nan")
    lo = torch.floor(20.0 * (1.0 - n1)) / 20.0
    conform = 100.0 * float(((n2 >= lo) & (n2 < lo + 0.05)).double().mean())
    q = torch.quantile(r, torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
    # KS distance of ||x(1)|| against Uniform[0, 1] (the law's zeta), for the uniform law
    s = torch.sort(n1.clamp(0, 1)).values
    k = torch.arange(1, len(s) + 1, dtype=torch.float64)
    ks = float(torch.maximum(k / len(s) - s, s - (k - 1) / len(s)).max())
    return {"n": int(len(r)), "residual_mean": float(r.mean()), "residual_std": float(r.std()),
            "residual_abs_mean": float(r.abs().mean()), "residual_q05": float(q[0]), "residual_median": float(q[1]),
            "residual_q95": float(q[2]), "within_005": float((r.abs() < 0.05).double().mean()),
            "conform_pct": conform, "slope": slope, "intercept": intercept, "r2": r2, "ks_uniform": ks}
