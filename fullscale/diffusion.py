"""DDPM for the rules paper: the old entry points, now thin wrappers over the noise process
(``theory.schedules.VPProcess``), the objectives (:mod:`fullscale.objectives`) and the samplers
(:mod:`fullscale.samplers`). Kept so existing callers (baselines, ladder, benchmarks, tests) run.

Schedule: ``theory.ddpm_schedule()`` (T = 1000, beta linear 1e-4 -> 0.02), indexed 0..T-1 like
IDDM's arrays. The paper's code (IDDM fork) trains on t ~ U{1..T-1} and samples i = T-1 -> 1, so
index 0 is never used; ``VPProcess`` keeps exactly that. ``T_MIN``/``T_MAX`` are the default
process's range (no literal step count outside the process).

Loss (Ho et al. 2020, Eq. 14): ``EpsilonLoss`` = the ``eps`` objective. Ancestral step (Ho et al.
Algorithm 2, as in IDDM), DDIM (Song et al. 2021, Eq. 12) and the guidance hook (Dhariwal & Nichol
2021, Algorithm 1 and Eq. 14): see :mod:`fullscale.samplers`.
"""

from __future__ import annotations

from typing import Callable

import torch

from fullscale.objectives import EpsObjective
from fullscale.samplers import _INIT_STREAM, _finish, initial_noise, step_noise  # noqa: F401
from fullscale import samplers
from theory.schedules import VPProcess

DEFAULT_PROCESS = VPProcess()
T_MIN, T_MAX = DEFAULT_PROCESS.t_min, DEFAULT_PROCESS.t_max  # 1, T - 1


def _process(schedule=None) -> VPProcess:
    return DEFAULT_PROCESS if schedule is None or schedule is DEFAULT_PROCESS.schedule else VPProcess(schedule)


def _coef(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast against x (values already on x's device)."""
    return values[t].view(-1, *([1] * (x.ndim - 1)))


# the eps objective under its old name (one class: patching EpsilonLoss patches the trainer's loss)
EpsilonLoss = EpsObjective


def ddpm_sample(net: Callable, x: torch.Tensor, seeds: torch.Tensor, *, steps=None, variance: str = "beta",
                guide: Callable | None = None, weight=1.0, schedule=None, progress: Callable | None = None,
                offset: torch.Tensor | None = None, objective=None) -> torch.Tensor:
    """Ancestral DDPM sampling from x = x_T over ``steps`` (default T-1 -> 1); see ``samplers.ddpm``."""
    return samplers.ddpm(net, x, _process(schedule), seeds, objective=objective, steps=steps, variance=variance,
                         guide=guide, weight=weight, progress=progress, offset=offset)


def ddim_timesteps(n_steps: int, schedule=None) -> list[int]:
    """``n_steps`` evenly spaced timesteps from T-1 down to 1 (inclusive): ``VPProcess.grid``."""
    return _process(schedule).grid(n_steps)


def ddim_sample(net: Callable, x: torch.Tensor, seeds: torch.Tensor | None = None, *, steps=50, eta: float = 0.0,
                guide: Callable | None = None, weight=1.0, schedule=None, progress: Callable | None = None,
                offset: torch.Tensor | None = None, objective=None, spacing: str = "even") -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) from x_T; see ``samplers.ddim``."""
    return samplers.ddim(net, x, _process(schedule), seeds, objective=objective, steps=steps, eta=eta, guide=guide,
                         weight=weight, progress=progress, offset=offset, spacing=spacing)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] NCHW -> uint8 NHWC (rounded; IDDM truncates, a <= 1/255 difference)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0)
