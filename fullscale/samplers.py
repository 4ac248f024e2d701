"""Samplers by name: plain functions of (net, x, process, seeds, guidance hook) (toolkit's design).

| name     | process | steps                  | network calls | reference                                  |
|----------|---------|------------------------|---------------|--------------------------------------------|
| ddpm     | vp      | T-1 -> 1 (ancestral)    | T-1 (999)     | Ho et al. 2020, Algorithm 2 (IDDM's loop)   |
| ddim     | vp      | ``process.grid(n)``    | n             | Song et al. 2021, Eq. 12 (eta)              |
| dpm++2m  | vp      | ``process.grid(n)``    | n             | Lu et al. 2022 (DPM-Solver++, Alg. 2, 2M)   |
| euler    | flow    | tau = 1 -> 0, n steps  | n             | Euler on dx/dtau = v                         |
| heun     | flow    | tau = 1 -> 0, n steps  | 2n - 1        | Karras et al. 2022, Algorithm 1 (Heun)      |

Every sampler takes the network as ``net(x, cond) -> output`` and the ``objective`` that trained it
(which turns the output into (x0_hat, eps_hat)); x starts as ``initial_noise(seeds, shape)``. The
per-sample noise of stochastic steps is ``step_noise(seeds, i)`` (fullscale.rng): a sample never
depends on its batch.

Guidance hook: ``guide(x, t) -> grad_x log p(y | x_t)`` at process time t, weighted by
``weight(process.guidance_index(t))`` (a float or a function of the DDPM index, as
``fullscale.guidance`` schedules are). ``ddpm`` shifts the mean (Dhariwal & Nichol 2021, Alg. 1:
mu <- mu + w sigma^2 g); the others use the score form (D&N Eq. 14): eps_hat <- eps_hat - s w g,
which for ``flow`` is v <- v - (s / a) w g (toolkit's own derivation: v = -(x + s score) / a on the
linear interpolant; a is floored at 1e-3 at tau = 1).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from fullscale import names, rng

# stream id of the initial latent x_T; sampler step i uses stream i, and i + 1 from i = _INIT_STREAM on
# (steps of a VP process with T > 1001; the streams of T = 1000 are unchanged, so old samples are too)
_INIT_STREAM = 1000


def initial_noise(seeds: torch.Tensor, shape, device=None) -> torch.Tensor:
    """x_T for each seed: N(0, I), shape [len(seeds), *shape] (float32)."""
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=device)
    return rng.normal(rng.derive(seeds, _INIT_STREAM), shape)


def step_noise(seeds: torch.Tensor, i: int, shape) -> torch.Tensor:
    """The noise z of each seed at sampler step i (the same whatever the batch)."""
    i = int(i)
    return rng.normal(rng.derive(seeds, i if i < _INIT_STREAM else i + 1), shape)


def _weight(weight, i: int) -> float:
    return float(weight(i)) if callable(weight) else float(weight)


def _work_dtype(x: torch.Tensor) -> torch.Tensor:
    """The new samplers work in float32, or in float64 when given float64 (the diffusers oracle test)."""
    return x if x.dtype == torch.float64 else x.to(torch.float32)


def _finish(x: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    return (x if offset is None else x + offset.to(x.device, x.dtype)).clamp(-1.0, 1.0)


def _cond(process, t, x):
    return process.cond(torch.full((x.shape[0],), t, dtype=torch.float64)).to(x.device)


def _tvec(t, x):
    """The time handed to a guide: int64 indices for VP (as before), float tau for flow."""
    dtype = torch.int64 if isinstance(t, int) else torch.float32
    return torch.full((x.shape[0],), t, dtype=dtype, device=x.device)


def _eps_guided(eps_hat, x, t, s, process, guide, weight):
    w = _weight(weight, process.guidance_index(t)) if guide is not None else 0.0
    if w == 0.0:
        return eps_hat
    with torch.enable_grad():
        g = guide(x, _tvec(t, x)).to(x.dtype)
    return eps_hat - s * w * g


def _check(process, kind: str, name: str, objective) -> None:
    if process.kind != kind:
        raise ValueError(f"the {name} sampler needs a {kind} model, but this one was trained with the "
                         f"{getattr(objective, 'name', '?')} objective ({process.kind} process)")


def _predict(objective, out, x, a, s):
    if objective is None or objective.name == "eps":
        return None, out  # eps models: the output is eps_hat (x0 computed by the caller's formula)
    a_t = torch.as_tensor(a, dtype=x.dtype, device=x.device)
    s_t = torch.as_tensor(s, dtype=x.dtype, device=x.device)
    return objective.predict(out, x, a_t, s_t)


@torch.no_grad()
def ddpm(net: Callable, x, process, seeds, *, objective=None, variance: str = "beta", guide=None, weight=1.0,
         progress=None, offset=None, steps=None) -> torch.Tensor:
    """Ancestral sampling over ``process.ancestral_grid()`` (999 -> 1 at T = 1000); x_0 in [-1, 1].

    mu = (x - beta_i / sqrt(1 - ab_i) eps_hat) / sqrt(alpha_i), x <- mu + sigma_i z (z = 0 at the last
    step), sigma_i^2 = beta_i (IDDM, ``variance="beta"``) or beta~_i (Ho et al. Eq. 7, ``"posterior"``).
    """
    _check(process, "vp", "ddpm", objective)
    if variance not in names.VARIANCES:
        raise ValueError(f"variance must be {' or '.join(map(repr, names.VARIANCES))}, got {variance!r}")
    s = process.schedule
    steps = process.ancestral_grid() if steps is None else list(steps)
    seeds = torch.as_tensor(seeds, dtype=torch.int64, device=x.device)
    x = x.to(torch.float32)
    var_table = s.betas if variance == "beta" else s.posterior_variance
    for i in steps:
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        alpha, ab, beta = (float(v[i]) for v in (s.alphas, s.alpha_bar, s.betas))
        _, eps_hat = _predict(objective, net(x, process.cond(t)).float(), x, ab**0.5, (1.0 - ab) ** 0.5)
        mu = (x - (beta / (1.0 - ab) ** 0.5) * eps_hat) / alpha**0.5
        var = float(var_table[i])
        w = _weight(weight, i) if guide is not None else 0.0
        if w != 0.0:
            with torch.enable_grad():
                g = guide(x, t).float()
            mu = mu + (w * var) * g
        if i > process.t_min:
            x = mu + var**0.5 * step_noise(seeds, i, x.shape[1:]).to(x.device)
        else:
            x = mu
        if progress is not None:
            progress(i)
    return _finish(x, offset)


@torch.no_grad()
def ddim(net: Callable, x, process, seeds=None, *, objective=None, steps=50, eta: float = 0.0, guide=None,
         weight=1.0, progress=None, offset=None, spacing: str = "even") -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12); ``steps`` is a count (``process.grid``) or a decreasing list.

    The last step jumps to ab = 1 (x_0 itself). eta > 0 adds noise from the per-sample ``seeds``.
    """
    _check(process, "vp", "ddim", objective)
    ab_table = process.schedule.alpha_bar
    ts = process.grid(steps, spacing) if isinstance(steps, int) else list(steps)
    if eta > 0 and seeds is None:
        raise ValueError("DDIM with eta > 0 needs per-sample seeds")
    if seeds is not None:
        seeds = torch.as_tensor(seeds, dtype=torch.int64, device=x.device)
    x = x.to(torch.float32)
    for k, i in enumerate(ts):
        t = torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
        ab = float(ab_table[i])
        ab_prev = float(ab_table[ts[k + 1]]) if k + 1 < len(ts) else 1.0
        _, eps_hat = _predict(objective, net(x, process.cond(t)).float(), x, ab**0.5, (1.0 - ab) ** 0.5)
        w = _weight(weight, i) if guide is not None else 0.0
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


