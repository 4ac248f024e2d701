"""The rules-paper authors' image evaluator, image by image: from one image to one point or a failure.

Implemented from ``shared/spec/paper-protocol-evaluator.md`` (their notebook ``visulization.ipynb``,
yujinhanml/dms-rules ``ca95f94``; cell numbers below are the spec's). Every documented quirk is
reproduced on purpose (it produced the paper's numbers); the recipes, fits and conform % that turn
points into the paper's metrics are in :mod:`fullscale.evaluate.paper_protocol`.

Each ``parse_<task>_<pipeline>(bgr, settings)`` takes one uint8 BGR image of any size and returns a
dict: ``reason`` ("" when a point was made), ``rule_x``, ``rule_y``, ``coarse_ok`` (None when the
pipeline has no coarse verdict for the image) and the raw features. OpenCV does all contour work,
as in the original (spec Sec. 1.4); the results follow OpenCV's own tracing order.
"""

from __future__ import annotations

import math

import numpy as np

# spec Sec. 1.3: HSV boxes (OpenCV 8-bit units), each (H lo, H hi, S lo, S hi, V lo, V hi), inclusive
A_STRICT = {"sun": (0, 30, 100, 255, 200, 255), "pole": (90, 150, 100, 255, 100, 255),
            "shadow": (0, 180, 0, 150, 50, 150)}  # cell 10
A_BROAD = {"sun": (0, 60, 50, 255, 200, 255), "pole": (90, 150, 50, 255, 50, 255),
           "shadow": (0, 180, 0, 150, 0, 220)}  # cell 15
A_TRAIN = {"sun": (0, 30, 100, 255, 200, 255), "pole": (90, 150, 100, 255, 100, 255),
           "shadow": (0, 180, 0, 50, 50, 150)}  # cell 6
B_GEN = ((0, 100, 20, 255, 100, 255), (60, 180, 20, 255, 20, 255))  # cell 64
# cell 56's ranges as written, (lo H, lo S, lo V ... ) sliced [:3] / [3:]: the "range bug" (Sec. 3.2)
B_TRAIN_AS_WRITTEN = ((0, 30, 100, 255, 200, 255), (90, 150, 100, 255, 100, 255))
B_TRAIN_INTENDED = ((0, 30, 100, 255, 200, 255), (90, 150, 100, 255, 100, 255))  # read as H/S/V pairs
COLOUR_UNION = ((20, 40, 50, 255, 100, 255),  # yellow
                (0, 10, 30, 255, 100, 255), (170, 180, 30, 255, 100, 255),  # red (both ends)
                (90, 130, 50, 255, 20, 255),  # blue
                (130, 160, 50, 255, 20, 255),  # purple
                (0, 180, 0, 255, 0, 50))  # black  (cells 78, 92)
C_TRAIN = ((0, 30, 100, 255, 200, 255), (90, 150, 100, 255, 100, 255))  # cell 73

T_GEN = 128  # every gen pipeline (Sec. 1.2)
T_TRAIN = {"A": 128, "B": 256, "C": 2048, "D": None}  # D train: not resized
C_MIN_R, C_MAX_RATIO = 5, 3.65  # cell 78
D_ASPECT, D_MIN_SIDE = (0.9, 1.1), 10  # cell 92


# ---- building blocks (spec Sec. 1) ------------------------------------------------------------------
def resize(bgr: np.ndarray, t: int | None) -> np.ndarray:
    """Sec. 1.2: INTER_AREA to t x t, aspect ignored (an integer upscale copies k x k blocks)."""
    import cv2

    if t is None or (bgr.shape[0] == t and bgr.shape[1] == t):
        return bgr
    return cv2.resize(bgr, (t, t), interpolation=cv2.INTER_AREA)


