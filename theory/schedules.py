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


def ou_alpha_beta2_float(t: float) -> tuple[float, float]:
    """(alpha_t, beta_t^2) = (exp(-t), 1 - exp(-2t)) as Python floats, for scalar code (quadrature,
    table rows): libm's ``math.exp`` / ``math.expm1``, the arithmetic those callers always used (the
    tensor functions above agree to 1 ulp; torch's vectorised exp is not libm's)."""
    t = float(t)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"OU time t must be finite and > 0, got {t}")
    return math.exp(-t), -math.expm1(-2.0 * t)


def ou_alpha_beta2_array(t):
    """(alpha_t, beta_t^2) of a float64 numpy array of OU times (numpy's exp / expm1, the arithmetic of the
    quadrature callers in theory.rules); t is checked finite and > 0."""
    import numpy as np

    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"OU time t must be finite and > 0, got {t.tolist()}")
    return np.exp(-t), -np.expm1(-2.0 * t)


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


# ----------------------------------------------------------------------------
# Noise processes: one object owns time (edm / smalldiffusion style; toolkit's own design).
#
# Every process writes its forward marginal as  x_t = a(t) x_0 + s(t) eps  and answers:
#   train_time(u)      the training-time distribution, as a map of uniforms u in [0, 1)
#   coefficients(t)    (a, s) as float64 tensors ("every coefficient lookup")
#   noise(x0, eps, t)  forward noising
#   cond(t)            the network's conditioning value (float; continuous)
#   grid(n)            the sampling grid for n steps (decreasing times)
#   ou_pair(t)         the OU pair (alpha, beta) with the same signal-to-noise ratio a / s
#   guidance_index(t)  the VP (DDPM) index of the same SNR (classifier guides and weight schedules)


