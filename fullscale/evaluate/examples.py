"""Example images of each kind of outcome (the rules paper's Figures 9 and 10), picked from a sample set.

Three groups, chosen from the evaluator's per-sample table (``points.parquet``) alone:

- ``coarse``: parsed samples that break the coarse rule (``coarse_ok`` is False), Figure 9;
- ``fine``: samples with the right layout (``coarse_ok``) whose ``rule_y`` is farthest from the
  rule ``g * rule_x`` (absolute residual ``rule_y - g rule_x``, in image-width units: the relative
  error blows up for the tiny ``rule_x`` of objects near the centre), the fine violations of Figure 10;
- ``exact``: samples within 1 % of the rule (the "high-quality" samples of the memorisation check).

Each group keeps at most ``k`` images, worst (or best) first, with their sample index and the
residual ``rule_y - g rule_x``. ``save_examples`` writes them to one small ``.npz``
(atomically), which is what a run exports instead of its full sample array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GROUPS = ("coarse", "fine", "exact")
EXACT_TOL = 0.01  # same tolerance as memorise.RULE_EXACT_TOL


def relative_error(task: str, points) -> np.ndarray:
    """rule_y / (g rule_x) - 1 per row (nan where it is undefined)."""
    from fullscale.tasks import rule_slope

    x = points["rule_x"].to_numpy(dtype=float)
    y = points["rule_y"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return y / (rule_slope(task) * x) - 1.0


def residual(task: str, points) -> np.ndarray:
    """rule_y - g rule_x per row."""
    from fullscale.tasks import rule_slope

    return points["rule_y"].to_numpy(dtype=float) - rule_slope(task) * points["rule_x"].to_numpy(dtype=float)


def select_examples(task: str, points, k: int = 12) -> dict[str, np.ndarray]:
    """Sample indices per group (``points`` row order is the sample order)."""
    parsed = points["parsed"].to_numpy(dtype=bool)
    ok = points["coarse_ok"].to_numpy(dtype=float, na_value=np.nan)
    err, res = relative_error(task, points), residual(task, points)
    finite = np.isfinite(err) & np.isfinite(res)
    coarse = np.flatnonzero(parsed & (ok == 0))
    good = np.flatnonzero(parsed & (ok == 1) & finite)
    fine = good[np.argsort(-np.abs(res[good]), kind="stable")]
    exact = good[np.abs(err[good]) <= EXACT_TOL]
    exact = exact[np.argsort(np.abs(err[exact]), kind="stable")]
    return {"coarse": coarse[:k], "fine": fine[:k], "exact": exact[:k]}


def save_examples(path, task: str, points, images: np.ndarray, k: int = 12) -> Path:
    """Write the picked images (uint8), their indices and relative errors to ``path`` (.npz)."""
    from dmrules.core import results as R

    if len(points) != len(images):
        raise ValueError(f"{len(points)} evaluated rows but {len(images)} images")
    picks = select_examples(task, points, k)
    res = residual(task, points)
    arrays = {"task": np.array(task)}
    for name in GROUPS:
        idx = picks[name]
        arrays[f"{name}_index"] = idx
        arrays[f"{name}_images"] = np.asarray(images)[idx].astype(np.uint8)
        arrays[f"{name}_residual"] = res[idx]
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return R.write_bytes(Path(path), buf.getvalue())


def load_examples(path) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {"index", "images", "residual"}}`` from a file written by :func:`save_examples`."""
    with np.load(path, allow_pickle=False) as z:
        return {g: {k: z[f"{g}_{k}"] for k in ("index", "images", "residual")} for g in GROUPS}
