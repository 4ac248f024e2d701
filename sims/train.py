"""Stacked training: one optimiser step moves all M models, on the sum of their losses.

Why the sum: plain GD and Adam update every parameter entry independently, so the gradient of
sum_i L_i(theta_i) with respect to the stacked theta is [grad L_1(theta_1), ..., grad L_M(theta_M)]
and every model follows exactly its own trajectory (no averaging over models, no global clipping,
per-model data, noise and seeds). ``tests/sims/test_train.py`` checks stacked == one-by-one.

Also here:
- :func:`span_basis` - the exact dimension reduction used by the feature-learning sims (ours): for
  losses that depend on the weights only through inner products <w_r, w_s> and <w_r, x> with fixed
  data x (the closed-form DSM loss, the classifier), the gradient stays in span{W0, data}, so GD on
  the coordinates W~ = W Q in an orthonormal basis Q of that span is GD on W, exactly. It replaces d
  (1000) by at most (#filters + #data vectors).
- :func:`log_steps` - geometric + linear logging grid (early growth and late plateau both visible).
- :class:`Checkpoint` - atomic, time-based state snapshots so a killed sweep resumes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch


def log_steps(total: int, n_log: int = 40) -> list[int]:
    """Sorted unique steps in [0, total]: half geometric (1, 2, 4, ...), half evenly spaced."""
    if total <= 0:
        return [0]
    half = max(n_log // 2, 2)
    geo = np.geomspace(1, total, half).round().astype(int)
    lin = np.linspace(0, total, half).round().astype(int)
    return sorted({0, total, *geo.tolist(), *lin.tolist()})


def span_basis(rows: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``Q`` [d, k] (k = min(d, R)) whose span contains the R rows [R, d].

    Householder QR of rows^T: rows^T = Q R, so every row lies in span(Q) even when the rows are
    rank deficient (Q stays orthonormal). Exactness of the reduction needs only that containment.
    """
    Q, _ = torch.linalg.qr(rows.T, mode="reduced")
    return Q


def pad_to(t: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Zero-pad ``t`` along ``dim`` up to ``size``."""
    extra = size - t.shape[dim]
    if extra <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


def stack_padded(tensors: list[torch.Tensor], dims: tuple[int, ...] = (0,)) -> torch.Tensor:
    """Stack per-model tensors on a new leading axis, zero-padding the given dims to the max size."""
    out = []
    for t in tensors:
        for dim in dims:
            t = pad_to(t, max(x.shape[dim] for x in tensors), dim)
        out.append(t)
    return torch.stack(out)


class Checkpoint:
    """Time-based atomic snapshots of a training state (a dict of tensors / Python scalars).

    ``save`` goes through a temporary file; ``load`` uses ``torch.load(weights_only=True)``.
    """

    def __init__(self, path: str | Path | None, every_s: float = 60.0):
        self.path = Path(path) if path is not None else None
        self.every_s = every_s
        self._last = time.monotonic()

    def load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        from dmrules.core.results import torch_load

        return torch_load(self.path, "sims checkpoint")  # a damaged file: one line naming it (issue 12)

    def due(self) -> bool:
        return self.path is not None and time.monotonic() - self._last >= self.every_s

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        from dmrules.core.results import torch_save

        torch_save(state, self.path)
        self._last = time.monotonic()

    def clear(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def gradient_descent(
    params: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, int], torch.Tensor],
    lr: torch.Tensor | float,
    steps: int,
    on_log: Callable[[int, torch.Tensor, torch.Tensor], None],
    log_at: list[int],
    start_step: int = 0,
    on_checkpoint: Callable[[int, torch.Tensor], None] | None = None,
    progress=None,
) -> torch.Tensor:
    """Full-batch GD on stacked parameters ``[M, ...]``: theta_i <- theta_i - lr_i grad L_i(theta_i).

    ``loss_fn(params, step)`` returns per-model losses ``[M]``; ``lr`` is a scalar or ``[M]``.
    ``on_log(step, params, losses)`` is called at every step in ``log_at`` (losses evaluated at
    those params, before the update). ``on_checkpoint(step, params)`` is offered every step (it
    decides itself whether to write). Returns the parameters after ``steps`` steps.
    """
    params = params.detach().clone()
    M = params.shape[0]
    if not torch.is_tensor(lr):
        lr = torch.full((M,), float(lr), dtype=params.dtype, device=params.device)
    lr = lr.to(params).reshape(M, *([1] * (params.dim() - 1)))
    logs = set(log_at)
    for step in range(start_step, steps + 1):
        p = params.requires_grad_(True)
        losses = loss_fn(p, step)
        if step in logs:
            on_log(step, params.detach(), losses.detach())
        if step == steps:
            break
        (grad,) = torch.autograd.grad(losses.sum(), p)
        params = (params.detach() - lr * grad).detach()
        if progress is not None:
            progress.update(M)
        if on_checkpoint is not None:
            on_checkpoint(step + 1, params)
    return params.detach()
