"""Training objectives by name: ``eps`` (default), ``x0``, ``v`` and ``flow``; the loss owns the noise.

Each objective pairs a noise process (``theory.schedules``) with a regression target. With the
forward marginal x_t = a x_0 + s eps (a, s from ``process.coefficients``):

| name  | process | the network predicts                     | reference                          |
|-------|---------|------------------------------------------|------------------------------------|
| eps   | vp      | eps (Ho et al. 2020, Eq. 14, L_simple)    | the rules paper / IDDM             |
| x0    | vp      | x_0                                      | (Ho et al. 2020, Sec. 3.2 option)  |
| v     | vp      | v = a eps - s x_0                        | Salimans & Ho 2022, Eq. 9 (a^2 + s^2 = 1) |
| flow  | flow    | velocity dx/dtau = eps - x_0             | Liu et al. 2023 (rectified flow)    |

``predict(out, x, a, s) -> (x0_hat, eps_hat)`` turns any network output into both predictions, so
every sampler works from the same two quantities (inverting x = a x0 + s eps; for v: x0 = a x - s v,
eps = s x + a v, valid because a^2 + s^2 = 1 on the VP process; for flow: x0 = x - tau v,
eps = x + (1 - tau) v with tau = s, 1 - tau = a).

The loss draws each example's time and noise from its int64 key (:mod:`fullscale.rng`): the time
from ``rng.unit64(derive(key, 1))`` through ``process.train_time``, the noise from ``derive(key, 2)``.
For ``eps`` this is the draw of the original ``EpsilonLoss`` bit for bit.

Adding an objective: a class here with ``name``, ``process_kind``, ``target`` and ``predict``, and
one line in ``OBJECTIVES`` (docs/extending.md, "Add an objective").
"""

from __future__ import annotations

import torch

from fullscale import rng
from theory.schedules import make_process

# purposes mixed into training keys, so the time and noise streams are independent
_PURPOSE_T, _PURPOSE_EPS = 1, 2


def _shape(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return c.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)


class Objective:
    """Per-example MSE between the network output and ``target`` at a time drawn by the process."""

    name = ""
    process_kind = "vp"

    def __init__(self, process=None, schedule=None):
        from theory.schedules import DDPMSchedule, VPProcess

        if isinstance(process, DDPMSchedule):  # the old EpsilonLoss(schedule) call
            process, schedule = None, process
        if schedule is not None:
            process = VPProcess(schedule)
        self.process = process if process is not None else make_process(self.process_kind)
        if self.process.kind != self.process_kind:
            raise ValueError(f"objective {self.name} needs the {self.process_kind} noise process, got {self.process!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.process!r})"

    def draw(self, keys: torch.Tensor, shape) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, eps) for examples with the given int64 keys; ``shape`` is one example's shape."""
        t = self.process.train_time(rng.unit64(rng.derive(keys, _PURPOSE_T)))
        eps = rng.normal(rng.derive(keys, _PURPOSE_EPS), shape)
        return t, eps

    def target(self, x0, eps, a, s):
        raise NotImplementedError

    def predict(self, out, x, a, s) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, net, x0: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Loss per example, shape [B] (mean over pixels); x0 NCHW."""
        t, eps = self.draw(keys, x0.shape[1:])
        eps = eps.to(x0.device, x0.dtype)
        t = t.to(x0.device)
        a, s = self.process.train_coefficients(t, x0.device)
        a, s = _shape(a, x0), _shape(s, x0)
        xt = a * x0 + s * eps
        out = net(xt, self.process.cond(t)).float()
        return (out - self.target(x0, eps, a, s).float()).square().flatten(1).mean(1)


class EpsObjective(Objective):
    """Today's DSM: predict eps (Ho et al. 2020, Eq. 14)."""

    name = "eps"

    @property
    def schedule(self):
        """The DDPM schedule (the old ``EpsilonLoss.schedule``)."""
        return self.process.schedule

    def alpha_bar(self, device) -> torch.Tensor:
        """float32 alpha_bar on ``device`` (the old ``EpsilonLoss.alpha_bar``)."""
        return self.process.alpha_bar32(device)

    def target(self, x0, eps, a, s):
        return eps

    def predict(self, out, x, a, s):
        return (x - s * out) / a, out


class X0Objective(Objective):
    """Predict x_0 (the data-prediction parametrisation)."""

    name = "x0"

    def target(self, x0, eps, a, s):
        return x0

    def predict(self, out, x, a, s):
        return out, (x - a * out) / s


class VObjective(Objective):
    """Predict v = a eps - s x_0 (Salimans & Ho 2022, Eq. 9)."""

    name = "v"

    def target(self, x0, eps, a, s):
        return a * eps - s * x0

    def predict(self, out, x, a, s):
        return a * x - s * out, s * x + a * out


class FlowObjective(Objective):
    """Rectified flow: predict the velocity eps - x_0 of x_tau = (1 - tau) x_0 + tau eps."""

    name = "flow"
    process_kind = "flow"

    def target(self, x0, eps, a, s):
        return eps - x0

    def predict(self, out, x, a, s):
        return x - s * out, x + a * out


OBJECTIVES = {cls.name: cls for cls in Objective.__subclasses__() if cls.name}  # every objective of this file, in order
DEFAULT = "eps"


def get(name: str = DEFAULT, process=None) -> Objective:
    """The objective ``name`` (``eps``, ``x0``, ``v`` or ``flow``) on its noise process."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](process)
