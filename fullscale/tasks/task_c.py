"""Task C: two tangent circles (rules-paper protocol Sec. 1.3, ``circles_two``).

Scene (units of S = 32): small circle (warm family) of diameter d1 ~ U(0.1 S, 0.3 S); large circle
(cool family) of diameter d2 = sqrt(2) d1 centred at (x_o, y_o) ~ U(0.1 S, 0.9 S)^2; the small
circle touches it externally on a side drawn from {left, right, top, bottom}. Centre and side are
redrawn until both circles lie inside the canvas.

Features (fractions of the image width): r1 = radius of the warm circle, r2 = radius of the cool
circle, and the two centres. Fine rule r2 = sqrt(2) r1, plotted as rule_x = r1, rule_y = r2 (the
authors' radius / T), slope g = sqrt(2). Coarse rule (ours, see docs/tasks.md): the circles differ in
size with the cool one the larger, r2 > 1.05 r1.

Variants: ``violate`` alternates equal diameters and swapped sizes (the warm circle is the larger);
``contrastive`` (Sec. 1.5): d1 ~ U(0.2 S, 0.3 S) in all three classes, d2 = sqrt(2) d1 + 1 (class 0),
sqrt(2) d1 (class 1), sqrt(2) d1 - 1 (class 2), in scene units (the authors' "+1 diameter unit").
"""

from __future__ import annotations

import numpy as np

from .raster import Disc, S, sample_colors

# task registry declarations (fullscale/tasks/registry.py)
NAME = "C"
TITLE = "two tangent circles"
STREAM_ID = 2  # historical data-stream id: keeps every rendered Task C set byte-identical
RULE_SLOPE = float(np.sqrt(2.0))
COARSE_RATIO = 1.05
COARSE_RULE = f"the cool circle is the larger, r2 > {COARSE_RATIO} r1"
PAPER_N, PAPER_EPOCHS = 2000, 1600
COLOR = "#55a868"
EVAL_OBJECTS = (("warm", "warm", "disc"), ("cool", "cool", "disc"))
POSITION_FEATURES = ("r1", "r2", "c1_x", "c1_y", "c2_x", "c2_y")
# the held-out band's free variable (issue 14): the warm circle's radius r1 (fraction of the width)
FREE_VARIABLE = "r1"
OBJECTS = ("warm", "cool")
_SIDES = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # left, right, top, bottom


def _place(rng: np.random.Generator, r_small: np.ndarray, r_large: np.ndarray):
    """Centres of both circles, redrawn per image until both discs are inside [0, S]^2."""
    n = len(r_small)
    c_large = np.zeros((n, 2))
    c_small = np.zeros((n, 2))
    side = np.zeros(n, dtype=int)
    todo = np.ones(n, dtype=bool)
    for _ in range(10_000):
        k = int(todo.sum())
        if k == 0:
            return c_small, c_large, side
        c_large[todo] = rng.uniform(0.1 * S, 0.9 * S, (k, 2))
        side[todo] = rng.integers(0, 4, k)
        c_small[todo] = c_large[todo] + _SIDES[side[todo]] * (r_small[todo] + r_large[todo])[:, None]
        inside = lambda c, r: np.all((c - r[:, None] >= 0.0) & (c + r[:, None] <= S), axis=1)  # noqa: E731
        todo &= ~(inside(c_small, r_small) & inside(c_large, r_large))
    raise RuntimeError("Task C placement did not converge")  # pragma: no cover


def sample(rng: np.random.Generator, n: int, *, contrastive: bool = False, violate: bool = False):
    labels = None
    if contrastive:
        labels = rng.permutation(np.arange(n) % 3)
        d1 = rng.uniform(0.2 * S, 0.3 * S, n)
        offset = np.where(labels == 0, 1.0, np.where(labels == 2, -1.0, 0.0))
        d_warm, d_cool = d1, np.sqrt(2.0) * d1 + offset
        kind = None
    else:
        d1 = rng.uniform(0.1 * S, 0.3 * S, n)
        d_warm, d_cool = d1, np.sqrt(2.0) * d1
        kind = None
        if violate:
            kind = np.where(np.arange(n) % 2 == 0, "equal", "swapped")
            d_warm = np.where(kind == "swapped", np.sqrt(2.0) * d1, d1)
            d_cool = np.where(kind == "swapped", d1, np.where(kind == "equal", d1, d_cool))
    r_warm, r_cool = d_warm / 2, d_cool / 2
    c_warm, c_cool, side = _place(rng, r_warm, r_cool)
    warm_color = sample_colors(rng, "warm", n)
    cool_color = sample_colors(rng, "cool", n)
    shapes = [Disc(c_cool[:, 0], c_cool[:, 1], r_cool, cool_color), Disc(c_warm[:, 0], c_warm[:, 1], r_warm, warm_color)]
    features = {
        "r1": r_warm / S, "r2": r_cool / S,
        "c1_x": c_warm[:, 0] / S, "c1_y": c_warm[:, 1] / S, "c2_x": c_cool[:, 0] / S, "c2_y": c_cool[:, 1] / S,
        "side": np.array(["left", "right", "top", "bottom"])[side],
        "rule_x": r_warm / S, "rule_y": r_cool / S,
        "coarse_ok": r_cool > COARSE_RATIO * r_warm,
    }
    if kind is not None:
        features["violation"] = kind
    for name, col in zip(OBJECTS, (warm_color, cool_color)):
        for k, ch in enumerate("rgb"):
            features[f"{name}_{ch}"] = col[:, k]
    return shapes, features, labels


def measured(ms, color, size) -> dict:
    """Evaluator hook: radii and centres of the measured warm and cool discs, pixels -> fractions."""
    warm, cool = ms
    r1, r2 = warm["r"] / size, cool["r"] / size
    cols = {"r1": r1, "r2": r2, "c1_x": warm["cx"] / size, "c1_y": 1.0 - warm["cy"] / size,
            "c2_x": cool["cx"] / size, "c2_y": 1.0 - cool["cy"] / size,
            "rule_x": r1, "rule_y": r2, "coarse_ok": r2 > COARSE_RATIO * r1}
    for k, name in enumerate(OBJECTS):
        for j, ch in enumerate("rgb"):
            cols[f"{name}_{ch}"] = color[:, k, j]
    return cols
