"""Stacked two-layer networks: every parameter carries a leading model axis M.

M models are evaluated in one batched contraction (``torch.einsum`` -> ``bmm``) on per-model data;
nothing couples them, so training the *sum* of their losses moves each model exactly as if it were
trained alone (checked in ``tests/sims/test_train.py``).

Networks (feature-learning paper, arXiv 2412.01021, §2-3 as reconstructed in
``shared/spec/feature-learning-paper.md``):

- :func:`tied_score` - the diffusion model, tied two-layer patch-wise network
  ``s_p(W, x_t) = (1/m) sum_r sigma(<w_r, x_t^(p)>) w_r`` predicting the noise eps^(p);
- :func:`classifier_output` - ``f = F_{+1} - F_{-1}``, ``F_j = (1/m) sum_r sum_p sigma(<w_{j,r}, x^(p)>)``,
  second layer fixed at +-1.

Rule score networks (rules paper, arXiv 2502.04725, §4 as reconstructed in
``shared/spec/rules-theory-derivation.md``) are in :mod:`sims.rulenets`.

Activations: ``quadratic`` (sigma(z) = z^2, the papers' choice) or ``reluQ`` (sigma(z) = max(0, z)^Q,
e.g. ``relu``, ``relu2``, ``relu3``).
"""

from __future__ import annotations

import re
from typing import Callable

import torch

ACTIVATION_HELP = "quadratic (z^2) or reluQ (max(0,z)^Q: relu, relu2, relu3, ...)"


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name`` (see :data:`ACTIVATION_HELP`)."""
    if name == "quadratic":
        return torch.square
    match = re.fullmatch(r"relu(\d*)", name)
    if match:
        q = int(match.group(1) or 1)
        if q < 1:
            raise ValueError(f"relu power must be >= 1, got {name!r}")
        if q == 1:
            return torch.relu
        return lambda z: torch.relu(z).pow(q)
    raise ValueError(f"unknown activation {name!r}; use {ACTIVATION_HELP}")


def check_activation(name: str) -> str:
    activation(name)
    return name


def tied_score(W: torch.Tensor, x: torch.Tensor, act: str = "quadratic") -> torch.Tensor:
    """Tied two-layer patch-wise score/noise network, stacked.

    ``W`` is ``[M, m, d]`` (filters shared by every patch), ``x`` is ``[M, N, d]`` (patches laid
    out along N). Returns ``s`` of shape ``[M, N, d]`` with s = (1/m) sum_r sigma(<w_r, x>) w_r.
    """
    sigma = activation(act)
    z = torch.einsum("Mnd,Mrd->Mnr", x, W)
    return torch.einsum("Mnr,Mrd->Mnd", sigma(z), W) / W.shape[-2]


def classifier_output(W: torch.Tensor, x: torch.Tensor, act: str = "quadratic") -> torch.Tensor:
    """The two-layer CNN classifier f(W, x) = F_{+1} - F_{-1}, stacked.

    ``W`` is ``[M, 2, m, d]`` (index 0: j = +1, index 1: j = -1), ``x`` is ``[M, N, P, d]``.
    Returns ``f`` of shape ``[M, N]``.
    """
    sigma = activation(act)
    M, two, m, d = W.shape
    N, P = x.shape[1], x.shape[2]
    z = torch.einsum("Mqd,Mkd->Mqk", x.reshape(M, N * P, d), W.reshape(M, two * m, d))
    F = sigma(z).reshape(M, N, P, two, m).sum(dim=(2, 4)) / m  # [M, N, 2]
    return F[..., 0] - F[..., 1]


def classifier_patch_terms(W: torch.Tensor, patches: torch.Tensor, act: str = "quadratic") -> torch.Tensor:
    """Per-patch terms (1/m) sum_r sigma(<w_{j,r}, z>) of F_j for patch vectors z: ``[M, R, 2]``.

    ``W`` is ``[M, 2, m, D]``, ``patches`` ``[M, R, d]`` with d <= D: patches given on the first d
    coordinates only (zero beyond, as in the data-first span basis of :mod:`sims.fl`).
    F_j(x) is the sum of these over x's patches.
    """
    sigma = activation(act)
    M, two, m, _ = W.shape
    d = patches.shape[-1]
    z = torch.einsum("MRd,Mkd->MRk", patches, W[..., :d].reshape(M, two * m, d))
    return sigma(z).reshape(M, patches.shape[1], two, m).sum(-1) / m


def gather_patches(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[M, R, ...]`` picked by ``index[M, n, P]`` (indices into R): ``[M, n, P, ...]``.

    A data set stores each distinct patch once (e.g. x(1) = mu_y takes two values) and every
    example points at its patches; per-patch work is then done once per distinct patch.
    """
    M, n, P = index.shape
    tail = values.shape[2:]
    flat = index.reshape(M, n * P).reshape(M, n * P, *([1] * len(tail))).expand(M, n * P, *tail)
    return torch.gather(values, 1, flat).reshape(M, n, P, *tail)


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the example axis (dim 1) of ``[M, N]`` values, counting only ``mask`` entries.

    Padding lets models with different n share one stack: padded examples get weight 0, and the
    mean divides by each model's own n, so the per-model loss is the unpadded one.
    """
    if mask is None:
        return values.mean(dim=1)
    mask = mask.to(values.dtype)
    return (values * mask).sum(dim=1) / mask.sum(dim=1)


def classifier_indexed(W, patches, index, act: str = "quadratic") -> torch.Tensor:
    """f(W, x_i) ``[M, n]`` for examples given as patch indices (same value as :func:`classifier_output`)."""
    F = gather_patches(classifier_patch_terms(W, patches, act), index).sum(2)  # [M, n, 2]
    return F[..., 0] - F[..., 1]


def logistic_loss(W: torch.Tensor, patches, index, y: torch.Tensor, mask=None, act: str = "quadratic"):
    """Per-model training loss (1/n) sum_i log(1 + exp(-y_i f(W, x_i))), shape ``[M]``."""
    f = classifier_indexed(W, patches, index, act)
    return masked_mean(torch.nn.functional.softplus(-y.to(f.dtype) * f), mask)


def sampled_dsm_loss(W, x0, eps, alpha, beta, mask=None, act: str = "quadratic"):
    """Per-model DSM (noise-prediction) loss with sampled diffusion noise, shape ``[M]``.

    ``x0`` is ``[M, N, P, d]``; ``eps`` is ``[M, K, N, P, d]`` (K draws per example). The loss is
    (1/n) sum_i (1/K) sum_k sum_p || s_p(W, alpha x0 + beta eps) - eps ||^2 (reconstruction, §2).
    """
    M, K, N, P, d = eps.shape
    xt = alpha * x0.unsqueeze(1) + beta * eps
    s = tied_score(W, xt.reshape(M, K * N * P, d), act).reshape(M, K, N, P, d)
    per_example = (s - eps).square().sum(dim=(-1, -2)).mean(dim=1)  # [M, N]
    return masked_mean(per_example, mask)
