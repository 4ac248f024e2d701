"""Sub-pixel geometry of rectangles and discs from coverage maps [N, H, W] (pixel units, rows down).

Our derivations (docs/tasks.md):

- Rectangle. Box-filtered coverage of an axis-aligned rectangle is separable, a(r, c) = g(r) f(c),
  so column sums are ``H f(c)`` and row sums ``W g(r)``. A rectangle at least two pixels wide has a
  fully covered column, so H = max column sum (else use rows). With ``c*`` a full column,
  ``x0 = c* - sum_{c < c*} f(c)`` and ``x1 = c* + 1 + sum_{c > c*} f(c)`` are exact; an axis with
  no full pixel falls back to centroid +- half the summed profile. The rank-one residual
  ``sum |a - rows x cols / A| / A`` is 0 for a rectangle and large for blobs and noise.
- Disc. Area A gives r = sqrt(A / pi) exactly; the coverage centroid gives the centre (error
  < 0.02 px). A disc cut by the image border (Task A's far suns): centre and radius from a
  least-squares fit of the exact cut-disc model to the column (or row) sums. Shape check: the polar second moment
  sum a rho^2 / A equals r^2 / 2 + 1/6 for a disc (1/6: pixel-centre sampling) and var_x = var_y.
"""

from __future__ import annotations

import numpy as np

MIN_AREA = 0.5  # px^2: fainter objects are "missing"


def _edges(p: np.ndarray):
    """Left and right edges [N] from normalised profiles p [N, L] (1 = fully covered cell)."""
    n, length = p.shape
    idx = np.arange(length)
    cstar = np.argmax(p, axis=1)
    before = np.where(idx[None, :] < cstar[:, None], p, 0.0).sum(1)
    after = np.where(idx[None, :] > cstar[:, None], p, 0.0).sum(1)
    full = p[np.arange(n), cstar] >= 0.97
    total = p.sum(1)
    centroid = (p * (idx + 0.5)[None, :]).sum(1) / np.maximum(total, 1e-9)
    lo = np.where(full, cstar - before, centroid - total / 2)
    hi = np.where(full, cstar + 1 + after, centroid + total / 2)
    return lo, hi


