"""Task B: two rectangles in perspective (rules-paper protocol Sec. 1.2, ``perspective_type1``).

Scene (units of S = 32): two rectangles of width 0.12 S, both vertically centred on y = S/2.
Rectangle 1 (warm family): left edge x1 = a ~ U(0, 0.3 S), height h1 ~ U(0.2 S, 0.6 S).
Rectangle 2 (cool family): left edge x2 ~ U(a + 0.2 S, 0.8 S), height h2 = a h1 / x2.

Features (fractions of the image width): x1, h1, x2, h2 (l = distance of the left edge from the
left border). Fine rule x1 h1 = x2 h2, plotted as rule_x = x1 h1, rule_y = x2 h2, slope g = 1.
Coarse rule: the farther (right) rectangle is shorter, h1 > h2.

Variants: ``violate`` swaps the two heights (the near rectangle is the shorter one);
``contrastive`` (Sec. 1.5): class 2 has h2 = (x1 h1 - m) / x2 and class 0 h2 = (x1 h1 + m) / x2 with
m = 15 + |5 N(0, 1)| scene units^2, resampled until h2 >= 0.1 S, x1 h1 > m and h2 < h1 (the coarse
rule holds in every class); class 1 is the conforming law above.
"""

from __future__ import annotations

import numpy as np

from .raster import Rect, S, sample_colors

WIDTH = 0.12 * S
# task registry declarations (fullscale/tasks/registry.py)
NAME = "B"
TITLE = "two rectangles in perspective"
STREAM_ID = 1  # historical data-stream id: keeps every rendered Task B set byte-identical
RULE_SLOPE = 1.0
COARSE_RULE = "the farther (right) rectangle is the shorter one"
PAPER_N, PAPER_EPOCHS = 2000, 800
COLOR = "#dd8452"
EVAL_OBJECTS = (("warm", "warm", "rect"), ("cool", "cool", "rect"))
POSITION_FEATURES = ("x1", "h1", "x2", "h2")
# the held-out band's free variable (issue 14): the near rectangle's left edge x1 (fraction of the width)
FREE_VARIABLE = "x1"
OBJECTS = ("near", "far")


def _draw(rng: np.random.Generator, n: int):
    a = rng.uniform(0.0, 0.3 * S, n)
    h1 = rng.uniform(0.2 * S, 0.6 * S, n)
    x2 = rng.uniform(a + 0.2 * S, 0.8 * S)
    return a, h1, x2


def sample(rng: np.random.Generator, n: int, *, contrastive: bool = False, violate: bool = False):
    a, h1, x2 = _draw(rng, n)
    h2 = a * h1 / x2
    labels = None
    if contrastive:
        labels = rng.permutation(np.arange(n) % 3)
        sign = np.where(labels == 0, 1.0, np.where(labels == 2, -1.0, 0.0))
        todo = labels != 1
        m = np.zeros(n)
        for _ in range(1000):  # rejection: every deviating image gets a valid (a, h1, x2, m)
            k = int(todo.sum())
            if k == 0:
                break
            a[todo], h1[todo], x2[todo] = _draw(rng, k)
            m[todo] = 15.0 + np.abs(5.0 * rng.standard_normal(k))
            h2[todo] = (a[todo] * h1[todo] + sign[todo] * m[todo]) / x2[todo]
            ok = (h2 >= 0.1 * S) & (a * h1 > m) & (h2 < h1)
            todo &= ~ok
        if todo.any():  # pragma: no cover - the acceptance rate is ~50 %
            raise RuntimeError("Task B contrastive rejection sampling did not converge")
    height_near, height_far = (h2, h1) if violate else (h1, h2)
    near_color = sample_colors(rng, "warm", n)
    far_color = sample_colors(rng, "cool", n)
    near = Rect(a, a + WIDTH, S / 2 - height_near / 2, S / 2 + height_near / 2, near_color)
    far = Rect(x2, x2 + WIDTH, S / 2 - height_far / 2, S / 2 + height_far / 2, far_color)
    features = {
        "x1": a / S, "h1": height_near / S, "x2": x2 / S, "h2": height_far / S,
        "rule_x": a * height_near / S**2, "rule_y": x2 * height_far / S**2,
        "coarse_ok": height_near > height_far,
    }
    for name, col in zip(OBJECTS, (near_color, far_color)):
        for k, ch in enumerate("rgb"):
            features[f"{name}_{ch}"] = col[:, k]
    return [near, far], features, labels


def measured(ms, color, size) -> dict:
    """Evaluator hook: the near rectangle is the left one (whatever its colour), pixels -> fractions."""
    warm, cool = ms
    warm_left = warm["x0"] <= cool["x0"]
    pick = lambda key, left: np.where(warm_left == left, warm[key], cool[key])  # noqa: E731
    x1, h1 = pick("x0", True) / size, pick("height", True) / size
    x2, h2 = pick("x0", False) / size, pick("height", False) / size
    cols = {"x1": x1, "h1": h1, "x2": x2, "h2": h2, "rule_x": x1 * h1, "rule_y": x2 * h2, "coarse_ok": h1 > h2}
    for name, col in (("near", np.where(warm_left[:, None], color[:, 0], color[:, 1])),
                      ("far", np.where(warm_left[:, None], color[:, 1], color[:, 0]))):
        for j, ch in enumerate("rgb"):
            cols[f"{name}_{ch}"] = col[:, j]
    return cols
