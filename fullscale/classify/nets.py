"""Rule classifiers for the rules paper's mitigation experiments (protocol Sec. 6.1, 6.3).

Every network maps (x [B, 3, H, W] in [-1, 1] -- the DDPM's pixel space --, t [B] int64 or None) to
logits over the three contrastive classes (0 and 2 deviate from the rule in opposite directions,
1 = rule-conforming); ``forward_features`` also returns the feature vector NT-Xent uses.

Noisy (time-conditioned, for classifier guidance; protocol Sec. 6.1):

- ``unet``: guided-diffusion's ``EncoderUNetModel``: res blocks with scale-shift norm, channel_mult
  (1, 2, 3), ``depth`` blocks per level, self-attention at 16 x 16 (64 channels per head), attention
  pooling. Paper: width 128, depth 2. Features: the last encoder block, globally average-pooled.
- ``mlp``: ``SimpleMLPWithTimeEmbedding``: [flattened image, Linear(1, 128) -> SiLU -> Linear(128, 128)
  of t] -> Linear -> ReLU -> Linear (fc2, the features) -> ReLU -> Linear(3); hidden = width.

Clean (filtering; protocol Sec. 6.3; ``t`` is ignored):

- ``mlp``: 3072 -> 512 -> 128 -> 3, ReLU (features: the 128-d layer).
- ``conv``: the authors' small conv net ("small conv U-Net" in their plot): conv3x3 3 -> w -> 2w -> w
  -> 3, ReLU, global average pooling of the class maps; paper w = 64.
- ``resnet8``: CIFAR ResNet-8: conv 3 -> 16, one basic block per stage at 16 / 32 / 64 channels
  (strides 1, 2, 2), BatchNorm, global average pooling, Linear(64, 3).

Choices of ours (the protocol names the blocks, not every detail): the time-MLP sees t / 1000 (the
fork feeds the raw step into Linear(1, 128), which puts t in [0, 999] straight into a ReLU network);
the encoder U-Net's time embedding is the sinusoidal one of the DDPM U-Net (``timestep_embedding``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fullscale import names
from fullscale.models.unet import timestep_embedding

N_CLASSES = 3
NOISY_ARCHS = names.NOISY_CLASSIFIERS  # torch-free lists (fullscale.names): the CLI's --arch choices
CLEAN_ARCHS = names.CLEAN_CLASSIFIERS
ARCHS = names.CLASSIFIERS


def _gn(c: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups (guided-diffusion's ``normalization``), fewer when c is not a multiple."""
    return nn.GroupNorm(math.gcd(32, c), c)


# ----------------------------------------------------------------------------
# Encoder U-Net (guided-diffusion ``EncoderUNetModel``, Dhariwal & Nichol 2021, Sec. 4 / App. C).