def hsv_mask(hsv: np.ndarray, box) -> np.ndarray:
    """Sec. 1.3: 0/255 mask of pixels inside an inclusive H/S/V box (H hi 180 or 255: no limit)."""
    import cv2

    h0, h1, s0, s1, v0, v1 = box
    return cv2.inRange(hsv, np.array([h0, s0, v0], np.uint8), np.array([min(h1, 255), s1, v1], np.uint8))


def union(hsv: np.ndarray, boxes) -> np.ndarray:
    out = hsv_mask(hsv, boxes[0])
    for box in boxes[1:]:
        out |= hsv_mask(hsv, box)
    return out


def contours(mask: np.ndarray) -> list:
    """Sec. 1.4: external contours, simple chain approximation, in OpenCV's own order."""
    import cv2

    found = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[-2]
    return list(found)


def largest(cs: list):
    """The first contour of maximum polygon area (Python's max keeps the first maximum)."""
    import cv2

    return max(cs, key=cv2.contourArea)


def centroid(c) -> tuple[int, int]:
    """Truncated m10/m00, m01/m00 of the contour polygon; (0, 0) when m00 = 0 (Sec. 1.4)."""
    import cv2

    m = cv2.moments(c)
    if m["m00"] == 0:
        return 0, 0
    return int(m["m10"] / m["m00"]), int(m["m01"] / m["m00"])


def extreme(c, axis: int, which: str) -> tuple[int, int]:
    """The first contour point with the minimum / maximum x (axis 0) or y (axis 1)."""
    pts = c.reshape(-1, 2)
    i = int(np.argmin(pts[:, axis]) if which == "min" else np.argmax(pts[:, axis]))
    return int(pts[i, 0]), int(pts[i, 1])


def four_vertex_boxes(cs: list) -> list:
    """Bounding boxes (x, y, w, h) of the contours whose Douglas-Peucker polygon (eps = 0.02 x closed
    perimeter) has exactly 4 vertices (cells 64, 87)."""
    import cv2

    out = []
    for c in cs:
        approx = cv2.approxPolyDP(c, 0.02 * cv2.arcLength(c, True), True)
        if len(approx) == 4:
            out.append(cv2.boundingRect(approx))
    return out


def _fail(reason: str, **extra) -> dict:
    return {"reason": reason, "rule_x": math.nan, "rule_y": math.nan, "coarse_ok": None, **extra}


