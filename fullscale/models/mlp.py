"""The rules paper's MLP denoiser (its fork of lucidrains' ``MLP`` from autoregressive-diffusion-pytorch).

Input: the flattened image (3 x 32 x 32 = 3072). Time: learned sinusoidal embedding
[t, sin(2 pi t w), cos(2 pi t w)] (w ~ N(0, 1), dim/2 learned frequencies) -> Linear(dim + 1, dim).
``depth`` residual blocks, each
    h <- h + Block(AdaLN(h; e)) * (1 + G e),   AdaLN(h; e) = LN(h) * (1 + Gamma e),
    Block = Linear(dim, width) -> SiLU -> Linear(width, dim),
with Gamma and G zero-initialised (so the block starts as an identity-scaled MLP).
Paper: depth 3, width 1024.

Deviation (documented in docs/ddpm.md): the fork feeds the integer step t in 0..999 into the
learned frequencies; we feed t / 1000 as lucidrains' original does (continuous time in [0, 1]),
since 2 pi t w with t ~ 1000 and w ~ N(0, 1) aliases into noise.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnedSinusoidal(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim must be even, got {dim}")
        self.w = nn.Parameter(torch.randn(dim // 2))

    def forward(self, t):
        t = t[:, None]
        f = t * self.w[None] * (2 * math.pi)
        return torch.cat([t, f.sin(), f.cos()], dim=-1)


class MLPDenoiser(nn.Module):
    def __init__(self, image_size: int = 32, channels: int = 3, depth: int = 3, width: int = 1024):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        dim = math.prod(self.shape)
        self.time = nn.Sequential(LearnedSinusoidal(dim), nn.Linear(dim + 1, dim))
        self.ln = nn.ModuleList(nn.LayerNorm(dim, elementwise_affine=False) for _ in range(depth))
        self.gamma = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(depth))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, dim)) for _ in range(depth))
        self.out_gamma = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(depth))
        for lin in list(self.gamma) + list(self.out_gamma):
            nn.init.zeros_(lin.weight)

    def forward(self, x, t):
        b = x.shape[0]
        h = x.reshape(b, -1)
        e = self.time(t.to(h.dtype) / 1000.0)
        for ln, gamma, block, out_gamma in zip(self.ln, self.gamma, self.blocks, self.out_gamma):
            h = h + block(ln(h) * (gamma(e) + 1.0)) * (out_gamma(e) + 1.0)
        return h.view(b, *self.shape)


def mlp(image_size: int = 32) -> MLPDenoiser:
    return MLPDenoiser(image_size=image_size)