def _plateau(p: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """The full-coverage level of profiles [N, L]: the maximum (exact for renders), or for noisy
    images the median of the values within 10 % of it (the maximum of noisy sums is biased up)."""
    top = p.max(1)
    robust = np.nanmedian(np.where(p >= 0.9 * top[:, None], p, np.nan), axis=1)
    return np.where(noisy, robust, top)


def rect(a: np.ndarray, noisy: np.ndarray | None = None) -> dict:
    """x0, x1, y0 (top), y1 (bottom), width, height, area and rank-one residual per image."""
    noisy = np.zeros(len(a), dtype=bool) if noisy is None else noisy
    cs = a.sum(1)  # [N, W] = height * f(c)
    rs = a.sum(2)  # [N, H] = width * g(r)
    area = cs.sum(1)
    safe = np.maximum(area, 1e-9)
    hmax, wmax = _plateau(cs, noisy), _plateau(rs, noisy)
    ncols = (cs > 0.5 * hmax[:, None]).sum(1)
    nrows = (rs > 0.5 * wmax[:, None]).sum(1)
    wide = ncols >= nrows  # the long axis has fully covered lines across the short one
    height = np.where(wide, hmax, area / np.maximum(wmax, 1e-9))
    width = np.where(wide, area / np.maximum(hmax, 1e-9), wmax)
    f = cs / np.maximum(height, 1e-9)[:, None]
    g = rs / np.maximum(width, 1e-9)[:, None]
    x0, x1 = _edges(f)
    y0, y1 = _edges(g)
    model = rs[:, :, None] * cs[:, None, :] / safe[:, None, None]
    resid = np.abs(a - model).sum((1, 2)) / safe
    return {"x0": x0, "x1": x1, "y0": y0, "y1": y1, "width": x1 - x0, "height": y1 - y0,
            "area": area, "resid": resid}


def _G(t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """int_{-r}^{t} sqrt(r^2 - u^2) du for t clipped to [-r, r] (half the disc area left of t)."""
    t = np.clip(t, -r, r)
    return 0.5 * (t * np.sqrt(np.maximum(r * r - t * t, 0.0)) + r * r * np.arcsin(t / r)) + 0.25 * np.pi * r * r


def _disc_columns(x: np.ndarray, r: np.ndarray, length: int) -> np.ndarray:
    """Column sums [N, length] of whole-height discs with centre x and radius r (ours, exact)."""
    cols = np.arange(length)[None, :]
    return 2.0 * (_G(cols + 1 - x[:, None], r[:, None]) - _G(cols - x[:, None], r[:, None]))


def _fit_disc_profile(prof: np.ndarray, x0: np.ndarray, r0: np.ndarray, iters: int = 12):
    """Least-squares (x, r) of disc column sums, the image border cutting the disc as it may (ours).

    Gauss-Newton from (centroid, sqrt(area / pi)) with a finite-difference Jacobian; for discs that
    touch or cross one border, where the centroid and the area are biased.
    """
    x, r = x0.astype(np.float64), np.maximum(r0.astype(np.float64), 0.5)
    length = prof.shape[1]
    eps = 1e-4
    for _ in range(iters):
        base = _disc_columns(x, r, length)
        jx = (_disc_columns(x + eps, r, length) - base) / eps
        jr = (_disc_columns(x, r + eps, length) - base) / eps
        res = prof - base
        a11, a12, a22 = (jx * jx).sum(1), (jx * jr).sum(1), (jr * jr).sum(1)
        b1, b2 = (jx * res).sum(1), (jr * res).sum(1)
        det = np.maximum(a11 * a22 - a12 * a12, 1e-12)
        dx, dr = (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
        x, r = x + np.clip(dx, -1, 1), np.maximum(r + np.clip(dr, -1, 1), 0.5)
    return x, r


def disc(a: np.ndarray) -> dict:
    """Centre (cx, cy), radius r, area, border clipping and shape statistics per image."""
    n, h, w = a.shape
    area = a.sum((1, 2))
    safe = np.maximum(area, 1e-9)
    xs = np.arange(w) + 0.5
    ys = np.arange(h) + 0.5
    cs, rs = a.sum(1), a.sum(2)
    cx = (cs * xs).sum(1) / safe
    cy = (rs * ys).sum(1) / safe
    r = np.sqrt(area / np.pi)
    edge = 0.02
    left, right = a[:, :, 0].sum(1) > edge, a[:, :, -1].sum(1) > edge
    top, bottom = a[:, 0, :].sum(1) > edge, a[:, -1, :].sum(1) > edge
    # touching a vertical border: the border may cut the disc, which biases centroid and area; fit
    # centre and radius to the column sums with the exact cut-disc model instead. Likewise rows.
    clipped = np.zeros(n, dtype=bool)
    for touch, prof, is_x in ((left | right, cs, True), (top | bottom, rs, False)):
        sel = np.flatnonzero(touch)
        if sel.size == 0:
            continue
        c0 = cx[sel] if is_x else cy[sel]
        c_fit, r_fit = _fit_disc_profile(prof[sel], c0, r[sel])
        cut = (c_fit - r_fit < -1e-3) | (c_fit + r_fit > prof.shape[1] + 1e-3)
        clipped[sel] |= cut
        sel, c_fit, r_fit = sel[cut], c_fit[cut], r_fit[cut]
        r[sel] = r_fit
        if is_x:
            cx[sel] = c_fit
        else:
            cy[sel] = c_fit
    vx = (cs * (xs[None, :] - cx[:, None]) ** 2).sum(1) / safe
    vy = (rs * (ys[None, :] - cy[:, None]) ** 2).sum(1) / safe
    polar = (vx + vy) / np.maximum(r**2 / 2 + 1.0 / 6.0, 1e-9)
    iso = np.minimum(vx, vy) / np.maximum(np.maximum(vx, vy), 1e-9)
    return {"cx": cx, "cy": cy, "r": r, "area": area, "clipped": clipped,
            "polar": np.where(clipped, 1.0, polar), "iso": np.where(clipped, 1.0, iso)}
