"""Task D: two squares, one above the other (rules-paper protocol Sec. 1.4, ``square_two``).

The authors' generator was not recovered; only the evaluator and the observed feature ranges were.
Our choices (justified in docs/tasks.md):

- upper square side l1 ~ U(0.16 S, 0.32 S) (the observed training range, converted from the
  authors' 1024-normalised 770 px PNGs), lower side l2 = 1.5 l1 (fine rule), so l2 in [0.24, 0.48] S;
- vertical gap between the squares ~ U(0.05 S, 0.12 S) (the largest contrastive stack still fits);
  the stack's bottom uniform so that both squares keep a 0.5-unit margin from the canvas edge;
  horizontal positions independent, uniform within the same margin (the squares may overlap in x,
  never in y);
- upper square warm family, lower square cool family (as the small/large pair of Task C).

Features (fractions of the image width): l1 (upper side), l2 (lower side) and the square centres.
Fine rule l2 = 1.5 l1, plotted as rule_x = l1, rule_y = l2, slope g = 1.5. Coarse rule: the lower
square is the larger, l1 < l2.

Variants: ``violate`` swaps the sizes (the upper square is 1.5x the lower); ``contrastive``: l2 =
1.5 l1 + 1 (class 0), 1.5 l1 (class 1), 1.5 l1 - 1 (class 2) scene units, mirroring Task C's
"+-1 diameter unit".
"""

from __future__ import annotations

import numpy as np

from .raster import Rect, S, sample_colors

# task registry declarations (fullscale/tasks/registry.py)
NAME = "D"
TITLE = "two squares, one above the other"
STREAM_ID = 3  # historical data-stream id: keeps every rendered Task D set byte-identical
RULE_SLOPE = 1.5
COARSE_RULE = "the lower square is the larger, l1 < l2"
PAPER_N, PAPER_EPOCHS = 2000, 1000
COLOR = "#c44e52"
EVAL_OBJECTS = (("warm", "warm", "rect"), ("cool", "cool", "rect"))
SIDE_RANGE = (0.16 * S, 0.32 * S)
GAP_RANGE = (0.05 * S, 0.12 * S)
MARGIN = 0.5
POSITION_FEATURES = ("l1", "l2", "upper_x", "upper_y", "lower_x", "lower_y")
# the held-out band's free variable (issue 14): the upper square's side l1 (fraction of the width)
FREE_VARIABLE = "l1"
OBJECTS = ("upper", "lower")


def sample(rng: np.random.Generator, n: int, *, contrastive: bool = False, violate: bool = False):
    base = rng.uniform(*SIDE_RANGE, n)
    labels = None
    s_up, s_low = base, RULE_SLOPE * base
    if contrastive:
        labels = rng.permutation(np.arange(n) % 3)
        s_low = s_low + np.where(labels == 0, 1.0, np.where(labels == 2, -1.0, 0.0))
    elif violate:
        s_up, s_low = s_low, s_up
    gap = rng.uniform(*GAP_RANGE, n)
    total = s_up + gap + s_low
    y_low = rng.uniform(MARGIN, S - MARGIN - total)
    y_up = y_low + s_low + gap
    x_low = rng.uniform(MARGIN, S - MARGIN - s_low)
    x_up = rng.uniform(MARGIN, S - MARGIN - s_up)
    up_color = sample_colors(rng, "warm", n)
    low_color = sample_colors(rng, "cool", n)
    lower = Rect(x_low, x_low + s_low, y_low, y_low + s_low, low_color)
    upper = Rect(x_up, x_up + s_up, y_up, y_up + s_up, up_color)
    features = {
        "l1": s_up / S, "l2": s_low / S,
        "upper_x": (x_up + s_up / 2) / S, "upper_y": (y_up + s_up / 2) / S,
        "lower_x": (x_low + s_low / 2) / S, "lower_y": (y_low + s_low / 2) / S,
        "rule_x": s_up / S, "rule_y": s_low / S,
        "coarse_ok": s_up < s_low,
    }
    for name, col in zip(OBJECTS, (up_color, low_color)):
        for k, ch in enumerate("rgb"):
            features[f"{name}_{ch}"] = col[:, k]
    return [lower, upper], features, labels


def measured(ms, color, size) -> dict:
    """Evaluator hook: the upper square is the higher one (whatever its colour), pixels -> fractions."""
    warm, cool = ms
    warm_up = 0.5 * (warm["y0"] + warm["y1"]) <= 0.5 * (cool["y0"] + cool["y1"])
    side = {k: 0.5 * (m["width"] + m["height"]) / size for k, m in (("warm", warm), ("cool", cool))}
    pick = lambda a, b, up: np.where(warm_up == up, a, b)  # noqa: E731
    l1, l2 = pick(side["warm"], side["cool"], True), pick(side["warm"], side["cool"], False)
    cx = {k: 0.5 * (m["x0"] + m["x1"]) / size for k, m in (("warm", warm), ("cool", cool))}
    cy = {k: 1.0 - 0.5 * (m["y0"] + m["y1"]) / size for k, m in (("warm", warm), ("cool", cool))}
    aspect = {k: m["width"] / np.maximum(m["height"], 1e-9) for k, m in (("warm", warm), ("cool", cool))}
    cols = {"l1": l1, "l2": l2,
            "upper_x": pick(cx["warm"], cx["cool"], True), "upper_y": pick(cy["warm"], cy["cool"], True),
            "lower_x": pick(cx["warm"], cx["cool"], False), "lower_y": pick(cy["warm"], cy["cool"], False),
            "upper_aspect": pick(aspect["warm"], aspect["cool"], True),
            "lower_aspect": pick(aspect["warm"], aspect["cool"], False),
            "rule_x": l1, "rule_y": l2, "coarse_ok": l1 < l2}
    for name, col in (("upper", np.where(warm_up[:, None], color[:, 0], color[:, 1])),
                      ("lower", np.where(warm_up[:, None], color[:, 1], color[:, 0]))):
        for j, ch in enumerate("rgb"):
            cols[f"{name}_{ch}"] = col[:, j]
    return cols