class ResBlock(nn.Module):
    """GN -> SiLU -> conv -> GN(h) * (1 + scale) + shift (from the time embedding) -> SiLU -> conv, + skip."""

    def __init__(self, c_in: int, c_out: int, emb: int, down: bool = False):
        super().__init__()
        self.down = down
        self.norm1, self.conv1 = _gn(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * c_out)
        self.norm2, self.conv2 = _gn(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x, e):
        h = F.silu(self.norm1(x))
        if self.down:  # guided-diffusion's resblock_updown: pool inside the block and on the skip
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        h = self.conv1(h)
        scale, shift = self.emb(F.silu(e))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class Attention(nn.Module):
    """Self-attention over the H*W positions (``num_head_channels`` channels per head)."""

    def __init__(self, c: int, head_channels: int = 64):
        super().__init__()
        self.heads = max(1, c // head_channels)
        self.norm, self.qkv, self.proj = _gn(c), nn.Conv1d(c, 3 * c, 1), nn.Conv1d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x).flatten(2)).view(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(a.transpose(-1, -2).reshape(b, c, h * w)).view(b, c, h, w)


class AttentionPool(nn.Module):
    """CLIP-style attention pooling (guided-diffusion ``pool="attention"``): the mean token attends to all."""

    def __init__(self, c: int, tokens: int, out: int, head_channels: int = 64):
        super().__init__()
        self.heads = max(1, c // head_channels)
        self.pos = nn.Parameter(torch.randn(c, tokens + 1) / c**0.5)
        self.qkv, self.proj = nn.Conv1d(c, 3 * c, 1), nn.Conv1d(c, out, 1)

    def forward(self, x):
        b, c = x.shape[:2]
        x = x.flatten(2)
        x = torch.cat([x.mean(dim=-1, keepdim=True), x], dim=-1) + self.pos[None].to(x.dtype)
        q, k, v = self.qkv(x).view(b, 3, self.heads, c // self.heads, -1).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return self.proj(a.transpose(-1, -2).reshape(b, c, -1))[:, :, 0]


class EncoderUNet(nn.Module):
    """The downsampling half of the ADM U-Net with a classification head (time-conditioned)."""

    time_conditioned = True

    def __init__(self, image_size: int = 32, width: int = 128, depth: int = 2, channel_mult=(1, 2, 3),
                 attention_resolutions=(16,), head_channels: int = 64):
        super().__init__()
        self.width = width
        emb = 4 * width
        self.time = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        blocks, c, res = [], width, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(depth):
                blocks.append(ResBlock(c, mult * width, emb))
                c = mult * width
                if res in attention_resolutions:
                    blocks.append(Attention(c, head_channels))
            if level < len(channel_mult) - 1:
                blocks.append(ResBlock(c, c, emb, down=True))
                res //= 2
        self.blocks = nn.ModuleList(blocks)
        self.middle = nn.ModuleList([ResBlock(c, c, emb), Attention(c, head_channels), ResBlock(c, c, emb)])
        self.out_norm = _gn(c)
        self.pool = AttentionPool(c, res * res, N_CLASSES, head_channels)
        self.feature_dim = c

    def forward_features(self, x, t):
        e = self.time(timestep_embedding(t, self.width).to(x.dtype))
        h = self.stem(x)
        for block in list(self.blocks) + list(self.middle):
            h = block(h, e) if isinstance(block, ResBlock) else block(h)
        h = F.silu(self.out_norm(h))
        return self.pool(h), h.mean(dim=(2, 3))

    def forward(self, x, t=None):
        return self.forward_features(x, t)[0]


# ----------------------------------------------------------------------------
# MLPs


class TimeMLP(nn.Module):
    """The fork's ``SimpleMLPWithTimeEmbedding`` (time-conditioned)."""

    time_conditioned = True

    def __init__(self, image_size: int = 32, width: int = 128, time_dim: int = 128):
        super().__init__()
        d = 3 * image_size * image_size
        self.time = nn.Sequential(nn.Linear(1, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.fc1, self.fc2 = nn.Linear(d + time_dim, width), nn.Linear(width, width)
        self.fc3 = nn.Linear(width, N_CLASSES)
        self.feature_dim = width

    def forward_features(self, x, t):
        e = self.time(t.to(x.dtype)[:, None] / 1000.0)
        f = self.fc2(F.relu(self.fc1(torch.cat([x.flatten(1), e], dim=1))))
        return self.fc3(F.relu(f)), f

    def forward(self, x, t=None):
        return self.forward_features(x, t)[0]


class CleanMLP(nn.Module):
    """3072 -> 512 -> 128 -> 3 with ReLU (the authors' MLP filter)."""

    time_conditioned = False

    def __init__(self, image_size: int = 32, hidden=(512, 128)):
        super().__init__()
        d = 3 * image_size * image_size
        self.fc1, self.fc2 = nn.Linear(d, hidden[0]), nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], N_CLASSES)
        self.feature_dim = hidden[1]

    def forward_features(self, x, t=None):
        f = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.fc3(f), f

    def forward(self, x, t=None):
        return self.forward_features(x)[0]


# ----------------------------------------------------------------------------
# Convolutional filters


class SmallConv(nn.Module):
    """conv3x3 3 -> w -> 2w, then 2w -> w -> 3, ReLU between, global average pooling of the class maps."""

    time_conditioned = False

    def __init__(self, image_size: int = 32, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, N_CLASSES, 3, padding=1)
        self.feature_dim = width

    def forward_features(self, x, t=None):
        h = self.body(x)
        return self.head(h).mean(dim=(2, 3)), h.mean(dim=(2, 3))

    def forward(self, x, t=None):
        return self.forward_features(x)[0]


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class ResNet8(nn.Module):
    """CIFAR-style ResNet-8 (He et al. 2016, Sec. 4.2 with n = 1): 1 + 3 x 2 + 1 weighted layers."""

    time_conditioned = False

    def __init__(self, image_size: int = 32, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.stages = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 4 * w, 2))
        self.fc = nn.Linear(4 * w, N_CLASSES)
        self.feature_dim = 4 * w

    def forward_features(self, x, t=None):
        f = self.stages(self.stem(x)).mean(dim=(2, 3))
        return self.fc(f), f

    def forward(self, x, t=None):
        return self.forward_features(x)[0]


# ----------------------------------------------------------------------------
# Registry


def build(arch: str, noisy: bool, image_size: int = 32, width: int | None = None,
          depth: int | None = None) -> nn.Module:
    """A classifier; ``width`` / ``depth`` default to the paper's sizes (``None``)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown classifier arch {arch!r}; choose from {', '.join(ARCHS)}")
    kind = "noisy" if noisy else "clean"
    allowed = NOISY_ARCHS if noisy else CLEAN_ARCHS
    if arch not in allowed:
        raise ValueError(f"there is no {kind} {arch} classifier; {kind} classifiers are {', '.join(allowed)}"
                         + (" (use --clean)" if noisy else " (use --noisy)"))
    if image_size % 8:
        raise ValueError(f"image size must be a multiple of 8, got {image_size}")
    if noisy and arch == "unet":
        return EncoderUNet(image_size, width or 128, depth or 2)
    if noisy:
        return TimeMLP(image_size, width or 128)
    if arch == "mlp":
        return CleanMLP(image_size) if width is None else CleanMLP(image_size, (4 * width, width))
    if arch == "conv":
        return SmallConv(image_size, width or 64)
    return ResNet8(image_size, width or 16)


def param_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def log_prob(net: nn.Module, x: torch.Tensor, t: torch.Tensor | None, target: int = 1) -> torch.Tensor:
    """log p(y = target | x_t, t) per example (log-softmax of the logits)."""
    return F.log_softmax(net(x, t).float(), dim=-1)[:, target]
