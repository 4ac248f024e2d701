"""The rules paper's U-Net: IDDM's ``UNet`` (chairc/Integrated-Design-Diffusion-Model, itself the
dome272 "Diffusion-Models-pytorch" U-Net), rewritten in plain torch with SDPA attention.

Paper configuration (rules-paper protocol Sec. 2.2): stem DoubleConv(3 -> 64); Down(64 -> 128) + SA,
Down(128 -> 256) + SA, Down(256 -> 256) + SA; bottleneck DoubleConv 256 -> 512 -> 512 -> 256;
Up(512 -> 128) + SA, Up(256 -> 64) + SA, Up(128 -> 64) + SA; 1x1 conv to 3 channels. SiLU,
GroupNorm(1), sinusoidal time embedding of the integer step t with 256 channels, added per channel
after each Down/Up block through SiLU + Linear. Self-attention: LayerNorm -> 4-head MHA -> residual,
then LayerNorm -> Linear -> SiLU -> Linear -> residual.

``UNet`` is written for any channel list. ``ResUNet`` (end of file) is the small CPU model (ours).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """IDDM ``pos_encoding``: [sin(t w_k), cos(t w_k)], w_k = 10000^(-2k/dim), k < dim/2."""
    k = torch.arange(0, dim, 2, device=t.device, dtype=torch.float32)
    args = t.float()[:, None] / (10000.0 ** (k / dim))[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class DoubleConv(nn.Module):
    """conv3x3 -> GN(1) -> SiLU -> conv3x3 -> GN(1); the residual variant returns SiLU(x + f(x))."""

    def __init__(self, c_in: int, c_out: int, c_mid: int | None = None, residual: bool = False):
        super().__init__()
        c_mid = c_mid or c_out
        self.residual = residual
        self.f = nn.Sequential(
            nn.Conv2d(c_in, c_mid, 3, padding=1, bias=False),
            nn.GroupNorm(1, c_mid),
            nn.SiLU(),
            nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(1, c_out),
        )

    def forward(self, x):
        return F.silu(x + self.f(x)) if self.residual else self.f(x)


class Down(nn.Module):
    """maxpool 2 -> DoubleConv(res) -> DoubleConv -> + Linear(SiLU(emb)) per channel."""

    def __init__(self, c_in: int, c_out: int, emb: int):
        super().__init__()
        self.conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(c_in, c_in, residual=True), DoubleConv(c_in, c_out))
        self.emb = nn.Linear(emb, c_out)

    def forward(self, x, e):
        return self.conv(x) + self.emb(F.silu(e))[:, :, None, None]


class Up(nn.Module):
    """bilinear x2 (align_corners) -> concat(skip, x) -> DoubleConv(res) -> DoubleConv(mid c_in/2) -> + emb."""

    def __init__(self, c_in: int, c_out: int, emb: int):
        super().__init__()
        self.conv = nn.Sequential(DoubleConv(c_in, c_in, residual=True), DoubleConv(c_in, c_out, c_in // 2))
        self.emb = nn.Linear(emb, c_out)

    def forward(self, x, skip, e):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        x = self.conv(torch.cat([skip, x], dim=1))
        return x + self.emb(F.silu(e))[:, :, None, None]


class SelfAttention(nn.Module):
    """IDDM SelfAttention over the H*W tokens (same parameters as ``nn.MultiheadAttention``)."""

    def __init__(self, c: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.ln = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.out = nn.Linear(c, c)
        self.ff = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, c), nn.SiLU(), nn.Linear(c, c))

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.qkv(self.ln(tokens)).view(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        tokens = tokens + self.out(a)
        tokens = tokens + self.ff(tokens)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """IDDM U-Net. ``channels`` = (stem, level 1, ..., level L); ``attention[k]`` adds SA after the
    k-th Down and the matching Up; the bottleneck is DoubleConv c_L -> b -> b -> c_L."""

    def __init__(self, channels=(64, 128, 256, 256), bottleneck=512, attention=(True, True, True),
                 time_channels=256, in_channels=3, image_size=32):
        super().__init__()
        levels = len(channels) - 1
        if len(attention) != levels:
            raise ValueError(f"need one attention flag per level ({levels}), got {attention}")
        if image_size % (2**levels):
            raise ValueError(f"image size {image_size} is not divisible by 2^{levels}")
        c = list(channels)
        self.time_channels = time_channels
        self.inc = DoubleConv(in_channels, c[0])
        self.downs = nn.ModuleList(Down(c[k], c[k + 1], time_channels) for k in range(levels))
        self.down_attn = nn.ModuleList(SelfAttention(c[k + 1]) if attention[k] else nn.Identity() for k in range(levels))
        self.bot = nn.Sequential(DoubleConv(c[-1], bottleneck), DoubleConv(bottleneck, bottleneck),
                                 DoubleConv(bottleneck, c[-1]))
        ups, up_attn, h = [], [], c[-1]
        for k in range(levels, 0, -1):  # Up k consumes the skip of level k-1
            out = c[max(k - 2, 0)]
            ups.append(Up(h + c[k - 1], out, time_channels))
            up_attn.append(SelfAttention(out) if attention[k - 1] else nn.Identity())
            h = out
        self.ups, self.up_attn = nn.ModuleList(ups), nn.ModuleList(up_attn)
        self.outc = nn.Conv2d(c[0], in_channels, 1)

    def forward(self, x, t):
        e = timestep_embedding(t, self.time_channels).to(x.dtype)
        skips = [self.inc(x)]
        for down, attn in zip(self.downs, self.down_attn):
            skips.append(attn(down(skips[-1], e)))
        h = self.bot(skips.pop())
        for up, attn in zip(self.ups, self.up_attn):
            h = attn(up(h, skips.pop(), e))
        return self.outc(h)


def paper_unet(image_size: int = 32) -> UNet:
    """The paper's U-Net (channels 64-128-256-512, SA at every level)."""
    return UNet((64, 128, 256, 256), 512, (True, True, True), image_size=image_size)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)



