"""Denoisers for the rules paper, behind one registry: ``build(name, image_size) -> nn.Module``.

Every model maps (x [B, 3, H, W], c [B]) to the objective's target [B, 3, H, W] (eps_hat for the default
``eps`` objective). c is the noise process's conditioning value (``process.cond(t)``): the DDPM index
(int64, 1..T-1) for the VP objectives, 1000 tau (float) for ``flow``; every model embeds ``c.float()``
with sinusoids, so the integer index and a continuous value are one input (issue 13).

| name          | what                                                          | parameters at 32 px |
|---------------|---------------------------------------------------------------|---------------------|
| unet          | the paper's IDDM U-Net (64-128-256-512, SA)                   | 23,332,739          |
| unet-small    | ResBlock U-Net 32-64-64, SA at 8x8 (CPU, ours)                | 869,123             |
| unet-small-p2 | the same behind a 2x2 pixel-unshuffle stem (cpu preset, ours) | 874,316             |
| dit-s2        | DiT-S/2, unconditional, no learned sigma                      | 32,471,436          |
| dit-b2        | DiT-B/2, unconditional, no learned sigma                      | 129,528,588         |
| mlp           | depth 3, width 1024, adaptive LayerNorm                       | 84,954,624          |

(The numbers are pinned by tests/fullscale/test_models_ddpm.py; DiT counts exclude the fixed sin-cos
position embedding, a buffer here.)
"""

from __future__ import annotations

from torch import nn

from fullscale import names
from fullscale.models.dit import dit_b2, dit_s2
from fullscale.models.mlp import mlp
from fullscale.models.unet import paper_unet, small_unet, small_unet_p2

# the names are fullscale.names.MODELS (torch-free, the CLI's --model choices); the builders in the same order
MODELS = dict(zip(names.MODELS, (paper_unet, small_unet, small_unet_p2, dit_s2, dit_b2, mlp), strict=True))


def build(name: str, image_size: int = 32) -> nn.Module:
    """The denoiser ``name`` for square images of side ``image_size``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](image_size=image_size)


def param_count(module: nn.Module) -> int:
    """Trainable parameters (DiT's fixed position embedding is a buffer, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
