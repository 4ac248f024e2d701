"""Named random streams: one seed discipline for the whole toolkit (issue 13).

``derive(seed, "purpose", *parts)`` is an integer seed made by hashing (seed, purpose, parts): two
different purposes (or parts) never share draws, whatever their seeds, and no magic offsets such
as ``seed + 7`` are needed. ``numpy_rng`` and ``torch_generator`` wrap it. The hash is the one
``sims.streams`` has always used (SHA-256 of the JSON of ``[seed, purpose, *parts]``, first 32
bits), so committed simulation results keep their draws.

Toolkit's own convention: the purpose is a short lowercase noun (``"data"``, ``"noise"``,
``"init"``, ``"sample"``); parts are ints or strings (a task's name, a variant, an index).
"""

from __future__ import annotations

import hashlib
import json


def _key(seed, purpose, parts) -> list:
    if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
        raise ValueError(f"a stream seed must be an integer, got {seed!r}")
    if not isinstance(purpose, str) or not purpose:
        raise ValueError(f"a stream needs a purpose (a non-empty string), got {purpose!r}")
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, bool) or not hasattr(p, "__index__"):
            raise ValueError(f"stream parts are ints or strings, got {p!r}")
        else:
            out.append(int(p))
    return [int(seed), purpose, *out]


def derive(seed: int, purpose: str, *parts, bits: int = 32) -> int:
    """A seed in ``[0, 2**bits)`` for one named purpose of ``seed`` (``bits``: a multiple of 4, <= 256).

    Stable across Python versions and machines (SHA-256 of sorted JSON); ``bits=32`` is the value
    ``sims.streams.stream`` has always seeded its generators with.
    """
    if not (isinstance(bits, int) and 4 <= bits <= 256 and bits % 4 == 0):
        raise ValueError(f"bits must be a multiple of 4 in [4, 256], got {bits!r}")
    blob = json.dumps(_key(seed, purpose, parts), sort_keys=True).encode()
    return int(hashlib.sha256(blob).hexdigest()[: bits // 4], 16)


def numpy_rng(seed: int, purpose: str, *parts):
    """A ``numpy.random.Generator`` (PCG64) for one named purpose of ``seed`` (128-bit derived seed)."""
    import numpy as np

    return np.random.default_rng(derive(seed, purpose, *parts, bits=128))


def torch_generator(seed: int, purpose: str, *parts, device="cpu"):
    """A ``torch.Generator`` for one named purpose of ``seed`` (seeded with the 32-bit ``derive``)."""
    import torch

    return torch.Generator(device=device).manual_seed(derive(seed, purpose, *parts))


def name_id(name: str, bits: int = 32) -> int:
    """A stable integer id of a name (e.g. a task's data-stream id): ``derive(0, "name", name)``."""
    return derive(0, "name", str(name), bits=bits)
