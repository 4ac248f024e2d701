"""Named random streams for the simulations: one discipline, no magic seed offsets.

``stream(seed, "purpose", ...)`` is a ``torch.Generator`` seeded by a hash of (seed, purpose, ...):
streams of different purposes never share draws. The data laws of ``theory`` draw their fixed
directions (µ, or u and v) from the model's seed itself, so every other draw of a model must come
from a named stream (sharing the seed made the first noise values of a sample bit-identical to the
µ draws: the bug this module exists to prevent).
"""

from __future__ import annotations

import torch


def stream(seed: int, purpose: str, *parts) -> torch.Generator:
    """A CPU ``torch.Generator`` for one named purpose of ``seed`` (extra ``parts``: ints or strings)."""
    from dmrules.results import config_hash

    key = [int(seed), str(purpose), *[p if isinstance(p, str) else int(p) for p in parts]]
    return torch.Generator().manual_seed(int(config_hash(key, 8), 16))
