"""Task A: light source, pole and shadow (rules-paper protocol Sec. 1.1, ``sunshadow_lfd_lnd_rfd_rnd``).

Scene (units of S = 32, y up): ground g = 0.1 S; pole of width 0.12 S centred at x_p = S/2 from g to
g + H, H ~ U(0.2 S, 0.4 S); sun disc of radius 0.1 S at (x_s, g + 2H); shadow from x_p, length
L = H |x_s - x_p| / (H_sun - H) = |x_s - x_p|, away from the sun, y in [g - 0.08 S, g]. Sun x from
four equally frequent classes: l_f U(0, 0.2 S), r_f U(0.8 S, S), l_n U(0.3 S, 0.5 S), r_n U(0.5 S, 0.7 S).

Features (fractions of the image width): l1 = |x_s - x_p| (sun to pole), h1 = sun centre above the
pole top, h2 = pole height, l2 = shadow length. Fine rule (similar triangles): l1 h2 = l2 h1, plotted
as rule_x = l1 h2 against rule_y = l2 h1, slope g = 1. Coarse rule: sun and shadow on opposite sides.

Variants: ``violate`` puts the shadow on the sun's side (class suffix 's'); ``contrastive`` gives
class 1 = conforming, class 0 = short shadow (L x U(0.1, 0.5)), class 2 = long shadow
(L x U(1.5, 1.9)), capped at min(S - x_p, x_p) = S/2 as the authors do (Sec. 1.5).
"""

from __future__ import annotations

import numpy as np

from .raster import Disc, Rect, S, sample_colors

GROUND = 0.1 * S
POLE_X = S / 2
POLE_W = 0.12 * S
SUN_R = 0.1 * S
SHADOW_T = 0.08 * S
CLASSES = ("l_f", "r_f", "l_n", "r_n")
SUN_X_RANGE = {"l_f": (0.0, 0.2 * S), "r_f": (0.8 * S, S), "l_n": (0.3 * S, 0.5 * S), "r_n": (0.5 * S, 0.7 * S)}
# task registry declarations (fullscale/tasks/registry.py)
NAME = "A"
TITLE = "sun, pole and shadow"
STREAM_ID = 0  # historical data-stream id: keeps every rendered Task A set byte-identical
RULE_SLOPE = 1.0
COARSE_RULE = "the sun and the shadow are on opposite sides of the pole"
PAPER_N, PAPER_EPOCHS = 4000, 400
COLOR = "#4c72b0"
EVAL_OBJECTS = (("sun", "warm", "disc"), ("pole", "cool", "rect"), ("shadow", "grey", "rect"))
POSITION_FEATURES = ("sun_x", "sun_y", "pole_top", "shadow_x0", "shadow_x1")
# the held-out band's free variable (issue 14): the sun's x, a fraction of the image width
FREE_VARIABLE = "sun_x"
OBJECTS = ("sun", "pole", "shadow")


