"""DDPM for the rules paper: the epsilon-prediction loss and the samplers (ancestral DDPM, DDIM).

Schedule: ``theory.ddpm_schedule()`` (T = 1000, beta linear 1e-4 -> 0.02), indexed 0..999 like
IDDM's arrays. The paper's code (IDDM fork) trains on t ~ U{1..999} and samples i = 999 -> 1, so
index 0 is never used; we keep exactly that.

Loss (Ho et al. 2020, Eq. 14, "L_simple"): ``|| eps - eps_hat(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t) ||^2``.
The loss owns the noise law (edm style): it draws t and eps from per-example keys
(:mod:`fullscale.rng`), so a training example's noise depends on (seed, step, position in the
global batch) and not on how the batch is split over processes.

Ancestral step (Ho et al. Algorithm 2, as in IDDM's ``DDPMDiffusion.sample``):
    mu = (x - beta_i / sqrt(1 - ab_i) * eps_hat) / sqrt(alpha_i),   x <- mu + sigma_i z,  z = 0 at i = 1,
with sigma_i^2 = beta_i (IDDM, the paper's sampler; ``variance="beta"``) or the posterior variance
beta~_i = beta_i (1 - ab_{i-1}) / (1 - ab_i) (Ho et al. Eq. 7; guided-diffusion; ``"posterior"``).
The output is clamped to [-1, 1] at the end (IDDM).

Guidance hook (Dhariwal & Nichol 2021, Algorithm 1): ``guide(x, t) -> grad_x log p(y | x_t)``;
the mean is shifted as ``mu <- mu + w_i sigma_i^2 g`` with ``w_i = weight(i)`` (or a constant).
DDIM (Song et al. 2021, Eq. 12) with guidance uses the score form of Dhariwal & Nichol Eq. 14:
``eps_hat <- eps_hat - sqrt(1 - ab_i) w_i g``.
"""

from __future__ import annotations

from typing import Callable

import torch

from fullscale import rng
from theory import ddpm_schedule

T_MIN, T_MAX = 1, 999  # training and sampling use t in {1, ..., 999} (IDDM)
# purposes mixed into training keys, so t and eps streams are independent
_PURPOSE_T, _PURPOSE_EPS = 1, 2
# stream of the initial latent x_T; sampler step i uses stream i (< 1000)
_INIT_STREAM = 1000


