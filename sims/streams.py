"""Named random streams for the simulations: one discipline, no magic seed offsets.

``stream(seed, "purpose", ...)`` is a ``torch.Generator`` seeded by the ground floor's
``dmrules.core.streams.derive(seed, purpose, ...)``: streams of different purposes never share
draws. The data laws of ``theory`` draw their fixed directions (µ, or u and v) from the model's
seed itself, so every other draw of a model must come from a named stream (sharing the seed made
the first noise values of a sample bit-identical to the µ draws: the bug this module exists to
prevent).
"""

from __future__ import annotations

from dmrules.core.streams import derive, torch_generator

__all__ = ["stream", "derive"]


def stream(seed: int, purpose: str, *parts):
    """A CPU ``torch.Generator`` for one named purpose of ``seed`` (extra ``parts``: ints or strings)."""
    return torch_generator(seed, purpose, *parts)
