"""Per-task features measured from pixels: ``extract(task, images)`` -> one row per image.

Columns: ``parsed``, ``reason`` ("" when parsed), ``coarse_ok`` (nullable), ``rule_x``, ``rule_y``,
the task's features with the same names and units as ``fullscale.tasks.render`` (fractions of the
image width, y up from the bottom edge) and the measured pure colour of every object
(``<object>_r/_g/_b``, 0-255). Objects are told apart by colour family, then given their roles by
geometry: Task B's near rectangle is the left one, Task D's upper square the higher one. The
per-task parts are the task module's evaluator hooks (``EVAL_OBJECTS``, ``measured``; registry).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import measure
from .images import ImageSet, as_imageset
from .segment import ObjectSpec, segment


class _Objects(Mapping):
    """Task name -> the evaluator's object specs, read from each task's ``EVAL_OBJECTS`` (the registry)."""

    def __getitem__(self, task):
        from fullscale.tasks import registry

        return [ObjectSpec(*spec) for spec in registry.get(task).EVAL_OBJECTS]

    def __iter__(self):
        from fullscale.tasks import registry

        return iter(registry.names())

    def __len__(self):
        from fullscale.tasks import registry

        return len(registry.names())


OBJECTS = _Objects()

# shape checks: exact renders give resid ~0.01, polar ~1, iso ~1; uniform-noise images that get
# this far give resid >= 0.75 and polar >= 3 (measured, docs/tasks.md)
RECT_MAX_RESID = 0.6  # rank-one residual of a rectangle
DISC_POLAR = (0.75, 1.6)  # polar moment / disc value
DISC_MIN_ISO = 0.6
_CHUNK_PIXELS = 1 << 20


def _shape_checks(spec: ObjectSpec, m: dict) -> np.ndarray:
    """'' or why an object's measured shape is implausible, per image."""
    bad = np.full(len(m["area"]), "", dtype=object)
    if spec.shape == "rect":
        bad[m["resid"] > RECT_MAX_RESID] = f"{spec.name} is not a rectangle"
    else:
        ok = (m["polar"] >= DISC_POLAR[0]) & (m["polar"] <= DISC_POLAR[1]) & (m["iso"] >= DISC_MIN_ISO)
        bad[~ok] = f"{spec.name} is not a disc"
    bad[m["area"] < measure.MIN_AREA] = f"{spec.name} too small"
    return bad


def _extract_batch(task: str, images: np.ndarray):
    """Feature columns and failure reasons for a batch of readable same-size images."""
    specs = OBJECTS[task]
    seg = segment(images, specs)
    noisy = seg.noise >= 1.0
    ms = [measure.rect(seg.cover[:, k], noisy) if s.shape == "rect" else measure.disc(seg.cover[:, k])
          for k, s in enumerate(specs)]
    reasons = np.array(seg.reason, dtype=object)
    for k, spec in enumerate(specs):
        bad = _shape_checks(spec, ms[k])
        fill = (reasons == "") & (bad != "")
        reasons[fill] = bad[fill]
    from fullscale.tasks import registry

    cols = registry.get(task).measured(ms, seg.color, images.shape[1])  # the task's evaluator hook
    return cols, reasons


def extract(task, images):
    """One row per image: ``parsed``, ``reason``, ``coarse_ok``, ``rule_x``, ``rule_y``, features, colours.

    ``images``: uint8 [N, H, W, 3] (any float range, channel-first, gray and RGBA are converted), a
    list of images of any sizes (None = unreadable) or an :class:`ImageSet` from ``load_images``.
    Images larger than 128 px are area-averaged to 128 px; failures never raise.
    """
    import pandas as pd

    from fullscale.tasks import check_task

    task = check_task(task)
    iset = images if isinstance(images, ImageSet) else as_imageset(images)
    n = len(iset)
    size = iset.images.shape[1] if n else 32
    reasons = np.array([e or "" for e in iset.errors] if n else [], dtype=object)
    cols_all: dict = {}
    idx = np.flatnonzero(iset.ok)
    step = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, len(idx), step):
        sel = idx[start:start + step]
        cols, why = _extract_batch(task, iset.images[sel])
        for key, val in cols.items():
            if key not in cols_all:
                cols_all[key] = np.full(n, np.nan) if key != "coarse_ok" else np.zeros(n, dtype=bool)
            cols_all[key][sel] = val
        reasons[sel] = why
    if not cols_all:  # nothing readable: still the full set of columns
        probe = np.full((1, size, size, 3), 255, dtype=np.uint8)
        cols_all = {k: (np.full(n, np.nan) if k != "coarse_ok" else np.zeros(n, dtype=bool))
                    for k in _extract_batch(task, probe)[0]}
    parsed = reasons == ""
    df = pd.DataFrame({"image": list(iset.names) if n else [], "parsed": parsed, "reason": reasons.astype(str)})
    for key, val in cols_all.items():
        if key == "coarse_ok":
            df[key] = pd.array(np.where(parsed, val, False), dtype="boolean")
            df.loc[~parsed, key] = pd.NA
        else:
            df[key] = np.where(parsed, val, np.nan)
    return df
