"""The held-out band (issue 14, Sec. 3): drop training images whose free variable lies in a band.

Each task declares one *free variable* (``FREE_VARIABLE`` in ``task_a`` ... ``task_d``): a feature
the law draws freely and the fine rule ties to the others. A: the sun's x (``sun_x``), B: the near
rectangle's left edge (``x1``), C: the warm circle's radius (``r1``), D: the upper square's side
(``l1``), all fractions of the image width. ``dmrules data --holdout NAME:LO:HI`` renders the set as
usual and removes exactly the images with ``LO <= NAME < HI`` (ground-truth features of the render),
nothing else, so the kept set is the ordinary set minus the band; its size is n minus the dropped
count (recorded in ``meta.json``). Generated samples are read back with the evaluator's measured
value of the same feature (``fullscale.evaluate.extract`` names it the same).

A model whose samples land in the band *and* conform there produces rule-following images that no
copy of a training image can explain (the empirical denoiser puts nothing there by construction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Band:
    """A half-open band ``lo <= name < hi`` of one feature (fractions of the image width)."""

    name: str
    lo: float
    hi: float

    def label(self) -> str:
        return f"{self.name}:{self.lo:g}:{self.hi:g}"

    def contains(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        return (v >= self.lo) & (v < self.hi)

    def to_json(self) -> dict:
        return {"name": self.name, "lo": self.lo, "hi": self.hi}


def free_variable(task) -> str:
    """The task's declared free variable (a feature column of ``render`` and of ``extract``)."""
    from fullscale.tasks import registry

    return str(registry.get(task).FREE_VARIABLE)


def allowed_names(task) -> tuple:
    """Features a band may be put on: the task's position features (the free variable among them)."""
    from fullscale.tasks import position_features

    return tuple(position_features(task))


def parse_band(text: str, task=None) -> Band:
    """``NAME:LO:HI`` -> :class:`Band`; ``ValueError`` (one sentence) on anything else.

    With ``task``, NAME must be one of the task's position features; ``free`` stands for the task's
    declared free variable.
    """
    parts = str(text).split(":")
    if len(parts) != 3 or not parts[0].strip():
        raise ValueError(f"a holdout band is NAME:LO:HI (e.g. r1:0.09:0.11), got {text!r}")
    name = parts[0].strip()
    try:
        lo, hi = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"holdout band {text!r}: LO and HI must be numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"holdout band {text!r}: need finite LO < HI")
    if task is not None:
        if name == "free":
            name = free_variable(task)
        names = allowed_names(task)
        if name not in names:
            raise ValueError(f"holdout band {text!r}: Task {task} has no feature {name!r}; choose one of "
                             f"{', '.join(names)} (its free variable is {free_variable(task)})")
    return Band(name, lo, hi)


def apply(images: np.ndarray, features, band: Band):
    """``(images, features, info)`` without the rows whose ``band.name`` lies in the band.

    ``info``: band, n_rendered, n_dropped, n_kept. The kept rows keep their order; nothing else is
    touched (tested: kept == rendered[~in_band]).
    """
    if band.name not in features.columns:
        raise ValueError(f"the data set has no feature {band.name!r} to hold out")
    inside = band.contains(features[band.name].to_numpy(dtype=float))
    keep = ~inside
    if not keep.any():
        raise ValueError(f"the band {band.label()} holds every image: nothing left to train on")
    info = {"band": band.to_json(), "n_rendered": int(len(images)), "n_dropped": int(inside.sum()),
            "n_kept": int(keep.sum())}
    return images[keep], features[keep].reset_index(drop=True), info
