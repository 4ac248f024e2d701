"""Classifier guidance for the DDPM samplers (Dhariwal & Nichol 2021, Algorithm 1; protocol Sec. 6.2).

At sampler step i (T-1 -> 1; 999 -> 1 at T = 1000) the posterior mean is shifted towards rule-conforming images,

    mu <- mu + w_i sigma_i^2 grad_x log p(y = 1 | x_i, i),

by ``fullscale.diffusion.ddpm_sample``'s guidance hook (``guide`` = the gradient below, ``weight`` = w_i).
sigma_i^2 is the sampler's variance: the posterior variance beta~_i of the protocol with
``variance="posterior"`` (``dmrules sample --variance posterior``), beta_i with the default (IDDM's
sampler). DDIM uses the score form eps <- eps - sqrt(1 - ab_i) w_i g (Dhariwal & Nichol Eq. 14).

The gradient is guided-diffusion's ``cond_fn`` (scripts/classifier_sample.py) without the scale:
``grad_x log_softmax(classifier(x_t, t))[y]`` with y = 1, the rule-conforming class.

Weight schedules (the authors' ``--time_schedule``, protocol Sec. 6.2; s = scale, T = 1000):

    constant      w_i = s
    linear        w_i = s + 3 (1 - i/T)
    quadratic     w_i = s + 3 (1 - i/T)^2
    exponential   w_i = s + 3 (1 - exp(-5 (1 - i/T)))
    piecewise     w_i = s (20 - i) / 20 for i <= 20, else 0   (only the last 20 steps; the authors
                  spelled it "pisewise"; the weight ramps from 0.05 s at i = 19 to 0.95 s at i = 1)

Note (the authors' formulas, kept exactly): linear, quadratic and exponential add 3 (...) to s, so
their weight is not zero at s = 0; only constant and piecewise reduce to the unguided sampler at s = 0.
"""

from __future__ import annotations

import math
from typing import Callable

from theory.schedules import VPProcess

SCHEDULES = ("constant", "linear", "quadratic", "exponential", "piecewise")
T = VPProcess().T  # the DDPM schedule's length (1000): the authors' weight schedules count in its steps
PIECEWISE_STEPS = 20
RAMP = 3.0  # the authors' additive ramp height for linear / quadratic / exponential
TARGET = 1  # the rule-conforming class of the contrastive data


def schedule_weight(schedule: str, scale: float, i: int) -> float:
    """w_i of a schedule at sampler step i (1..T-1; samplers of other processes pass the SNR-matched index)."""
    u = 1.0 - i / T  # 0 at the start of sampling (i = T), -> 1 at the end
    if schedule == "constant":
        return scale
    if schedule == "linear":
        return scale + RAMP * u
    if schedule == "quadratic":
        return scale + RAMP * u**2
    if schedule == "exponential":
        return scale + RAMP * (1.0 - math.exp(-5.0 * u))
    if schedule == "piecewise":
        return scale * (PIECEWISE_STEPS - i) / PIECEWISE_STEPS if i <= PIECEWISE_STEPS else 0.0
    raise ValueError(f"unknown guidance schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")


