"""Anti-aliased rendering of the task scenes, vectorised over a whole data set, plus colour families.

Scene convention (rules-paper protocol Sec. 1.0): a square canvas of ``S = 32`` scene units, x to
the right, y *up*, white background. The authors draw with matplotlib on a 770 px figure and
downscale; we render straight at the requested size with the exact box-filtered coverage of every
pixel (ours):

- axis-aligned rectangles: coverage is separable, ``a(r, c) = fx(c) * fy(r)`` with ``fx`` the
  overlap of the pixel column with ``[x0, x1]`` (exact);
- discs: exact too, from the closed-form area of the disc inside a quadrant evaluated at the pixel
  corners (four corner terms per pixel), on a window around each disc;
- compositing: ``colour = white + sum_k a_k (c_k - white)``, i.e. coverage-weighted mixing (the
  box filter of the true scene). Where shapes overlap, the later (upper) shape takes the coverage
  first. There is no "conflation" darkening of shared edges, so touching shapes (Task A pole and
  shadow, Task C circles) blend exactly, and the evaluator can unmix them.

Colours come from the authors' HSV families (OpenCV units: H in [0, 180), S and V in [0, 255]),
drawn uniformly per object and image, then converted to RGB (float, rounded once at the end).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

S = 32.0  # scene units per image side (rules-paper protocol Sec. 1.0)
WHITE = np.array([255.0, 255.0, 255.0])

# HSV boxes in OpenCV units (rules-paper protocol Sec. 1.0): name -> ((h_lo, h_hi), (s_lo, s_hi), (v_lo, v_hi))
FAMILIES = {
    "warm": ((0.0, 30.0), (100.0, 255.0), (200.0, 255.0)),  # "sun", yellow-orange (and red at H ~ 0)
    "cool": ((90.0, 150.0), (100.0, 255.0), (100.0, 255.0)),  # "pole", blue-green
    "grey": ((0.0, 180.0), (0.0, 50.0), (50.0, 150.0)),  # "shadow", grey-brown (Task A only)
}

# Pixels per image above which rendering goes in chunks of images (bounds memory at 128 px).
_CHUNK_PIXELS = 1 << 18


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """OpenCV-convention HSV (H in [0, 180), S, V in [0, 255]) -> RGB floats in [0, 255], shape [..., 3]."""
    h6 = (np.asarray(h, dtype=np.float64) % 180.0) / 30.0  # hue sector in [0, 6)
    s = np.asarray(s, dtype=np.float64) / 255.0
    v = np.asarray(v, dtype=np.float64)
    c = v * s
    x = c * (1.0 - np.abs(h6 % 2.0 - 1.0))
    m = v - c
    sector = np.floor(h6).astype(int) % 6
    zero = np.zeros_like(c)
    # (r, g, b) before adding m, per sector 0..5
    table = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    rgb = np.zeros(np.shape(c) + (3,))
    for k, (r, g, b) in enumerate(table):
        sel = sector == k
        rgb[sel] = np.stack([r[sel], g[sel], b[sel]], axis=-1)
    return rgb + m[..., None]


def sample_colors(rng: np.random.Generator, family: str, n: int) -> np.ndarray:
    """``n`` RGB colours (float, [n, 3]) drawn uniformly in a family's HSV box."""
    (h0, h1), (s0, s1), (v0, v1) = FAMILIES[family]
    h = rng.uniform(h0, h1, n)
    s = rng.uniform(s0, s1, n)
    v = rng.uniform(v0, v1, n)
    return hsv_to_rgb(h, s, v)


@dataclass
class Rect:
    """Axis-aligned rectangles in scene units (arrays of length n): x in [x0, x1], y in [y0, y1] (y up)."""

    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    color: np.ndarray  # [n, 3] RGB floats


@dataclass
class Disc:
    """Discs in scene units (arrays of length n): centre (cx, cy), radius r."""

    cx: np.ndarray
    cy: np.ndarray
    r: np.ndarray
    color: np.ndarray


def _interval_cover(lo: np.ndarray, hi: np.ndarray, size: int) -> np.ndarray:
    """Overlap of pixel cells [k, k+1] (k = 0..size-1) with [lo, hi], both in pixel units: [n, size]."""
    k = np.arange(size, dtype=np.float32)
    lo = np.asarray(lo, dtype=np.float32)[:, None]
    hi = np.asarray(hi, dtype=np.float32)[:, None]
    return np.clip(np.minimum(hi, k + 1.0) - np.maximum(lo, k), 0.0, 1.0)


def rect_coverage(shape: Rect, size: int, sl: slice = slice(None)) -> np.ndarray:
    """Exact coverage [n, size, size] of rectangles; rows go down (row 0 is the top, y = S)."""
    px = size / S
    fx = _interval_cover(shape.x0[sl] * px, shape.x1[sl] * px, size)
    # scene y (up) -> pixel row coordinate (down): v = (S - y) * px
    fy = _interval_cover((S - shape.y1[sl]) * px, (S - shape.y0[sl]) * px, size)
    return fy[:, :, None] * fx[:, None, :]


