"""From pixels to per-object coverage maps: colour families, components, pure colours, unmixing.

Our method (docs/tasks.md, "The evaluator"); every step works on a batch of same-size images:

1. Ink. The background colour w is the per-image median (white for renders); a pixel's ink is
   ``d = w - pixel``. A pixel covered a fraction ``a`` by an object of colour ``c`` has
   ``d = a (w - c)``, so the ink *direction* -- hence the hue and the "ink chroma"
   ``kappa = (max d - min d) / max d`` -- does not depend on the coverage: anti-aliased edge pixels
   keep their object's hue (HSV masks on the pixel's own S and V, as the authors use, lose them).
   Pixel noise is estimated per image (0 for renders) and raises the ink threshold.
2. Families. Candidate pixels per object from hue and kappa (warm: hue < 90 or >= 330 degrees;
   cool: 150 to 330 degrees; grey: low saturation); the largest 8-connected component wins. Task
   A's pole is seeded by saturated pixels, and its shadow is sought among low-saturation pixels
   that are not a blend of the pole's (or sun's) colour with the background.
3. Pure colour. The most frequent colour among the component's most-inked pixels, ignoring pixels
   that touch another object (fully covered pixels share one colour exactly). An object spanning
   at most two pixels across may have no fully covered pixel: then the pure colour is placed at
   the middle of the range its family's HSV box allows along the observed ink direction.
4. Unmixing. Per pixel, least squares ``d = sum_k a_k (w - c_k)`` over the objects whose support
   (component dilated by one pixel) contains it, clipped to [0, 1]. Touching objects (Task A pole
   and shadow, Task C circles) separate exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INK_MIN = 10.0  # grey levels of ink for a candidate pixel (the dilated support catches fainter edges)
NOISE_K = 4.0  # ... and at least this many times the image's pixel noise (robust std of the ink)

# Family boxes (OpenCV HSV units) of the generator, used only for the thin-object colour prior.
_BOX = {
    "warm": ((100.0, 255.0), (200.0, 255.0)),
    "cool": ((100.0, 255.0), (100.0, 255.0)),
    "grey": ((0.0, 50.0), (50.0, 150.0)),
}


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    family: str  # warm | cool | grey
    shape: str  # rect | disc


@dataclass
class Segmentation:
    cover: np.ndarray  # [N, K, H, W] float32 coverage per object
    ink: np.ndarray  # [N, K, 3] pure ink colour w - c per object
    color: np.ndarray  # [N, K, 3] pure RGB colour per object
    found: np.ndarray  # [N, K] bool
    reason: list  # per image: "" or why an object is missing
    noise: np.ndarray  # [N] robust std of the pixel noise (grey levels; 0 for renders)


def _hsv(q: np.ndarray):
    """Hue (degrees), saturation and value in [0, 1] of RGB floats in [0, 255], any leading shape."""
    import cv2

    shape = q.shape
    hsv = cv2.cvtColor(np.ascontiguousarray(q.reshape(-1, shape[-2], 3) / 255.0, dtype=np.float32),
                       cv2.COLOR_RGB2HSV)
    hsv = hsv.reshape(shape)
    return hsv[..., 0], hsv[..., 1], hsv[..., 2]


def _thin_prior_scale(d: np.ndarray, family: str, white: float) -> float:
    """Coverage t of the most-inked pixel of a thin object, from its family box (ours).

    Along the ray c(t) = w - d / t: V(t) = w - min(d)/t rises with t, S(t) = (max d - min d) /
    (w t - min d) falls. The family's S and V bounds give an interval of t; we take its middle.
    Returns 1 when the interval is empty (a colour outside the family, e.g. a generated image).
    """
    (s_lo, s_hi), (v_lo, v_hi) = _BOX[family]
    s_lo, s_hi = s_lo / 255.0, s_hi / 255.0
    dmax, dmin = float(d.max()), float(max(d.min(), 0.0))
    if dmax <= 0:
        return 1.0
    lo = [dmax / white]
    hi = [1.0]
    if v_lo < white:
        lo.append(dmin / (white - v_lo))
    if v_hi < white:
        hi.append(dmin / (white - v_hi))
    if s_lo > 0:
        hi.append((dmax - dmin + s_lo * dmin) / (s_lo * white))
    if s_hi > 0:
        lo.append((dmax - dmin + s_hi * dmin) / (s_hi * white))
    t_lo, t_hi = max(lo), min(hi)
    if t_lo > t_hi or t_hi <= 0:
        return 1.0
    return 0.5 * (t_lo + t_hi)


def _blend_of(d: np.ndarray, dd: np.ndarray, ink: np.ndarray, min_ink: float = 0.0, noise: float = 0.0) -> np.ndarray:
    """Pixels whose ink ``d`` (squared norm ``dd``) lies along ``ink`` -- a blend of that colour with
    the background -- up to rounding and noise: residual <= 2.5 + 2 noise grey levels + 3 % of the ink."""
    u = ink / max(float(np.sqrt(ink @ ink)), 1e-6)
    along = d @ u
    resid = np.sqrt(np.maximum(dd - along * along, 0.0))
    return (along >= min_ink) & (resid <= 2.5 + 2.0 * noise + 0.03 * along)


def _dominant_ink(d: np.ndarray, m: np.ndarray, tol: float = 4.0) -> np.ndarray:
    """The pure ink of an object: the most frequent colour among its well-inked pixels (ours).

    Fully covered pixels of a render share one colour exactly and carry the most ink; edge and
    mixed pixels scatter. Among pixels with at least 90 % of the upper-quartile ink, colours are
    binned on a ``tol``-level grid; the fullest bin (ties: more ink) marks the colour, and the median
    of the pixels within 1.5 ``tol`` of that bin's mean is returned. Robust to a few mixed pixels
    that carry more ink than the object itself (Task A's pole foot over a dark shadow).
    """
    k = len(m)
    ref = m.max() if k < 8 else np.partition(m, (3 * k) // 4)[(3 * k) // 4]
    d = d[m >= 0.9 * ref]
    if len(d) == 1:
        return d[0]
    q = np.rint(d * (1.0 / tol)).astype(np.int64) + 512
    key = (q[:, 0] << 22) | (q[:, 1] << 11) | q[:, 2]
    uniq, counts = np.unique(key, return_counts=True)
    top = uniq[counts == counts.max()]
    best = top[0] if len(top) == 1 else top[int(np.argmax([d[key == b].max(1).mean() for b in top]))]
    centre = d[key == best].mean(0)  # ties above: the bin with more ink
    near = np.abs(d - centre).max(1) <= 1.5 * tol
    return np.median(d[near], axis=0)


def _component(mask: np.ndarray):
    """The largest 8-connected component of a boolean mask and its bounding box (or None)."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 1:
        return None
    j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[j, :4])
    return labels == j, (y, y + h, x, x + w)