class VPProcess:
    """The variance-preserving DDPM process of a ``DDPMSchedule`` with any T (Ho et al. 2020, Eq. 4).

    Time is the 0-based index i of the schedule; training draws i ~ U{1..T-1} and ancestral
    sampling walks T-1 -> 1 (IDDM; index 0 is never used). The network's conditioning value is i
    itself (the DDPM integer index is one parametrisation of the continuous noise level; the models
    embed ``t.float()``, so the int64 index and the float value condition them identically).
    """

    kind = "vp"

    def __init__(self, schedule: DDPMSchedule | None = None, T: int = 1000):
        self.schedule = schedule if schedule is not None else ddpm_schedule(T)
        self.T = self.schedule.T
        self.t_min, self.t_max = 1, self.T - 1
        self._ab32 = {}  # device -> float32 alpha_bar (kept resident: no copy per training step)

    def __repr__(self) -> str:
        return f"VPProcess(T={self.T})"

    def train_time(self, u: torch.Tensor, t_min: int | None = None) -> torch.Tensor:
        """i ~ U{t_min..t_max} from uniforms u in [0, 1) (int64; floor(u * n), as fullscale.rng.randint).

        ``t_min=0`` adds index 0: guided-diffusion's noisy classifiers train on every index 0..T-1."""
        lo = self.t_min if t_min is None else int(t_min)
        n = self.t_max - lo + 1
        return (lo + torch.floor(u * n)).to(torch.int64).clamp_(lo, self.t_max)

    def alpha_bar(self, t) -> torch.Tensor:
        return self.schedule.alpha_bar[torch.as_tensor(t, dtype=torch.long).cpu()]

    def coefficients(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, s) = (sqrt(alpha_bar_i), sqrt(1 - alpha_bar_i)), float64."""
        ab = self.alpha_bar(t)
        return ab.sqrt(), (1.0 - ab).sqrt()

    def alpha_bar32(self, device) -> torch.Tensor:
        """alpha_bar in float32 on ``device`` (cached there)."""
        if device not in self._ab32:
            self._ab32[device] = self.schedule.alpha_bar.to(device=device, dtype=torch.float32)
        return self._ab32[device]

    def train_coefficients(self, t: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, s) in float32 on ``device`` for a training batch: sqrt of the float32 alpha_bar (the
        arithmetic of the original epsilon loss, kept so training is unchanged bit for bit)."""
        ab = self.alpha_bar32(device)[t.to(device)]
        return ab.sqrt(), (1.0 - ab).sqrt()

    def noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.train_coefficients(t, x0.device)
        shape = (-1, *([1] * (x0.ndim - 1)))
        return a.view(shape).to(x0.dtype) * x0 + s.view(shape).to(x0.dtype) * eps

    def cond(self, t) -> torch.Tensor:
        """The network's conditioning value: the index i (int64, exactly what the models were always
        given; they embed ``t.float()``, so this is the continuous value i at integer points and
        net functions that index tables by t keep working)."""
        return torch.as_tensor(t).round().to(torch.int64)

    def ancestral_grid(self) -> list[int]:
        """The ancestral sampler's steps T-1 -> 1 (the paper's 999 -> 1 at T = 1000)."""
        return list(range(self.t_max, self.t_min - 1, -1))

    def grid(self, n: int, spacing: str = "even") -> list[int]:
        """n decreasing indices for a few-step sampler.

        ``even`` (ours, the default): n indices evenly spaced from T-1 down to 1, both included.
        diffusers' ``timestep_spacing`` (DDIMScheduler.set_timesteps, steps_offset = 0):
        ``linspace`` round(linspace(0, T-1, n)) reversed (ends at 0); ``leading`` k * (T // n);
        ``trailing`` round(arange(T, 0, -T / n)) - 1 (starts at T-1, ends at T/n - 1).
        """
        n = int(n)
        if not 1 <= n <= self.t_max:
            raise ValueError(f"steps must be in 1..{self.t_max}, got {n}")
        T = self.T
        if spacing == "even":
            if n == 1:
                return [self.t_max]
            span = self.t_max - self.t_min
            return sorted({round(self.t_max - k * span / (n - 1)) for k in range(n)}, reverse=True)
        if spacing == "linspace":
            import numpy as np

            return [int(v) for v in np.linspace(0, T - 1, n).round()[::-1]]
        if spacing == "leading":
            return [k * (T // n) for k in range(n)][::-1]
        if spacing == "trailing":
            import numpy as np

            return [int(v) for v in (np.round(np.arange(T, 0, -T / n)) - 1).astype(int)]
        raise ValueError(f"unknown timestep spacing {spacing!r}; choose from even, linspace, leading, trailing")

    def ou_pair(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        return self.coefficients(t)

    def ou_time(self, t) -> torch.Tensor:
        return ou_time_from_alpha_bar(self.alpha_bar(t))

    def guidance_index(self, t) -> int:
        return int(t)


class FlowProcess:
    """Rectified flow (Liu et al. 2023; Lipman et al. 2023): x_tau = (1 - tau) x_0 + tau eps, tau in [0, 1].

    Training draws tau ~ U(0, 1); the network sees ``cond_scale * tau`` (default 1000: the range of
    the DDPM index, so the models' sinusoidal time embeddings keep their frequencies; our choice).
    Samplers integrate dx/dtau = eps - x_0 from tau = 1 (pure noise) to tau = 0.
    """

    kind = "flow"

    def __init__(self, cond_scale: float = 1000.0, reference: VPProcess | None = None):
        self.cond_scale = float(cond_scale)
        self.reference = reference or VPProcess()  # for the SNR-matched DDPM index (guidance)

    def __repr__(self) -> str:
        return f"FlowProcess(cond_scale={self.cond_scale:g})"

    def train_time(self, u: torch.Tensor) -> torch.Tensor:
        return u.to(torch.float64)

    def coefficients(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        tau = torch.as_tensor(t, dtype=torch.float64)
        return 1.0 - tau, tau

    def train_coefficients(self, t: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        tau = t.to(device=device, dtype=torch.float32)
        return 1.0 - tau, tau

    def noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.train_coefficients(t, x0.device)
        shape = (-1, *([1] * (x0.ndim - 1)))
        return a.view(shape).to(x0.dtype) * x0 + s.view(shape).to(x0.dtype) * eps

    def cond(self, t) -> torch.Tensor:
        return (torch.as_tensor(t, dtype=torch.float64) * self.cond_scale).to(torch.float32)

    def grid(self, n: int, spacing: str = "even") -> list[float]:
        """n + 1 times 1 = tau_0 > ... > tau_n = 0, evenly spaced (n steps)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"steps must be >= 1, got {n}")
        if spacing != "even":
            raise ValueError(f"the flow process has only the even grid, got {spacing!r}")
        return [1.0 - k / n for k in range(n)] + [0.0]

    def ou_pair(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """The OU pair with the same SNR: (a, s) / sqrt(a^2 + s^2)."""
        a, s = self.coefficients(t)
        r = (a * a + s * s).sqrt()
        return a / r, s / r

    def ou_time(self, t) -> torch.Tensor:
        return -torch.log(self.ou_pair(t)[0])

    def guidance_index(self, t) -> int:
        """The DDPM index of the reference VP process whose alpha_bar is nearest a^2 / (a^2 + s^2)."""
        a, _ = self.ou_pair(t)
        ab = self.reference.schedule.alpha_bar
        i = int(torch.argmin((ab - a * a).abs()))
        return min(max(i, self.reference.t_min), self.reference.t_max)


PROCESSES = {"vp": VPProcess, "flow": FlowProcess}


def make_process(kind: str = "vp", **kw):
    """A noise process by name: ``vp`` (DDPM, ``T=``) or ``flow`` (rectified flow)."""
    if kind not in PROCESSES:
        raise ValueError(f"unknown noise process {kind!r}; choose from {', '.join(PROCESSES)}")
    return PROCESSES[kind](**kw)