def _disc_corner_area(x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Area of the disc of radius r centred at 0 inside the quadrant {u <= x, v <= y} (ours, exact).

    With G(t) = int_{-r}^{t} sqrt(r^2 - u^2) du and w = sqrt(r^2 - y^2): the strip |u| <= w
    contributes y + sqrt(r^2 - u^2), the rest 2 sqrt(r^2 - u^2) (y >= 0) or 0 (y < 0), so
    F = G(x) + y (clip(x, -w, w) + w) + sign(y) (G(min(x, -w)) + G(max(x, w)) - G(w)).
    """
    r2 = r * r

    def G(t):
        t = np.clip(t, -r, r)
        return 0.5 * (t * np.sqrt(np.maximum(r2 - t * t, 0.0)) + r2 * np.arcsin(t / r)) + 0.25 * np.pi * r2

    xc = np.clip(x, -r, r)
    yc = np.clip(y, -r, r)
    w = np.sqrt(np.maximum(r2 - yc * yc, 0.0))
    sgn = np.where(y >= 0, 1.0, -1.0)
    return G(xc) + yc * (np.clip(xc, -w, w) + w) + sgn * (G(np.minimum(xc, -w)) + G(np.maximum(xc, w)) - G(w))


def disc_coverage(shape: Disc, size: int, sl: slice = slice(None)) -> np.ndarray:
    """Exact coverage [n, size, size] of discs (area of each pixel inside the disc).

    Computed on a per-image window around each disc (the same window size for all images, so the
    whole batch is one array operation) and scattered into the canvas.
    """
    px = size / S
    cx = shape.cx[sl] * px
    cy = (S - shape.cy[sl]) * px  # pixel row coordinate
    r = shape.r[sl] * px
    n = len(cx)
    out = np.zeros((n, size, size), dtype=np.float32)
    if n == 0:
        return out
    win = int(np.ceil(2.0 * r.max())) + 3
    c0 = np.floor(cx - r).astype(int) - 1  # first window column / row per image
    r0 = np.floor(cy - r).astype(int) - 1
    k = np.arange(win)
    cols = c0[:, None] + k[None, :]  # [n, win]
    rows = r0[:, None] + k[None, :]
    # exact pixel areas from the quadrant areas F at the (win + 1)^2 pixel corners
    ex = (c0[:, None] + np.arange(win + 1)[None, :] - cx[:, None])[:, None, :]  # [n, 1, win + 1]
    ey = (r0[:, None] + np.arange(win + 1)[None, :] - cy[:, None])[:, :, None]  # [n, win + 1, 1]
    F = _disc_corner_area(ex, ey, r[:, None, None])
    vals = (F[:, 1:, 1:] - F[:, :-1, 1:] - F[:, 1:, :-1] + F[:, :-1, :-1]).astype(np.float32)
    idx = np.broadcast_to(np.arange(n)[:, None, None], vals.shape)
    rr = np.broadcast_to(rows[:, :, None], vals.shape)
    cc = np.broadcast_to(cols[:, None, :], vals.shape)
    keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size) & (vals > 0)
    out[idx[keep], rr[keep], cc[keep]] = vals[keep]
    return out


def coverage(shape, size: int, sl: slice = slice(None)) -> np.ndarray:
    if isinstance(shape, Rect):
        return rect_coverage(shape, size, sl)
    return disc_coverage(shape, size, sl)


def composite(shapes: list, n: int, size: int) -> np.ndarray:
    """Render ``shapes`` (painter order: first = bottom) into uint8 RGB images [n, size, size, 3].

    Coverage-weighted mixing over white; an upper shape takes the pixel's coverage first, so
    overlapping shapes behave like opaque paint while touching shapes mix exactly (ours).
    """
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    step = max(1, _CHUNK_PIXELS // (size * size))
    white = WHITE.astype(np.float32)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        m = sl.stop - sl.start
        remaining = np.ones((m, size, size), dtype=np.float32)
        cover = np.empty((m, size, size, len(shapes)), dtype=np.float32)
        for k in range(len(shapes) - 1, -1, -1):  # top first
            a = np.minimum(coverage(shapes[k], size, sl), remaining)
            remaining -= a
            cover[..., k] = a
        # ink = sum_k a_k (white - c_k), one batched matmul per chunk
        ink_colors = np.stack([white - s.color[sl].astype(np.float32) for s in shapes], axis=1)  # [m, K, 3]
        ink = np.matmul(cover.reshape(m, size * size, len(shapes)), ink_colors).reshape(m, size, size, 3)
        np.subtract(white, ink, out=ink)
        np.rint(ink, out=ink)
        np.clip(ink, 0, 255, out=ink)
        out[sl] = ink.astype(np.uint8)
    return out
