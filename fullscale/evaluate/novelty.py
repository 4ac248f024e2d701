"""Novelty of generated samples against their training set, calibrated by fresh renders (issue 14).

Toolkit's own definitions (docs/clocks.md, "Novelty"):

- Pixel distance of an image x to the training set: ``d_pix(x) = min_i ||x - x_i||_2 / sqrt(D)``,
  images in [0, 1] (uint8 / 255), D = H W 3: the root-mean-square pixel difference to the nearest
  training image (0 for an exact copy; two unrelated Task A scenes are about 0.1-0.3 apart).
- Position distance: the memorisation check's position-feature distance (``memorise``: Euclidean
  in fractions of the image width, / sqrt 2), on parsed images only; both sets measured by the
  same evaluator.
- The null: M *fresh* renders of the data law (a render stream independent of the training set),
  measured against the *same* training set of size n. They are what an ideal generaliser would
  draw, so every threshold below is read off their distances at this n:
  * copy threshold ``tau_copy = min`` of the M fresh distances (pixels; positions likewise):
    ``copy_rate`` = share of samples strictly closer than any fresh render came. A set of M fresh
    renders scores about 1 / (M + 1) by construction, so M is set to the number of samples.
  * novelty threshold ``tau_novel = median`` of the fresh position distances: a sample is *novel*
    when its geometry is farther from every training image than half of the fresh renders are.
    ``novel_frac`` (0.5 for the law itself) and ``novel_conform_pct``: the rules paper's
    rule-conforming % among parsed novel samples. Position, not pixels, decides novelty: the fine
    rule is geometry, and a sample with a copied geometry in new colours is not new evidence.
- Disjoint-split agreement (Kadkhodaie, Guth, Simoncelli, Mallat, ICLR 2024): two models trained
  on disjoint sets sample from the same per-sample noise; ``ratio = mean_k ||a_k - b_k|| /
  mean_{k != l} ||a_k - b_l||`` (pixels). Near 0: both compute the same function of the noise
  (generalisation); near 1: each reproduces its own training set. Bootstrap CI over samples.
"""

from __future__ import annotations

import numpy as np

from .memorise import _features, nearest_distances
from .metrics import conform_pct

CHUNK = 512


def _flat(images) -> np.ndarray:
    """float32 [N, D] in [0, 1] from uint8 [N, H, W, 3]."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {a.dtype} {list(a.shape)}")
    return a.reshape(len(a), -1).astype(np.float32) / 255.0


def pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)] by ||a||^2 + ||b||^2 - 2 a.b (float64 sums)."""
    aa = np.einsum("ij,ij->i", a, a, dtype=np.float64)[:, None]
    bb = np.einsum("ij,ij->i", b, b, dtype=np.float64)[None, :]
    return np.maximum(aa + bb - 2.0 * (a.astype(np.float64) @ b.astype(np.float64).T), 0.0)


def pixel_nn(images, train_images, chunk: int = CHUNK) -> np.ndarray:
    """RMS pixel distance [N] of each image to its nearest training image (images in [0, 1])."""
    x, t = _flat(images), _flat(train_images)
    if len(x) == 0 or len(t) == 0:
        return np.full(len(x), np.nan)
    out = np.empty(len(x))
    for s in range(0, len(x), chunk):
        out[s:s + chunk] = pairwise_sq(x[s:s + chunk], t).min(1)
    return np.sqrt(out / x.shape[1])


def position_nn(task, table, train_table) -> np.ndarray:
    """Position-feature distance [N] to the nearest parsed training image (NaN where unparsed)."""
    out = np.full(len(table), np.nan)
    ok = table["parsed"].to_numpy(dtype=bool)
    train = train_table[train_table["parsed"].to_numpy(dtype=bool)]
    if ok.any() and len(train):
        out[ok] = nearest_distances(_features(task, table[ok])[0], _features(task, train)[0])
    return out


def reference(task, train_images, train_table, fresh_images, fresh_table) -> dict:
    """The null: fresh renders' distances to this training set and the thresholds read off them."""
    d_pix = pixel_nn(fresh_images, train_images)
    d_pos = position_nn(task, fresh_table, train_table)
    pos = d_pos[np.isfinite(d_pos)]
    if len(d_pix) == 0 or len(pos) == 0:
        raise ValueError("the fresh reference set is empty or unparsed: cannot derive novelty thresholds")
    return {"n_fresh": int(len(d_pix)), "tau_copy_pix": float(d_pix.min()), "tau_copy_pos": float(pos.min()),
            "tau_novel_pos": float(np.median(pos)), "fresh_median_pix": float(np.median(d_pix)),
            "fresh_median_pos": float(np.median(pos)), "fresh_d_pix": d_pix, "fresh_d_pos": d_pos}