def dpmpp_2m_update(x, d0, d1, a_s, s_s, a_t, s_t, h_prev=None):
    """One DPM-Solver++(2M) step from time s to t (Lu et al. 2022, Alg. 2; diffusers' "midpoint").

    lambda = log(a / s), h = lambda_t - lambda_s; with the data predictions d0 (at s) and d1 (at the
    previous time, or None for the first-order step):
        x_t = (s_t / s_s) x - a_t (e^{-h} - 1) D,   D = d0 + (d0 - d1) / (2 r),  r = h_prev / h.
    s_t = 0 (the final step) gives x_t = a_t D (first order: D = d0).
    """
    if s_t == 0.0:
        return a_t * d0
    h = math.log(a_t / s_t) - math.log(a_s / s_s)
    phi = math.expm1(-h)  # e^{-h} - 1
    if d1 is None or h_prev is None:
        return (s_t / s_s) * x - (a_t * phi) * d0
    r = h_prev / h
    return (s_t / s_s) * x - (a_t * phi) * d0 - (0.5 * a_t * phi / r) * (d0 - d1)


@torch.no_grad()
def dpmpp_2m(net: Callable, x, process, seeds=None, *, objective=None, steps=20, guide=None, weight=1.0,
             progress=None, offset=None, spacing: str = "even", until: int | None = None) -> torch.Tensor:
    """DPM-Solver++ 2M (data prediction, multistep; Lu et al. 2022) over ``process.grid(steps)`` and a
    final first-order step to x_0 (diffusers' ``lower_order_final`` with ``final_sigmas_type="zero"``).
    ``until=k``: return the raw state after k updates (no clamp; the diffusers oracle test)."""
    _check(process, "vp", "dpm++2m", objective)
    ts = process.grid(steps, spacing) if isinstance(steps, int) else list(steps)
    x = _work_dtype(x)
    d_prev, h_prev = None, None
    for k, i in enumerate(ts):
        a_s, s_s = (float(v) for v in process.coefficients(i))
        out = net(x, _cond(process, i, x)).to(x.dtype)
        x0_hat, eps_hat = _predict(objective, out, x, a_s, s_s)
        if guide is not None:
            eps_hat = _eps_guided(eps_hat, x, i, s_s, process, guide, weight)
            x0_hat = None
        if x0_hat is None:
            x0_hat = (x - s_s * eps_hat) / a_s
        if k + 1 < len(ts):
            a_t, s_t = (float(v) for v in process.coefficients(ts[k + 1]))
        else:
            a_t, s_t = 1.0, 0.0
        last = k + 1 == len(ts)
        x = dpmpp_2m_update(x, x0_hat, None if last else d_prev, a_s, s_s, a_t, s_t, h_prev)
        if s_t > 0:
            h_prev = math.log(a_t / s_t) - math.log(a_s / s_s)
        d_prev = x0_hat
        if progress is not None:
            progress(i)
        if until is not None and k + 1 >= until:
            return x
    return _finish(x, offset)


