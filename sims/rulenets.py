"""Stacked two-layer score networks for the rules law, patch-wise (separable) or joint.

Residual form (issue 4 §1): s(x_t, t) = -x_t / beta_t^2 + f_W(x_t, t), so that
psi_t = <f(1), u> + <f(2), v> reads f directly (rules-theory derivation §3). We parametrise
f = (alpha_t / beta_t^2) D_W(x_t, t), where D_W predicts E[x_0 | x_t] (Tweedie); the factor is a fixed
preconditioning, like EDM's c_out, not a learned quantity, and the rule reads
<D(1), u> + <D(2), v> = 1.

D is a two-layer network with FiLM-style time conditioning (ours): with time features e(t) in R^k
(Chebyshev polynomials of the normalised log-SNR),

    z_r = <w_r, x^(p)> + <c_r, e(t)>,   D^(p)(x, t) = (1/m) sum_r sigma(z_r) <g_r, e(t)> a_r + B e(t),

- ``patchwise``: separate parameters per patch p in {1, 2}, and D^(p) sees x^(p) only (the
  separable class of derivation §4: psi - alpha/beta^2 = g(a) - h(b), DSM cannot conform);
- ``joint``: one network on the whole x in R^{2d} with outputs in R^{2d} (the control; with the
  quadratic activation it contains, at each t, every quadratic polynomial of x, hence the exact
  L^2 projection of E[x_0|x_t], whose rule error is 0 because projections are linear and constants
  are in the class).

At fixed t the quadratic patch-wise network is a polynomial of degree <= 2 in x^(p), so its DSM
optimum's rule error is L_t(F_2) (``theory.rules.bound_class(t, 2)``); with ReLU it approaches L_t.
"""

from __future__ import annotations

import math

import torch

from sims.networks import activation

NETWORKS = ("patchwise", "joint")
N_TIME_FEATURES = 12
LOGSNR_RANGE = (-12.0, 12.0)  # normalisation of log(alpha^2 / beta^2) for the Chebyshev features


def time_features(alpha: torch.Tensor, beta: torch.Tensor, k: int = N_TIME_FEATURES) -> torch.Tensor:
    """e(t): Chebyshev polynomials T_0..T_{k-1} of the log-SNR mapped to [-1, 1]; shape ``[..., k]``."""
    lo, hi = LOGSNR_RANGE
    lam = torch.log(alpha.square() / beta.square())
    s = ((2 * lam - lo - hi) / (hi - lo)).clamp(-1.0, 1.0)
    feats = [torch.ones_like(s), s]
    while len(feats) < k:
        feats.append(2 * s * feats[-1] - feats[-2])
    return torch.stack(feats[:k], dim=-1)


def init_params(network: str, M: int, m: int, d: int, generators: list[torch.Generator],
                k: int = N_TIME_FEATURES, dtype=torch.float32, device="cpu") -> dict:
    """Per-model initial parameters stacked on axis 0 (each model from its own generator).

    Shapes: patchwise P = 2 groups of input size D = d; joint P = 1 group of size D = 2d.
    w ~ N(0, 1/D), a ~ N(0, 1/D), c, g: first feature 1 (bias 0, gain 1) plus N(0, 0.1^2), B = 0.
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; choose from {', '.join(NETWORKS)}")
    P, D = (2, d) if network == "patchwise" else (1, 2 * d)
    per = []
    for gen in generators:
        rnd = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
        w = rnd(P, m, D) / math.sqrt(D)
        a = rnd(P, m, D) / math.sqrt(D)
        c = 0.1 * rnd(P, m, k)
        g = 0.1 * rnd(P, m, k)
        g[..., 0] += 1.0
        per.append({"w": w, "a": a, "c": c, "g": g, "B": torch.zeros(P, D, k, dtype=torch.float64)})
    assert len(per) == M
    return {key: torch.stack([p[key] for p in per]).to(device=device, dtype=dtype) for key in per[0]}


def denoiser(params: dict, x: torch.Tensor, feats: torch.Tensor, act: str) -> torch.Tensor:
    """D_W(x_t, t) ``[M, N, 2d]`` for x ``[M, N, 2d]`` and time features ``[M, N, k]``."""
    w, a, c, g, B = (params[key] for key in ("w", "a", "c", "g", "B"))
    M, P, m, D = w.shape
    xp = x.reshape(M, x.shape[1], P, D)
    z = torch.einsum("Mnpd,Mprd->Mnpr", xp, w) + torch.einsum("Mnk,Mprk->Mnpr", feats, c)
    h = activation(act)(z) * torch.einsum("Mnk,Mprk->Mnpr", feats, g)
    out = torch.einsum("Mnpr,Mprd->Mnpd", h, a) / m + torch.einsum("Mnk,Mpdk->Mnpd", feats, B)
    return out.reshape(M, x.shape[1], P * D)


def score(params: dict, x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, act: str) -> torch.Tensor:
    """s(x_t, t) = -x_t / beta^2 + (alpha / beta^2) D(x_t, t); alpha, beta broadcast as ``[M, N, 1]``."""
    D = denoiser(params, x, time_features(alpha[..., 0], beta[..., 0]), act)
    return (alpha * D - x) / beta.square()