def conform_flags(task, table) -> np.ndarray:
    """Per-image rule-conforming flag: the bins of ``metrics.conform_pct`` (y in the 0.05-wide bin of
    g x) applied to each parsed row; False where unparsed. ``100 * mean`` over parsed rows equals
    ``conform_pct`` (tested)."""
    from fullscale.tasks import rule_slope

    from .metrics import BIN

    x = table["rule_x"].to_numpy(dtype=float)
    y = table["rule_y"].to_numpy(dtype=float)
    k = round(1.0 / BIN)
    lo = np.floor(k * rule_slope(task) * x) / k
    with np.errstate(invalid="ignore"):
        ok = (y >= lo) & (y < lo + 1.0 / k)
    return ok & table["parsed"].to_numpy(dtype=bool)


def _conform(task, table, mask) -> float | None:
    from fullscale.tasks import rule_slope

    sub = table[mask]
    return conform_pct(sub["rule_x"].to_numpy(dtype=float), sub["rule_y"].to_numpy(dtype=float), rule_slope(task))


def novelty(task, images, table, train_images, train_table, ref: dict) -> dict:
    """copy rates, novel share and conform % among novel samples, with binomial standard errors.

    ``images``: the generated uint8 samples; ``table``: ``extract(task, images)``; ``ref``:
    :func:`reference` for the same training set. Per-sample distances come back as ``d_pix`` and
    ``d_pos`` (arrays) for plots.
    """
    d_pix = pixel_nn(images, train_images)
    d_pos = position_nn(task, table, train_table)
    parsed = table["parsed"].to_numpy(dtype=bool)
    n, n_parsed = len(d_pix), int(parsed.sum())
    copy_pix = d_pix < ref["tau_copy_pix"]
    novel = parsed & (np.nan_to_num(d_pos, nan=-1.0) > ref["tau_novel_pos"])
    n_novel = int(novel.sum())

    def rate(mask, denom):
        if denom == 0:
            return None, None
        p = float(mask.sum()) / denom
        return p, float(np.sqrt(p * (1 - p) / denom))

    copy_rate, copy_se = rate(copy_pix, n)
    copy_pos, copy_pos_se = rate(parsed & (np.nan_to_num(d_pos, nan=np.inf) < ref["tau_copy_pos"]), n_parsed)
    novel_frac, novel_se = rate(novel, n_parsed)
    ncp = _conform(task, table, novel) if n_novel else None
    ncp_se = None if ncp is None else float(100 * np.sqrt((ncp / 100) * (1 - ncp / 100) / n_novel))
    return {"copy_rate": copy_rate, "copy_rate_se": copy_se, "copy_rate_pos": copy_pos,
            "copy_rate_pos_se": copy_pos_se, "novel_frac": novel_frac, "novel_frac_se": novel_se,
            "n_novel": n_novel, "novel_conform_pct": ncp, "novel_conform_pct_se": ncp_se,
            "median_d_pix": float(np.median(d_pix)) if n else None,
            "median_d_pos": float(np.nanmedian(d_pos)) if n_parsed else None,
            "d_pix": d_pix, "d_pos": d_pos}


def disjoint_agreement(a, b, n_boot: int = 500, seed: int = 0) -> dict:
    """Paired vs unrelated RMS pixel distance of two sample sets drawn from the same noise.

    ``a[k]`` and ``b[k]`` share per-sample seed k. Returns pair and unrelated mean distances, their
    ratio and a percentile-bootstrap 95 % CI of the ratio (resampling k).
    """
    x, y = _flat(a), _flat(b)
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"need two equal-shaped sets of >= 2 samples, got {x.shape} and {y.shape}")
    dist = np.sqrt(pairwise_sq(x, y) / x.shape[1])
    k = len(x)

    def ratio(idx):
        sub = dist[np.ix_(idx, idx)]
        same = idx[:, None] == idx[None, :]  # a resample may repeat k: those cells are pairs, not unrelated
        return float(np.mean(np.diagonal(sub)) / np.mean(sub[~same]))

    idx = np.arange(k)
    off = ~np.eye(k, dtype=bool)
    rng = np.random.default_rng(seed)
    boots = [ratio(rng.integers(0, k, k)) for _ in range(n_boot)]
    return {"n_pairs": k, "pair_dist": float(np.mean(np.diagonal(dist))), "unrelated_dist": float(dist[off].mean()),
            "ratio": ratio(idx), "ratio_lo": float(np.percentile(boots, 2.5)), "ratio_hi": float(np.percentile(boots, 97.5))}