def _locate(d, dd, m, mask, taken, family: str, white: float, noise: float):
    """One object in one image: (component, support, pure ink) or None (steps 2-3 above)."""
    import cv2

    found = _component(mask)
    if found is None:
        return None
    comp, (y0, y1, x0, x1) = found
    kernel = np.ones((3, 3), np.uint8)
    sup = cv2.dilate(comp.view(np.uint8), kernel).view(bool)
    # pixels touching another object's component may mix both colours: avoid them
    clean = comp & ~cv2.dilate(taken.view(np.uint8), kernel).view(bool)
    clean = clean if clean.any() else comp
    color_ink = _dominant_ink(d[clean], m[clean])
    # thin objects (at most two pixels across) need not have a fully covered pixel: count the rows
    # and columns holding ink of this colour; if either is <= 2, use the family prior (ours)
    y0, y1, x0, x1 = max(y0 - 1, 0), y1 + 1, max(x0 - 1, 0), x1 + 1  # the support's box
    mine = sup[y0:y1, x0:x1] & _blend_of(d[y0:y1, x0:x1], dd[y0:y1, x0:x1], color_ink,
                                         min_ink=max(3.0, 3.0 * noise), noise=noise)
    if min(np.any(mine, axis=1).sum(), np.any(mine, axis=0).sum()) <= 2:
        top = d[clean][int(np.argmax(m[clean]))]
        color_ink = top / _thin_prior_scale(top, family, white)
    return comp, sup, color_ink


