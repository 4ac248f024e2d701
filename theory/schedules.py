"""Forward processes: the OU process and the DDPM discrete linear schedule.

OU (continuous time t > 0), as in the feature-learning paper's analysis:
    x_t = alpha_t x_0 + beta_t eps,   alpha_t = exp(-t),   beta_t = sqrt(1 - exp(-2t)).

DDPM (Ho et al. 2020, Eq. 4 and Eq. 7), T = 1000 steps, beta linear from 1e-4 to 0.02:
    alpha_i = 1 - beta_i,  alpha_bar_i = prod_{j<=i} alpha_j,
    x_i = sqrt(alpha_bar_i) x_0 + sqrt(1 - alpha_bar_i) eps,
    posterior variance  beta_tilde_i = beta_i (1 - alpha_bar_{i-1}) / (1 - alpha_bar_i).
Arrays are 0-indexed like diffusers' ``DDPMScheduler``: index i is the (i+1)-th step, and
``alpha_bar_prev[0] = 1``. The DDPM step i maps to the OU pair (alpha, beta) =
(sqrt(alpha_bar_i), sqrt(1 - alpha_bar_i)), equivalently OU time t = -log(alpha_bar_i) / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _check_t(t):
    t = torch.as_tensor(t, dtype=torch.float64)
    if not torch.all(torch.isfinite(t)) or torch.any(t <= 0):
        raise ValueError(f"OU time t must be finite and > 0, got {t.tolist()}")
    return t


def ou_alpha(t) -> torch.Tensor:
    """alpha_t = exp(-t) of the OU forward process (float64 tensor)."""
    return torch.exp(-_check_t(t))


def ou_beta(t) -> torch.Tensor:
    """beta_t = sqrt(1 - exp(-2t)) of the OU forward process (float64 tensor)."""
    return torch.sqrt(-torch.expm1(-2.0 * _check_t(t)))


def ou_alpha_beta(t) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t, beta_t) of the OU process."""
    return ou_alpha(t), ou_beta(t)


def ou_time_from_alpha_bar(alpha_bar) -> torch.Tensor:
    """OU time with the same signal level as a DDPM step: exp(-2t) = alpha_bar."""
    a = torch.as_tensor(alpha_bar, dtype=torch.float64)
    return -0.5 * torch.log(a)


@dataclass(frozen=True)
class DDPMSchedule:
    """The discrete DDPM schedule; every field is a float64 tensor of length ``T``."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    posterior_variance: torch.Tensor

    @property
    def T(self) -> int:
        return int(self.betas.shape[0])

    @property
    def sqrt_alpha_bar(self) -> torch.Tensor:
        return self.alpha_bar.sqrt()

    @property
    def sqrt_one_minus_alpha_bar(self) -> torch.Tensor:
        return (1.0 - self.alpha_bar).sqrt()

    def ou_pair(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, beta) = (sqrt(alpha_bar_i), sqrt(1 - alpha_bar_i)) for step index i."""
        i = torch.as_tensor(i, dtype=torch.long)
        return self.sqrt_alpha_bar[i], self.sqrt_one_minus_alpha_bar[i]

    def to(self, device=None, dtype=None) -> "DDPMSchedule":
        """A copy on another device / dtype (e.g. float32 on CUDA for sampling)."""
        conv = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
        return DDPMSchedule(*(conv(getattr(self, f)) for f in self.__dataclass_fields__))


def ddpm_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> DDPMSchedule:
    """The DDPM linear schedule (Ho et al. 2020): ``betas = linspace(beta_start, beta_end, T)``."""
    if int(T) != T or T < 2:
        raise ValueError(f"T must be an integer >= 2, got {T}")
    if not (0.0 < beta_start <= beta_end < 1.0) or not all(map(math.isfinite, (beta_start, beta_end))):
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
    betas = torch.linspace(beta_start, beta_end, int(T), dtype=torch.float64)
    alphas = 1.0 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    # Ho et al. Eq. 7: beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
    posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    return DDPMSchedule(betas, alphas, alpha_bar, alpha_bar_prev, posterior_variance)