def _velocity(net, x, tau, process, objective, guide, weight):
    v = net(x, _cond(process, tau, x)).to(x.dtype)
    w = _weight(weight, process.guidance_index(tau)) if guide is not None else 0.0
    if w != 0.0:
        with torch.enable_grad():
            g = guide(x, _tvec(tau, x)).to(x.dtype)
        v = v - (tau / max(1.0 - tau, 1e-3)) * w * g
    return v


@torch.no_grad()
def euler(net: Callable, x, process, seeds=None, *, objective=None, steps=50, guide=None, weight=1.0,
          progress=None, offset=None) -> torch.Tensor:
    """Euler on the flow ODE dx/dtau = v(x, tau) from tau = 1 to 0 in ``steps`` equal steps."""
    _check(process, "flow", "euler", objective)
    ts = process.grid(steps)
    x = _work_dtype(x)
    for k in range(len(ts) - 1):
        tau, nxt = ts[k], ts[k + 1]
        x = x + (nxt - tau) * _velocity(net, x, tau, process, objective, guide, weight)
        if progress is not None:
            progress(k)
    return _finish(x, offset)


@torch.no_grad()
def heun(net: Callable, x, process, seeds=None, *, objective=None, steps=25, guide=None, weight=1.0,
         progress=None, offset=None) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, Alg. 1, without churn) on the flow ODE: 2 calls
    per step, except the last step to tau = 0, which is Euler (as in Alg. 1): 2n - 1 calls."""
    _check(process, "flow", "heun", objective)
    ts = process.grid(steps)
    x = _work_dtype(x)
    for k in range(len(ts) - 1):
        tau, nxt = ts[k], ts[k + 1]
        v = _velocity(net, x, tau, process, objective, guide, weight)
        x_e = x + (nxt - tau) * v
        if nxt == 0.0:
            x = x_e
        else:
            v2 = _velocity(net, x_e, nxt, process, objective, guide, weight)
            x = x + (nxt - tau) * 0.5 * (v + v2)
        if progress is not None:
            progress(k)
    return _finish(x, offset)


# the names are fullscale.names.SAMPLERS (torch-free, the CLI's --sampler choices); the functions in that order
SAMPLERS = dict(zip(names.SAMPLERS, (ddpm, ddim, dpmpp_2m, euler, heun), strict=True))
PROCESS_OF = {"ddpm": "vp", "ddim": "vp", "dpm++2m": "vp", "euler": "flow", "heun": "flow"}
DEFAULT_STEPS = {"ddim": 50, "dpm++2m": 20, "euler": 50, "heun": 25}


def network_calls(sampler: str, steps: int, T: int | None = None) -> int:
    """Network evaluations per sample (``ddpm``: T - 1, T of the default VP process unless given;
    ``heun``: 2n - 1; others: 1 per step)."""
    if sampler == "ddpm" and not T:
        from theory.schedules import VPProcess

        T = VPProcess().T
    return T - 1 if sampler == "ddpm" else 2 * int(steps) - 1 if sampler == "heun" else int(steps)


def check_pair(sampler: str, objective: str) -> None:
    """ValueError (one sentence) when ``sampler`` cannot sample a model trained with ``objective``."""
    from fullscale.objectives import OBJECTIVES

    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    kind = OBJECTIVES[objective].process_kind
    if PROCESS_OF[sampler] != kind:
        fits = ", ".join(k for k, v in PROCESS_OF.items() if v == kind)
        raise ValueError(f"the {sampler} sampler cannot sample a model trained with the {objective} objective "
                         f"({kind} process); use {fits}")


def sample(name: str, net, x, process, seeds, **kw) -> torch.Tensor:
    """Run the sampler ``name`` (see the table above)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    if name == "ddpm":
        kw.pop("steps", None)
    kw.pop("eta", None) if name != "ddim" else None
    kw.pop("variance", None) if name != "ddpm" else None
    return SAMPLERS[name](net, x, process, seeds, **kw)
