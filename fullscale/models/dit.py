"""DiT (Peebles & Xie 2023, facebookresearch/DiT ``models.py``) in plain torch with SDPA, no timm.

As the rules paper's code uses it: unconditional (no label embedding), ``learn_sigma=False``, pixel
space, 3 channels, 32 px, patch 2 (256 tokens). adaLN-Zero blocks; fixed 2-D sin-cos position
embedding (a buffer, so it is not counted as a parameter); the timestep embedder is the sinusoidal
frequency embedding (256) -> Linear -> SiLU -> Linear of DiT; initialisation as in DiT.
    DiT-S/2: depth 12, hidden 384, 6 heads.   DiT-B/2: depth 12, hidden 768, 12 heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def frequency_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """DiT ``TimestepEmbedder.timestep_embedding``: [cos(t f_k), sin(t f_k)], f_k = P^(-k/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """MAE/DiT fixed 2-D sin-cos position embedding, [grid*grid, dim]; as DiT, the first half
    encodes the column index (``np.meshgrid`` "xy" order)."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    gw, gh = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="xy")
    return torch.cat([one_d(dim // 2, gw), one_d(dim // 2, gh)], dim=1).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    """adaLN-Zero block: x + g1 * Attn(mod(LN(x))) ; x + g2 * MLP(mod(LN(x)))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.ada(F.silu(c)).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, sc2))


class DiT(nn.Module):
    def __init__(self, depth=12, hidden=384, heads=6, patch=2, image_size=32, in_channels=3, mlp_ratio=4.0):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not divisible by the patch size {patch}")
        self.patch, self.channels, self.grid = patch, in_channels, image_size // patch
        self.x_embed = nn.Conv2d(in_channels, hidden, patch, stride=patch)
        self.t_embed = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.register_buffer("pos", sincos_2d(hidden, self.grid)[None], persistent=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden, heads, mlp_ratio) for _ in range(depth))
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.ada_final = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, patch * patch * in_channels)
        self._init()

    def _init(self):  # DiT ``initialize_weights``
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embed.bias)
        nn.init.normal_(self.t_embed[0].weight, std=0.02)
        nn.init.normal_(self.t_embed[2].weight, std=0.02)
        for lin in [b.ada for b in self.blocks] + [self.ada_final, self.out]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, t):
        b = x.shape[0]
        h = self.x_embed(x).flatten(2).transpose(1, 2) + self.pos.to(x.dtype)
        c = self.t_embed(frequency_embedding(t).to(h.dtype))
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.ada_final(F.silu(c)).chunk(2, dim=1)
        h = self.out(modulate(self.norm_final(h), shift, scale))  # [B, N, p*p*C]
        p, g, ch = self.patch, self.grid, self.channels
        return h.view(b, g, g, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(b, ch, g * p, g * p)


def dit_s2(image_size: int = 32) -> DiT:
    return DiT(depth=12, hidden=384, heads=6, patch=2, image_size=image_size)


def dit_b2(image_size: int = 32) -> DiT:
    return DiT(depth=12, hidden=768, heads=12, patch=2, image_size=image_size)