def sample(rng: np.random.Generator, n: int, *, contrastive: bool = False, violate: bool = False):
    """Scene parameters for ``n`` images: (shapes in painter order, feature columns, labels or None)."""
    cls = np.array(CLASSES)[np.arange(n) % 4]
    lo = np.array([SUN_X_RANGE[c][0] for c in CLASSES])[np.arange(n) % 4]
    hi = np.array([SUN_X_RANGE[c][1] for c in CLASSES])[np.arange(n) % 4]
    sun_x = rng.uniform(lo, hi)
    pole_h = rng.uniform(0.2 * S, 0.4 * S, n)
    sun_h = np.clip(2.0 * pole_h, 0.3 * S, 0.8 * S)  # the clip never binds (protocol Sec. 1.1)
    shadow_len = pole_h * np.abs(sun_x - POLE_X) / (sun_h - pole_h)
    labels = None
    if contrastive:
        labels = rng.permutation(np.arange(n) % 3)
        short = rng.uniform(0.1, 0.5, n)
        long = rng.uniform(1.5, 1.9, n)
        factor = np.where(labels == 0, short, np.where(labels == 2, long, 1.0))
        shadow_len = np.minimum(shadow_len * factor, min(S - POLE_X, POLE_X))
    sun_left = sun_x < POLE_X
    # the shadow points away from the sun ('d'), or towards it when violating ('s')
    shadow_right = sun_left if not violate else ~sun_left
    shadow_x0 = np.where(shadow_right, POLE_X, POLE_X - shadow_len)
    shadow_x1 = np.where(shadow_right, POLE_X + shadow_len, POLE_X)

    sun_color = sample_colors(rng, "warm", n)
    pole_color = sample_colors(rng, "cool", n)
    shadow_color = sample_colors(rng, "grey", n)
    sun = Disc(sun_x, GROUND + sun_h, np.full(n, SUN_R), sun_color)
    pole = Rect(np.full(n, POLE_X - POLE_W / 2), np.full(n, POLE_X + POLE_W / 2),
                np.full(n, GROUND), GROUND + pole_h, pole_color)
    shadow = Rect(shadow_x0, shadow_x1, np.full(n, GROUND - SHADOW_T), np.full(n, GROUND), shadow_color)

    l1 = np.abs(sun_x - POLE_X) / S
    h1 = (sun_h - pole_h) / S
    h2 = pole_h / S
    l2 = shadow_len / S
    side = "s" if violate else "d"
    features = {
        "cls": np.char.add(cls.astype(str), "_" + side),
        "sun_x": sun_x / S, "sun_y": (GROUND + sun_h) / S,
        "pole_x": np.full(n, POLE_X / S), "pole_top": (GROUND + pole_h) / S, "pole_bottom": np.full(n, GROUND / S),
        "shadow_x0": shadow_x0 / S, "shadow_x1": shadow_x1 / S,
        "l1": l1, "h1": h1, "l2": l2, "h2": h2,
        "rule_x": l1 * h2, "rule_y": l2 * h1,
        "coarse_ok": np.full(n, not violate),
    }
    for name, col in zip(OBJECTS, (sun_color, pole_color, shadow_color)):
        for k, ch in enumerate("rgb"):
            features[f"{name}_{ch}"] = col[:, k]
    return [sun, pole, shadow], features, labels


def measured(ms, color, size) -> dict:
    """Evaluator hook: feature columns from the measured sun (disc), pole and shadow (rects), pixels."""
    sun, pole, shadow = ms
    sun_x, sun_y = sun["cx"] / size, 1.0 - sun["cy"] / size
    pole_x = 0.5 * (pole["x0"] + pole["x1"]) / size
    pole_top, pole_bottom = 1.0 - pole["y0"] / size, 1.0 - pole["y1"] / size
    sx0, sx1 = shadow["x0"] / size, shadow["x1"] / size
    l1, h1 = np.abs(sun_x - pole_x), np.abs(sun_y - pole_top)
    h2, l2 = pole_top - pole_bottom, sx1 - sx0
    # the shadow's far end (from the pole axis) tells its side (the authors' 'd' / 's' label)
    far_end = np.where(np.abs(sx1 - pole_x) >= np.abs(sx0 - pole_x), sx1, sx0)
    coarse = np.sign(sun_x - pole_x) * np.sign(far_end - pole_x) < 0
    cols = {"sun_x": sun_x, "sun_y": sun_y, "pole_x": pole_x, "pole_top": pole_top, "pole_bottom": pole_bottom,
            "shadow_x0": sx0, "shadow_x1": sx1, "l1": l1, "h1": h1, "l2": l2, "h2": h2,
            "rule_x": l1 * h2, "rule_y": l2 * h1, "coarse_ok": coarse}
    for k, name in enumerate(OBJECTS):
        for j, ch in enumerate("rgb"):
            cols[f"{name}_{ch}"] = color[:, k, j]
    return cols
