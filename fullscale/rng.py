"""Counter-based random numbers with per-sample keys (ours; the SplitMix64 mixer of Steele et al. 2014).

Why: the sampler must give every image a noise stream that depends on its seed only, never on the
batch it was drawn in (edm's ``StackedRandomGenerator`` does this with one ``torch.Generator`` per
sample, which costs one generator call per sample per step: far too slow for 3000 samples x 1000
steps on a GPU). Here a random number is a pure function of integers,

    u = mix64(key + (j + 1) * GAMMA)          j = element index inside the sample,

computed with vectorised int64 torch ops on any device (one fused kernel under ``torch.compile``).
``key`` is itself a hash of a few integers, e.g. ``derive(seed, step)``. The same key on CPU and
CUDA gives bit-identical integers (int64 arithmetic wraps mod 2^64 on both).

Normals use Box-Muller on two 24-bit uniforms taken from one 64-bit hash (tails to ~5.9 sigma,
the float32 resolution; ample for diffusion noise).
"""

from __future__ import annotations

import math

import torch

_M64 = (1 << 64) - 1


def _s64(v: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    v &= _M64
    return v - (1 << 64) if v >= 1 << 63 else v


GAMMA = _s64(0x9E3779B97F4A7C15)  # golden-ratio increment of SplitMix64
_C1 = _s64(0xBF58476D1CE4E5B9)
_C2 = _s64(0x94D049BB133111EB)


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser: a bijection of 64-bit integers with full avalanche."""
    x = (x ^ _srl(x, 30)) * _C1
    x = (x ^ _srl(x, 27)) * _C2
    return x ^ _srl(x, 31)


def _mix_int(x: int) -> int:
    """mix64 of a Python int, returned as the signed int64 torch would hold."""
    return _s64(reference_mix64(x))


def derive(*parts, device=None) -> torch.Tensor:
    """Hash integers / int64 tensors (broadcast together) into one int64 key per element.

    ``derive(seeds, step)`` gives the key of each sample's noise at one sampler step;
    ``derive(seed, step, index, purpose)`` the key of one training example's draw. Python ints are
    mixed on the host and enter tensor ops as scalars, so no host-to-device copy (and no CUDA
    stream synchronisation) happens per call. The result lives on the tensor parts' device (or
    ``device`` when all parts are ints).
    """
    if not parts:
        raise ValueError("derive() needs at least one part")
    key = None
    for part in parts:
        p = part.to(torch.int64) if torch.is_tensor(part) else _s64(int(part))
        if key is None:
            key = mix64(p + GAMMA) if torch.is_tensor(p) else _mix_int(p + GAMMA)
        elif torch.is_tensor(key) or torch.is_tensor(p):
            key = mix64((key ^ p) + GAMMA)
        else:
            key = _mix_int((key ^ p) + GAMMA)
    return key if torch.is_tensor(key) else torch.tensor(key, dtype=torch.int64, device=device)


def bits(keys: torch.Tensor, n: int) -> torch.Tensor:
    """``[*keys.shape, n]`` int64 random words: the SplitMix64 stream of each key."""
    j = torch.arange(1, n + 1, dtype=torch.int64, device=keys.device)
    return mix64(keys.unsqueeze(-1) + j * GAMMA)


def _unit(word: torch.Tensor, shift: int) -> torch.Tensor:
    """A float32 uniform in (0, 1) from 24 bits of ``word`` starting at bit ``shift``."""
    return (_srl(word, shift) & 0xFFFFFF).to(torch.float32).add_(0.5).mul_(1.0 / (1 << 24))


def uniform(keys: torch.Tensor, shape=()) -> torch.Tensor:
    """Uniforms in (0, 1), shape ``[*keys.shape, *shape]`` (float32)."""
    shape = tuple(shape)
    n = math.prod(shape)
    return _unit(bits(keys, n), 40).reshape(*keys.shape, *shape)


def unit64(keys: torch.Tensor) -> torch.Tensor:
    """One float64 uniform in [0, 1) per key (40 bits): the draw behind :func:`randint`."""
    return _srl(mix64(keys + GAMMA), 24).to(torch.float64) * (1.0 / (1 << 40))


def randint(keys: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """One integer in [low, high) per key (int64); bias below 2^-40 for ranges < 2^24."""
    u = unit64(keys)
    return (low + torch.floor(u * (high - low))).to(torch.int64).clamp_(low, high - 1)


def normal(keys: torch.Tensor, shape=(), dtype=torch.float32) -> torch.Tensor:
    """Standard normals, shape ``[*keys.shape, *shape]``: Box-Muller, one 64-bit word per value."""
    shape = tuple(shape)
    n = math.prod(shape)
    w = bits(keys, n)
    u1, u2 = _unit(w, 40), _unit(w, 8)
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.reshape(*keys.shape, *shape).to(dtype)


def reference_mix64(x: int) -> int:
    """Pure-Python SplitMix64 finaliser (unsigned), for tests of the torch version."""
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)