def _coef(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast against x (values already on x's device)."""
    return values[t].view(-1, *([1] * (x.ndim - 1)))


class EpsilonLoss:
    """Per-example epsilon-prediction MSE with t ~ U{1..999} (paper / IDDM)."""

    def __init__(self, schedule=None):
        self.schedule = schedule or ddpm_schedule()
        self._alpha_bar = {}  # device -> float32 alpha_bar (kept resident: no copy per step)

    def alpha_bar(self, device) -> torch.Tensor:
        if device not in self._alpha_bar:
            self._alpha_bar[device] = self.schedule.alpha_bar.to(device=device, dtype=torch.float32)
        return self._alpha_bar[device]

    def draw(self, keys: torch.Tensor, shape) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, eps) for examples with the given int64 keys; shape is one example's shape."""
        t = rng.randint(rng.derive(keys, _PURPOSE_T), T_MIN, T_MAX + 1)
        eps = rng.normal(rng.derive(keys, _PURPOSE_EPS), shape)
        return t, eps

    def __call__(self, net, x0: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Loss per example, shape [B] (mean over pixels); x0 in [-1, 1], NCHW."""
        t, eps = self.draw(keys, x0.shape[1:])
        eps = eps.to(x0.device, x0.dtype)
        ab = _coef(self.alpha_bar(x0.device), t.to(x0.device), x0).to(x0.dtype)
        xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps
        eps_hat = net(xt, t).float()
        return (eps_hat - eps.float()).square().flatten(1).mean(1)


# ----------------------------------------------------------------------------
# Samplers: plain functions of (net, x, seeds, timesteps).


def initial_noise(seeds: torch.Tensor, shape, device=None) -> torch.Tensor:
    """x_T for each seed: N(0, I), shape [len(seeds), *shape] (float32)."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=device)
    return rng.normal(rng.derive(seeds, _INIT_STREAM), shape)


def step_noise(seeds: torch.Tensor, i: int, shape) -> torch.Tensor:
    """The ancestral noise z of each seed at sampler step i (the same whatever the batch)."""
    return rng.normal(rng.derive(seeds, int(i)), shape)


def _weights(weight, i: int) -> float:
    return float(weight(i)) if callable(weight) else float(weight)


@torch.no_grad()
def ddpm_sample(
    net: Callable,
    x: torch.Tensor,
    seeds: torch.Tensor,
    *,
    steps=None,
    variance: str = "beta",
    guide: Callable | None = None,
    weight=1.0,
    schedule=None,
    progress: Callable | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Ancestral DDPM sampling from x = x_T over ``steps`` (default 999 -> 1); returns x_0 in [-1, 1].

    net(x, t) -> eps_hat; seeds: one int per sample (the noise stream of that sample);
    guide(x, t) -> grad log p(y | x_t) with per-step weight ``weight`` (float or i -> float);
    progress(i) is called after each step; ``offset`` (a data mean the model was trained without)
    is added before the final clamp.
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
    s = schedule or ddpm_schedule()
    steps = list(range(T_MAX, T_MIN - 1, -1)) if steps is None else list(steps)
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=x.device)
    x = x.to(torch.float32)
    var_table = s.betas if variance == "beta" else s.posterior_variance
    for i in steps:
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        eps_hat = net(x, t).float()
        alpha, ab, beta = (float(v[i]) for v in (s.alphas, s.alpha_bar, s.betas))
        mu = (x - (beta / (1.0 - ab) ** 0.5) * eps_hat) / alpha**0.5
        var = float(var_table[i])
        w = _weights(weight, i) if guide is not None else 0.0
        if w != 0.0:
            with torch.enable_grad():
                g = guide(x, t).float()
            mu = mu + (w * var) * g
        if i > T_MIN:
            x = mu + var**0.5 * step_noise(seeds, i, x.shape[1:]).to(x.device)
        else:
            x = mu
        if progress is not None:
            progress(i)
    return _finish(x, offset)


def _finish(x: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    return (x if offset is None else x + offset.to(x.device, x.dtype)).clamp(-1.0, 1.0)


def ddim_timesteps(n_steps: int) -> list[int]:
    """``n_steps`` evenly spaced timesteps from 999 down to 1 (inclusive)."""
    if not 1 <= n_steps <= T_MAX:
        raise ValueError(f"DDIM steps must be in 1..{T_MAX}, got {n_steps}")
    if n_steps == 1:
        return [T_MAX]
    return sorted({round(T_MAX - k * (T_MAX - T_MIN) / (n_steps - 1)) for k in range(n_steps)}, reverse=True)


@torch.no_grad()
def ddim_sample(
    net: Callable,
    x: torch.Tensor,
    seeds: torch.Tensor | None = None,
    *,
    steps=50,
    eta: float = 0.0,
    guide: Callable | None = None,
    weight=1.0,
    schedule=None,
    progress: Callable | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) from x_T; ``steps`` is a count or a decreasing list of t.

    The last step jumps to ab = 1 (x_0 itself). eta > 0 adds noise from the per-sample ``seeds``.
    """
    s = schedule or ddpm_schedule()
    ts = ddim_timesteps(steps) if isinstance(steps, int) else list(steps)
    if eta > 0 and seeds is None:
        raise ValueError("DDIM with eta > 0 needs per-sample seeds")
    if seeds is not None:
        seeds = torch.as_tensor(seeds, dtype=torch.int64, device=x.device)
    x = x.to(torch.float32)
    for k, i in enumerate(ts):
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        eps_hat = net(x, t).float()
        ab = float(s.alpha_bar[i])
        ab_prev = float(s.alpha_bar[ts[k + 1]]) if k + 1 < len(ts) else 1.0
        w = _weights(weight, i) if guide is not None else 0.0
        if w != 0.0:
            with torch.enable_grad():
                g = guide(x, t).float()
            eps_hat = eps_hat - (1.0 - ab) ** 0.5 * w * g
        x0 = (x - (1.0 - ab) ** 0.5 * eps_hat) / ab**0.5
        sigma = eta * ((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)) ** 0.5
        x = ab_prev**0.5 * x0 + max(1.0 - ab_prev - sigma**2, 0.0) ** 0.5 * eps_hat
        if sigma > 0 and k + 1 < len(ts):
            x = x + sigma * step_noise(seeds, i, x.shape[1:]).to(x.device)
        if progress is not None:
            progress(i)
    return _finish(x, offset)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] NCHW -> uint8 NHWC (rounded; IDDM truncates, a <= 1/255 difference)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0)