def segment(images: np.ndarray, objects: list[ObjectSpec]) -> Segmentation:
    """Coverage maps of the task's objects in a batch of uint8 RGB images [N, H, W, 3]."""
    n, h, w, _ = images.shape
    k_obj = len(objects)
    x = images.astype(np.float32)
    bg = np.median(x.reshape(n, -1, 3), axis=1)  # [N, 3]
    d = bg[:, None, None, :] - x
    m = d.max(-1)
    dd = (d * d).sum(-1)
    dmin = d.min(-1)
    kappa = np.where(m > 0, (m - dmin) / np.maximum(m, 1e-6), 0.0)
    hue, sat, val = _hsv(np.clip(255.0 - d, 0.0, 255.0))
    # pixel noise (ours): over near-background pixels (ink < 40), the median of the largest channel
    # ink is 0.82 sigma for Gaussian noise, whether or not white clips it; 0 for renders
    near_bg = np.where(m < 40.0, np.abs(m), np.nan).reshape(n, -1)
    with np.errstate(all="ignore"):
        noise = np.nan_to_num(np.nanmedian(near_bg, axis=1) / 0.82)
    inked = m >= np.maximum(INK_MIN, NOISE_K * noise)[:, None, None]
    hue_warm = (hue < 90.0) | (hue >= 330.0)
    hue_cool = (hue >= 150.0) & (hue < 330.0)
    has_grey = any(o.family == "grey" for o in objects)
    cand = {
        "warm": inked & hue_warm & (kappa >= 0.3),
        # with a grey object around, the cool object is seeded by saturated cores only (pole vs shadow)
        "cool": inked & hue_cool & ((sat >= 0.3) & (val >= 0.3) if has_grey else (kappa >= 0.12)),
        "grey": inked & (sat <= 0.3),
    }
    bg_ok = (bg.min(1) >= 128.0) & (bg.max(1) - bg.min(1) <= 40.0)

    ink = np.zeros((n, k_obj, 3), dtype=np.float32)
    support = np.zeros((n, k_obj, h, w), dtype=bool)
    found = np.zeros((n, k_obj), dtype=bool)
    reasons = [""] * n
    for i in range(n):
        if not bg_ok[i]:
            reasons[i] = "background is not white"
            continue
        taken = np.zeros((h, w), dtype=bool)
        for k, obj in enumerate(objects):
            mask = cand[obj.family][i] & ~taken
            if obj.family == "grey":  # not a blend of an object found before with the background
                for j in np.flatnonzero(found[i, :k]):
                    mask &= ~_blend_of(d[i], dd[i], ink[i, j], noise=noise[i])
            found_obj = _locate(d[i], dd[i], m[i], mask, taken, obj.family, float(bg[i].mean()), float(noise[i]))
            if found_obj is None:
                label = obj.name if obj.name == obj.family else f"{obj.name} ({obj.family})"
                reasons[i] = reasons[i] or f"no {label} object"
                continue
            comp, sup, color_ink = found_obj
            ink[i, k] = color_ink
            support[i, k] = sup
            found[i, k] = True
            taken |= comp
    cover = unmix(d, ink, support)
    color = bg[:, None, :] - ink
    return Segmentation(cover=cover, ink=ink, color=color, found=found, reason=reasons, noise=noise)


def unmix(d: np.ndarray, ink: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Per-pixel least-squares coverages over the objects whose support holds the pixel, in [0, 1]."""
    n, k_obj, h, w = support.shape
    code = np.zeros((n, h, w), dtype=np.int64)
    for k in range(k_obj):
        code |= support[:, k].astype(np.int64) << k
    cover = np.zeros((n, k_obj, h, w), dtype=np.float32)
    for value in np.unique(code):
        if value == 0:
            continue
        ks = [k for k in range(k_obj) if value >> k & 1]
        ni, ri, ci = np.nonzero(code == value)
        M = ink[:, ks, :].astype(np.float64)  # [N, k, 3]
        gram = M @ M.transpose(0, 2, 1) + 1e-6 * np.eye(len(ks))
        pinv = np.linalg.solve(gram, M)  # [N, k, 3] = (M M^T)^-1 M
        a = np.einsum("pkc,pc->pk", pinv[ni], d[ni, ri, ci].astype(np.float64))
        for j, k in enumerate(ks):
            cover[ni, k, ri, ci] = np.clip(a[:, j], 0.0, 1.0)
    return cover