def weight_schedule(schedule: str = "constant", scale: float = 1.0) -> Callable[[int], float]:
    """``i -> w_i`` for the sampler hook; ValueError on an unknown schedule or a non-finite scale."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown guidance schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"the guidance scale must be a finite number, got {scale}")

    def weight(i: int) -> float:
        return schedule_weight(schedule, scale, int(i))

    weight.schedule, weight.scale = schedule, scale
    return weight


class ClassifierGuide:
    """``guide(x, t) -> grad_x log p(y = target | x_t, t)`` for a time-conditioned classifier.

    The classifier runs in eval mode, in float32 (``bf16=None``: bf16 autocast on CUDA, where the
    paper-size guide costs more than the denoiser); the gradient is float32 either way. The gradient
    of example k depends on example k only (no batch statistics), so guided samples keep their
    per-sample seeds' meaning.

    ``offset``: the mean image m of a run trained on centred data (``RunConfig.center``). Its sampler
    moves x~_t = sqrt(ab_t) (x_0 - m) + sqrt(1 - ab_t) eps, while the classifier was trained on
    x_t = x~_t + sqrt(ab_t) m; the guide evaluates the classifier there (the gradient is the same in
    both coordinates, since they differ by a shift).

    ``process``: the noise process of the samples being guided (default: the DDPM process the
    classifier was trained on). For a flow model the state x_tau = (1 - tau) x_0 + tau eps is mapped to
    the DDPM state of the same SNR, x_i = x_tau / sqrt(a^2 + s^2) at i = ``process.guidance_index(tau)``
    (toolkit's own derivation), and the gradient is taken through that map.
    """

    def __init__(self, classifier, target: int = TARGET, bf16: bool | None = None, offset=None, process=None):
        self.net = classifier.eval().requires_grad_(False)
        self.target = int(target)
        self.bf16 = bf16
        self.offset = offset
        self.process = process if process is not None else VPProcess()
        self._vp = self.process if self.process.kind == "vp" else self.process.reference
        self._sqrt_ab = self._vp.schedule.alpha_bar.sqrt().float() if offset is not None else None

    def log_prob(self, x, t):
        import contextlib

        import torch
        import torch.nn.functional as F

        amp = x.is_cuda if self.bf16 is None else self.bf16 and x.is_cuda
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        with ctx:
            logits = self.net(x, t)
        return F.log_softmax(logits.float(), dim=-1)[:, self.target]

    def __call__(self, x, t):
        import torch

        with torch.enable_grad():
            x_in = x.detach().float().requires_grad_(True)
            x_clf = x_in
            if self.process.kind != "vp":  # the DDPM state of the same SNR (see the class docstring)
                tau = float(t.reshape(-1)[0])
                a, s = (float(v) for v in self.process.coefficients(tau))
                x_clf = x_in / math.hypot(a, s)
                t = torch.full_like(t, self.process.guidance_index(tau), dtype=torch.int64)
            if self.offset is not None:
                shift = self._sqrt_ab.to(x.device)[t].view(-1, *([1] * (x.ndim - 1)))
                x_clf = x_in + shift * self.offset.to(x.device, torch.float32)
            return torch.autograd.grad(self.log_prob(x_clf, t).sum(), x_in)[0]


def run_offset(run_dir):
    """The mean image a centred DDPM run was trained without (``None`` for an uncentred run)."""
    from fullscale.train import load_checkpoint

    ckpt = load_checkpoint(run_dir)
    return None if ckpt is None else ckpt.get("offset")


def load_guide(path, task: str, image_size: int, device="cpu", target: int = TARGET, offset=None, process=None):
    """(ClassifierGuide, meta) from a classifier directory; ValueError (one sentence) when the
    classifier is clean, or was trained for another task or image size. ``offset``: see ClassifierGuide."""
    from fullscale.classify import load_classifier

    net, meta = load_classifier(path, device)
    if not meta["noisy"]:
        raise ValueError(f"{path} is a clean {meta['arch']} classifier; guidance needs a noisy (time-conditioned) "
                         f"one: train it with `dmrules classifier train --noisy`")
    if meta["task"] != task:
        raise ValueError(f"{path} is a classifier for Task {meta['task']}, but the samples are Task {task}")
    if int(meta["image_size"]) != int(image_size):
        raise ValueError(f"{path} was trained on {meta['image_size']} px images, but the run samples "
                         f"{image_size} px images")
    return ClassifierGuide(net, target, offset=offset, process=process), meta


def from_cli(path, scale, schedule, task: str, image_size: int, device="cpu", log=print, run=None, process=None):
    """(guide, weight, meta for the sample request) for ``dmrules sample RUN --guide C --scale W --schedule S``
    (``run``: the DDPM run, whose mean image is used when it was trained on centred data)."""
    scale = 1.0 if scale is None else float(scale)
    schedule = schedule or "constant"
    weight = weight_schedule(schedule, scale)
    guide, meta = load_guide(path, task, image_size, device, offset=None if run is None else run_offset(run),
                             process=process)
    if not meta["finished"]:
        log(f"[guide] warning: {path} stopped at step {meta['step']} of {meta['steps']} (unfinished)")
    from pathlib import Path

    marks = (T - 1, T // 2, 20, 1)
    log(f"[guide] {meta['arch']} noisy classifier {path}, {schedule} schedule, scale {scale:g} "
        f"(w at i = {', '.join(map(str, marks))}: " + ", ".join(f"{weight(i):.3g}" for i in marks) + ")")
    request = {"guide": str(Path(path).resolve()), "scale": scale, "schedule": schedule}
    return guide, weight, request