# ----------------------------------------------------------------------------
# A small DDPM-style U-Net for CPU runs (ours; Ho et al. 2020 / improved-diffusion ResBlocks):
# the residual stream carries the input from the stem to the head, so eps ~ x_t at high noise is
# easy to represent, and the time embedding enters every block.


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c // 4) or 1, c)


class ResBlock(nn.Module):
    """GN -> SiLU -> conv3x3 -> + Linear(SiLU(emb)) -> GN -> SiLU -> conv3x3, plus a (1x1) skip."""

    def __init__(self, c_in: int, c_out: int, emb: int):
        super().__init__()
        self.n1, self.c1 = _gn(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, c_out)
        self.n2, self.c2 = _gn(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, e):
        h = self.c1(F.silu(self.n1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class ResUNet(nn.Module):
    """conv_in -> [ResBlock, down] x L -> ResBlock + SA + ResBlock -> [up, concat, ResBlock] x L -> GN, SiLU, conv_out.

    ``patch`` > 1 puts a pixel-unshuffle before the stem and a pixel-shuffle after the head (ours,
    the patchify idea of DiT applied to a U-Net): each patch x patch block of pixels becomes
    3 patch^2 channels, so the first level runs at image_size / patch and a training step costs
    about patch^2 times fewer FLOPs (0.21 vs 0.80 GFLOP forward + backward per 32 px image for
    32-64-64); the head predicts the 3 patch^2 sub-pixel channels, shuffled back. ``mid_attention``
    switches the bottleneck's self-attention off. patch = 1 with mid_attention is the original model."""

    def __init__(self, channels=(32, 64, 64), attention=(False, False, True), time_channels=128,
                 in_channels=3, image_size=32, patch=1, mid_attention=True):
        super().__init__()
        levels = len(channels)
        if image_size % (patch * 2 ** (levels - 1)):
            raise ValueError(f"image size {image_size} is not divisible by {patch} x 2^{levels - 1}")
        c = list(channels)
        self.time_channels, self.patch = time_channels, patch
        in_channels, out_channels = in_channels * patch**2, in_channels
        self.t_mlp = nn.Sequential(nn.Linear(time_channels, 2 * time_channels), nn.SiLU(),
                                   nn.Linear(2 * time_channels, 2 * time_channels), nn.SiLU())
        emb = 2 * time_channels
        self.conv_in = nn.Conv2d(in_channels, c[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        prev = c[0]
        for k in range(levels):
            self.down.append(ResBlock(prev, c[k], emb))
            self.down_attn.append(SelfAttention(c[k]) if attention[k] else nn.Identity())
            prev = c[k]
        self.mid1 = ResBlock(prev, prev, emb)
        self.mid_attn = SelfAttention(prev) if mid_attention else nn.Identity()
        self.mid2 = ResBlock(prev, prev, emb)
        self.up = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        for k in reversed(range(levels)):
            self.up.append(ResBlock(prev + c[k], c[k], emb))
            self.up_attn.append(SelfAttention(c[k]) if attention[k] else nn.Identity())
            prev = c[k]
        self.out = nn.Sequential(_gn(prev), nn.SiLU(), nn.Conv2d(prev, out_channels * patch**2, 3, padding=1))

    def forward(self, x, t):
        e = self.t_mlp(timestep_embedding(t, self.time_channels).to(x.dtype))
        h = self.conv_in(F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x)
        skips = []
        for k, (block, attn) in enumerate(zip(self.down, self.down_attn)):
            if k:
                h = F.avg_pool2d(h, 2)
            h = attn(block(h, e))
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        for k, (block, attn) in enumerate(zip(self.up, self.up_attn)):
            if k:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = attn(block(torch.cat([h, skips.pop()], dim=1), e))
        h = self.out(h)
        return F.pixel_shuffle(h, self.patch) if self.patch > 1 else h


def small_unet(image_size: int = 32) -> "ResUNet":
    """The CPU model (ours): DDPM-style ResBlock U-Net 32-64-64 (32, 16, 8 px), attention at 8 x 8.

    A quarter-width IDDM U-Net (16-32-64) was tried first: at the same image budget its loss was
    ~1.5x higher and its samples had wrong global colour (docs/ddpm.md)."""
    return ResUNet((32, 64, 64), (False, False, True), time_channels=128, image_size=image_size)


def small_unet_p2(image_size: int = 32) -> "ResUNet":
    """The cpu preset's model (ours): ``small_unet``'s 32-64-64 ResBlock U-Net behind a 2 x 2
    pixel-unshuffle stem, so its levels run at 16, 8 and 4 px (attention at 4 x 4 and in the
    middle). 2.5x the training throughput of ``small_unet`` on one CPU thread and fewer coarse-rule
    violations per training image on Task A (docs/ddpm.md, "The cpu preset")."""
    return ResUNet((32, 64, 64), (False, False, True), time_channels=128, image_size=image_size, patch=2)