# ---- Task A (Sec. 2) -------------------------------------------------------------------------------
def _hough_or_contour(mask: np.ndarray, ref: tuple[int, int], pole: bool, t: int):
    """Cell 10: (centre, end) of one object mask: the longest probabilistic Hough segment, else the
    largest contour. Centre (0, 0) means "missing" (the notebook's sentinel)."""
    import cv2

    if not mask.any():
        return (0, 0), (0, 0)
    lines = cv2.HoughLinesP(mask, 1, np.pi / 180, 30, minLineLength=t / 4, maxLineGap=20)
    if lines is not None and len(lines):
        seg = np.asarray(lines).reshape(-1, 4).astype(np.int64)  # (N, 1, 4) in OpenCV 4, (N, 4) in 5
        lengths = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
        x1, y1, x2, y2 = (int(v) for v in seg[int(np.argmax(lengths))])
        centre = ((x1 + x2) // 2, (y1 + y2) // 2)
        if pole:  # top-first; the pole's end plays no further role
            return centre, (x1, y1) if y1 <= y2 else (x2, y2)
        (lx, ly), (rx, ry) = ((x1, y1), (x2, y2)) if x1 <= x2 else ((x2, y2), (x1, y1))
        dl = math.hypot(lx - ref[0], ly - ref[1])
        dr = math.hypot(rx - ref[0], ry - ref[1])
        return centre, (rx, ry) if dr > dl else (lx, ly)  # the left endpoint wins ties
    c = largest(contours(mask))
    pts = c.reshape(-1, 2).astype(np.float64)
    far = int(np.argmax(np.hypot(pts[:, 0] - ref[0], pts[:, 1] - ref[1])))
    return centroid(c), (int(pts[far, 0]), int(pts[far, 1]))


def label_a(bgr: np.ndarray) -> tuple[str, str]:
    """Cell 10, the coarse labeller: ('', 'lnd' / 'rfs' / ...) or (failure reason, '')."""
    import cv2

    t = T_GEN
    hsv = cv2.cvtColor(resize(bgr, t), cv2.COLOR_BGR2HSV)
    pole_c, _ = _hough_or_contour(hsv_mask(hsv, A_STRICT["pole"]), (0, 0), True, t)
    sun_c, _ = _hough_or_contour(hsv_mask(hsv, A_STRICT["sun"]), pole_c, False, t)
    shadow_c, shadow_end = _hough_or_contour(hsv_mask(hsv, A_STRICT["shadow"]), pole_c, False, t)
    if (0, 0) in (pole_c, sun_c, shadow_c):
        return "not detected", ""
    if not shadow_c[1] > pole_c[1]:
        return "pole centre not higher than shadow", ""
    half = t // 2
    direction = "l" if sun_c[0] < half else "r"
    distance = "n" if abs(sun_c[0] - half) <= t // 4 else "f"
    sx, px, ex = sun_c[0], pole_c[0], shadow_end[0]
    side = "d" if (sx < px and ex > px) or (sx > px and ex < px) else "s"
    return "", direction + distance + side


def _a_objects(hsv: np.ndarray, boxes: dict):
    """Largest external contour per object, or None if a mask has none (cells 6, 15)."""
    out = {}
    for name in ("sun", "pole", "shadow"):
        cs = contours(hsv_mask(hsv, boxes[name]))
        if not cs:
            return None
        out[name] = largest(cs)
    return out


def parse_a_gen(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cells 10 + 15: the labeller, then the "Enhanced" fine features of d-labelled images (Sec. 2.2)."""
    import cv2

    why, lab = label_a(bgr)
    if why:
        return _fail(why, label="")
    if lab[2] != "d":
        return _fail("labelled s (coarse violation)", label=lab, coarse_ok=False)
    t = T_GEN
    hsv = cv2.cvtColor(resize(bgr, t), cv2.COLOR_BGR2HSV)
    obj = _a_objects(hsv, A_BROAD)
    if obj is None:
        return _fail("an object mask has no contour", label=lab, coarse_ok=True)
    scx, scy = centroid(obj["sun"])
    pole_cx = centroid(obj["pole"])[0]
    pt, pb = extreme(obj["pole"], 1, "min"), extreme(obj["pole"], 1, "max")
    sl, sr = extreme(obj["shadow"], 0, "min"), extreme(obj["shadow"], 0, "max")
    if pt[0] == pb[0] or abs(pb[0] - pt[0]) <= 0.01 * t:
        tail = sr if abs(sr[0] - pt[0]) > abs(sl[0] - pt[0]) else sl
    else:  # quirk (Sec. 2.2 step 4): the pole bottom itself can be the "tail"
        cand = (sl, sr, pb)
        tail = cand[int(np.argmax([abs(p[0] - pt[0]) for p in cand]))]
    u, h = abs(scx - pole_cx), abs(scy - pt[1])
    v, w = abs(pt[1] - tail[1]), abs(tail[0] - pt[0])  # stand-ins for h2 and l2 (quirks i-iv)
    feats = {"label": lab, "l1": u / t, "h1": h / t, "h2": v / t, "l2": w / t}
    if v == 0 or h == 0:
        return _fail("zero h1 or h2", coarse_ok=True, **feats)
    return {"reason": "", "rule_x": u * v / t**2, "rule_y": h * w / t**2, "coarse_ok": True, **feats}


def parse_a_train(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 6: strict masks (shadow S <= 50), extents instead of the shadow tail (Sec. 2.4). The
    cell-10 labeller runs too, for its counts only (and for the optional d-only fit)."""
    import cv2

    why, lab = label_a(bgr)
    coarse = None if why else lab[2] == "d"
    t = T_TRAIN["A"]
    hsv = cv2.cvtColor(resize(bgr, t), cv2.COLOR_BGR2HSV)
    obj = _a_objects(hsv, A_TRAIN)
    if obj is None:
        return _fail("an object mask has no contour", label=lab, coarse_ok=coarse)
    scx, scy = centroid(obj["sun"])
    pole_cx = centroid(obj["pole"])[0]
    pt, pb = extreme(obj["pole"], 1, "min"), extreme(obj["pole"], 1, "max")
    sl, sr = extreme(obj["shadow"], 0, "min"), extreme(obj["shadow"], 0, "max")
    l1, h1, h2, l2 = abs(scx - pole_cx), abs(scy - pt[1]), pb[1] - pt[1], sr[0] - sl[0]
    feats = {"label": lab, "l1": l1 / t, "h1": h1 / t, "h2": h2 / t, "l2": l2 / t}
    if h2 == 0 or h1 == 0:
        return _fail("zero h1 or h2", coarse_ok=coarse, **feats)
    return {"reason": "", "rule_x": l1 * h2 / t**2, "rule_y": h1 * l2 / t**2, "coarse_ok": coarse, **feats}


# ---- Task B (Sec. 3) -------------------------------------------------------------------------------
def _b_point(boxes: list, t: int, zero_test: bool) -> dict:
    if len(boxes) < 2:
        return _fail("fewer than two four-vertex shapes")
    (x1, _, _, h1), (x2, _, _, h2) = sorted(boxes, key=lambda b: b[0])[:2]  # stable, the two leftmost
    feats = {"x1": x1 / t, "h1": h1 / t, "x2": x2 / t, "h2": h2 / t}
    if zero_test and (x1 * h1 == 0 or x2 * h2 == 0):
        return _fail("zero x or h", **feats)
    return {"reason": "", "rule_x": (x1 / t) * (h1 / t), "rule_y": (x2 / t) * (h2 / t), "coarse_ok": h1 > h2, **feats}


def parse_b_gen(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 64: any four-vertex blob counts; the two leftmost boxes give the point (Sec. 3.1)."""
    import cv2

    hsv = cv2.cvtColor(resize(bgr, T_GEN), cv2.COLOR_BGR2HSV)
    return _b_point(four_vertex_boxes(contours(union(hsv, B_GEN))), T_GEN, zero_test=True)


def _range_as_written(r) -> tuple:
    """Cell 56's slicing: lower = r[:3], upper = r[3:], each as (H, S, V)."""
    lo, hi = r[:3], r[3:]
    return (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])


def parse_b_train(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 56: T = 256, no zero test; masks as written (the range bug, default) or as intended."""
    import cv2

    settings = settings or {}
    t = T_TRAIN["B"]
    hsv = cv2.cvtColor(resize(bgr, t), cv2.COLOR_BGR2HSV)
    if settings.get("b_train_ranges", "as-written") == "intended":
        boxes = B_TRAIN_INTENDED
    else:
        boxes = tuple(_range_as_written(r) for r in B_TRAIN_AS_WRITTEN)
    mask = np.zeros(hsv.shape[:2], np.uint8)
    for box in boxes:
        if box[2] <= box[3] and box[4] <= box[5] and box[0] <= box[1]:  # a box with lo > hi is empty
            mask |= hsv_mask(hsv, box)
    return _b_point(four_vertex_boxes(contours(mask)), t, zero_test=False)


# ---- Task C (Sec. 4) -------------------------------------------------------------------------------
def _c_radii(mask: np.ndarray, t: int) -> list[float]:
    import cv2

    radii = []
    for c in contours(mask):
        r = int(cv2.minEnclosingCircle(c)[1])
        if r > C_MIN_R:
            radii.append(r / t)
    return radii


def _c_point(radii: list, max_ratio: float | None) -> dict:
    if len(radii) < 2:
        return _fail("fewer than two circles")
    r1, r2 = sorted(radii)[:2]  # the two smallest, by size not colour (quirk)
    feats = {"r1": r1, "r2": r2}
    if not (r2 > r1 and (max_ratio is None or r2 / r1 < max_ratio)):
        return _fail("ratio/order filter", **feats)
    # the coarse check |r1 - r2| < 1e-6 cannot fire after r2 > r1 (quirk): always conforming
    return {"reason": "", "rule_x": r1, "rule_y": r2, "coarse_ok": not abs(r1 - r2) < 1e-6, **feats}


def parse_c_gen(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 78: colour-union mask, enclosing-circle radii > 5 px, the two smallest (Sec. 4.1)."""
    import cv2

    hsv = cv2.cvtColor(resize(bgr, T_GEN), cv2.COLOR_BGR2HSV)
    return _c_point(_c_radii(union(hsv, COLOUR_UNION), T_GEN), C_MAX_RATIO)


def parse_c_train(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 73: T = 2048 (an upscale), sun/pole families, no ratio cap (Sec. 4.2)."""
    import cv2

    t = T_TRAIN["C"]
    h, w = bgr.shape[:2]
    if h == w and t % h == 0:  # an integer upscale copies k x k blocks (Sec. 1.2): mask first, then copy
        k = t // h
        mask = union(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV), C_TRAIN)
        mask = np.ascontiguousarray(np.repeat(np.repeat(mask, k, axis=0), k, axis=1))
    else:
        mask = union(cv2.cvtColor(resize(bgr, t), cv2.COLOR_BGR2HSV), C_TRAIN)
    return _c_point(_c_radii(mask, t), None)


# ---- Task D (Sec. 5) -------------------------------------------------------------------------------
def _d_point(boxes: list, divisor: float) -> dict:
    if len(boxes) != 2:
        return _fail("not exactly two squares", n_boxes=len(boxes))
    (_, _, s1), (_, _, s2) = sorted(boxes, key=lambda b: b[1])  # by top y: upper first
    l1, l2 = s1 / divisor, s2 / divisor
    return {"reason": "", "rule_x": l1, "rule_y": l2, "coarse_ok": not l1 >= l2, "l1": l1, "l2": l2}


def parse_d_gen(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 92: colour union OR grey <= 128; raw bounding boxes 0.9 <= w/h <= 1.1, w, h > 10; exactly
    two; widths only (Sec. 5.1)."""
    import cv2

    img = resize(bgr, T_GEN)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    dark = cv2.threshold(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 128, 255, cv2.THRESH_BINARY_INV)[1]
    boxes = []
    for c in contours(union(hsv, COLOUR_UNION) | dark):
        x, y, w, h = cv2.boundingRect(c)
        if D_ASPECT[0] <= w / h <= D_ASPECT[1] and w > D_MIN_SIDE and h > D_MIN_SIDE:
            boxes.append((x, y, w))
    return _d_point(boxes, T_GEN)


def parse_d_train(bgr: np.ndarray, settings: dict | None = None) -> dict:
    """Cell 87: no resize; Canny(50, 150) edges, four-vertex polygons, side = max(w, h), exactly two.
    Divisor: the image width (default, rebuild) or the notebook's hard-coded 1024 (Sec. 5.2)."""
    import cv2

    settings = settings or {}
    edges = cv2.Canny(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 50, 150)
    boxes = [(x, y, max(w, h)) for x, y, w, h in four_vertex_boxes(contours(edges))]
    div = settings.get("d_train_divisor", "width")
    return _d_point(boxes, float(bgr.shape[1]) if div == "width" else float(div))


PARSERS = {("A", "gen"): parse_a_gen, ("A", "train"): parse_a_train, ("B", "gen"): parse_b_gen,
           ("B", "train"): parse_b_train, ("C", "gen"): parse_c_gen, ("C", "train"): parse_c_train,
           ("D", "gen"): parse_d_gen, ("D", "train"): parse_d_train}
