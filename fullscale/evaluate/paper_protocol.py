"""The rules-paper authors' evaluator as a second evaluator family ("paper protocol").

    from fullscale.evaluate import paper_protocol as pp
    res = pp.evaluate_paper("C", images)                     # gen pipeline, headline recipe C-80
    res = pp.evaluate_paper("B", images, pipeline="train")   # their training-image pipeline
    table = pp.extract_paper("A", images)                    # one row per image (point or reason)
    res = pp.summarize_paper("A", table)                     # the metrics of a table

Implemented from ``shared/spec/paper-protocol-evaluator.md``: the image -> point step is
:mod:`fullscale.evaluate.paper_cv`; here are the input conversion (Sec. 1.1), the filter-then-OLS
recipes (Sec. 1.5, 2.3-5.2, 6), the conform % (Sec. 1.6) and the bias / variance errors (Sec. 1.7).
Defaults are the recipes behind the paper's headline numbers. Where the original was arbitrary the
choice is an explicit option (Sec. 7): jitter ``seed`` (default 0; ``None`` = unseeded, as the
authors) and ``repeats`` (the 20-seed mean), Task A's conform category (default: all four d lists;
the notebook's cell 16 used only the first), B-train's HSV ranges (default: the notebook's range
bug; ``"intended"``), D-train's divisor (default: the image width; ``1024`` as in the notebook),
A-train restricted to d images (default off). Pure functions of an image batch: no I/O here except
:func:`load_paper_images`, which the CLI uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fullscale import names

from .paper_cv import PARSERS

PIPELINES = ("gen", "train")
CATEGORIES_A = names.CONFORM_CATEGORIES  # the four d lists cell 10 writes


@dataclass(frozen=True)
class Recipe:
    """One filter-then-OLS recipe (spec Sec. 1.5): jitter, then a percentile trim, then exclusion boxes.

    ``trim``: None, ``("xy", p, q)`` or ``("ratio", p, q)``. ``boxes``: points to drop, each
    ``(x_op, x_value, y_op, y_value)`` with ops among ``<``, ``<=``, ``>``, ``>=``.
    """

    name: str
    cell: str
    trim: tuple | None = None
    boxes: tuple = ()
    jitter: float = 0.0
    note: str = ""

    def describe(self) -> str:
        parts = [f"jitter +-{self.jitter:g}"] if self.jitter else []
        if self.trim:
            parts.append(f"{self.trim[0]}-trim [{self.trim[1]:g}, {self.trim[2]:g}]")
        parts += [f"drop (x {a} {b:g} and y {c} {d:g})" for a, b, c, d in self.boxes]
        return ", ".join(parts) + ", OLS" if parts else "OLS on all points"


_R = Recipe
RECIPES = {  # first entry per (task, pipeline): the headline recipe (spec Sec. 6)
    ("A", "gen"): (_R("A-21", "cell 21", ("xy", 2.5, 97.5), ((">", 0.10, "<", 0.05),), note="the paper's R² 0.85"),
                   _R("A-19", "cell 19", ("xy", 2.5, 97.5), ((">", 0.10, "<", 0.05), ("<", 0.05, ">", 0.10),
                                                               (">", 0.20, "<", 0.10))),
                   _R("A-17", "cell 17", ("ratio", 10, 90))),
    ("B", "gen"): (_R("B-67", "cell 67", ("ratio", 2.5, 97.5), note="the paper's R² 0.88"),
                   _R("B-68", "cell 68", ("xy", 2.5, 97.5))),
    ("C", "gen"): (_R("C-80", "cell 80", ("ratio", 2.5, 97.5), jitter=0.01, note="the paper's R² 0.68"),
                   _R("C-81", "cell 81", ("xy", 2.5, 97.5)),
                   _R("C-80-a0", "cell 80 without jitter", ("ratio", 2.5, 97.5), note="rebuild control")),
    ("D", "gen"): (_R("D-94", "cell 94", ("ratio", 5, 95), jitter=0.02, note="the paper's R² 0.85"),
                   _R("D-95", "cell 95", ("xy", 2.5, 97.5), (("<=", 0.16, ">=", 0.25), ("<=", 0.20, ">=", 0.40),
                                                             (">=", 0.30, "<=", 0.40))),
                   _R("D-94-a0", "cell 94 without jitter", ("ratio", 5, 95), note="rebuild control")),
    ("A", "train"): (_R("A-8", "cell 8", ("xy", 5, 95), note="the authors' training fit"),),
    ("B", "train"): (_R("B-61", "cell 61", ("xy", 2.5, 97.5), note="the authors' training fit"),),
    ("C", "train"): (_R("C-75", "cell 75", None, note="the authors' training fit (trim and jitter only drew the plot)"),),
    ("D", "train"): (_R("D-89", "cell 89", ("xy", 5, 95), note="the authors' training fit"),),
}
# spec Sec. 6: what the headline recipes gave on the authors' generated samples (fit, R², points, conform %)
PAPER_HEADLINE = {"A": {"slope": 0.81, "intercept": 0.00, "r2": 0.85, "n_fit": 1387, "conform_pct": 75.53},
                  "B": {"slope": 0.93, "intercept": 0.00, "r2": 0.88, "n_fit": 1136, "conform_pct": 80.99},
                  "C": {"slope": 1.16, "intercept": 0.05, "r2": 0.68, "n_fit": 1111, "conform_pct": 49.27},
                  "D": {"slope": 1.36, "intercept": 0.05, "r2": 0.85, "n_fit": 1350, "conform_pct": 69.67}}
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


@dataclass(frozen=True)
class Settings:
    """The options of spec Sec. 7 (defaults: the recipes behind the paper's headline numbers)."""

    recipe: str | None = None  # None: the headline recipe of the task and pipeline
    jitter_seed: int | None = 0  # None: unseeded (NumPy's global generator, as the authors)
    jitter_repeats: int = 20  # the rebuild's mean over seeds s .. s + repeats - 1 (0: none)
    conform_category: str = "all"  # Task A gen: "all" (rebuild) or one of lnd, lfd, rnd, rfd (cell 16)
    b_train_ranges: str = "as-written"  # or "intended"
    d_train_divisor: str | float = "width"  # or 1024 (the notebook)
    a_train_d_only: bool = False
    bgr: bool = False  # arrays are RGB unless this says they are already BGR

    def check(self, task: str, pipeline: str) -> "Settings":
        if (task, pipeline) not in RECIPES:  # a task added through the registry has no authors' recipe
            covered = ", ".join(sorted({t for t, _ in RECIPES}))
            raise ValueError(f"the authors' evaluator covers tasks {covered} only, not {task!r}; use --protocol precise")
        names = [r.name for r in RECIPES[(task, pipeline)]]
        if self.recipe is not None and self.recipe not in names:
            raise ValueError(f"unknown recipe {self.recipe!r} for Task {task} {pipeline}; choose from {', '.join(names)}")
        if self.conform_category not in ("all", *CATEGORIES_A):
            raise ValueError(f"conform category must be 'all' or one of {', '.join(CATEGORIES_A)}, "
                             f"got {self.conform_category!r}")
        if self.b_train_ranges not in ("as-written", "intended"):
            raise ValueError(f"B-train ranges must be 'as-written' or 'intended', got {self.b_train_ranges!r}")
        if self.d_train_divisor != "width" and not (isinstance(self.d_train_divisor, (int, float))
                                                    and self.d_train_divisor > 0):
            raise ValueError(f"D-train divisor must be 'width' or a positive number, got {self.d_train_divisor!r}")
        if self.jitter_repeats < 0 or (self.jitter_seed is not None and self.jitter_seed < 0):
            raise ValueError("jitter seed and repeats must be non-negative")
        return self

    def as_dict(self) -> dict:
        return {"recipe": self.recipe, "jitter_seed": self.jitter_seed, "jitter_repeats": self.jitter_repeats,
                "conform_category": self.conform_category, "b_train_ranges": self.b_train_ranges,
                "d_train_divisor": self.d_train_divisor, "a_train_d_only": self.a_train_d_only, "bgr": self.bgr}


def _num(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# ---- input (spec Sec. 1.1) -------------------------------------------------------------------------
def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    """Floats -> [0, 1] (from [-1, 1] if the minimum is negative), x 255 if max <= 1, rounded, clipped."""
    if a.min() < 0:
        a = (a + 1.0) / 2.0
    if a.max() <= 1:
        a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def to_bgr(img, bgr: bool = False):
    """One image -> (uint8 [H, W, 3] BGR, "") or (None, reason). Alpha is dropped, not composited;
    channel-first is transposed; one channel is replicated. Never raises."""
    try:
        a = np.asarray(img)
    except Exception as exc:  # noqa: BLE001 - unreadable is a failure, not a crash
        return None, f"unreadable ({type(exc).__name__})"
    if a.dtype == object or a.ndim not in (2, 3) or a.size == 0 or not (np.issubdtype(a.dtype, np.number)
                                                                        or a.dtype == bool):
        return None, f"not an image array (shape {list(a.shape)})"
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] not in (1, 3, 4) or min(a.shape[:2]) < 1:
        return None, f"not an image array (shape {list(a.shape)})"
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            return None, "non-finite pixel values"
        a = _float_to_uint8(a)
    a = a[..., :3]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif not bgr:
        a = a[..., ::-1]
    return np.ascontiguousarray(a), ""


def _items(images, bgr: bool):
    """A batch -> list of (BGR image or None, reason). A float array batch is mapped as one batch."""
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype != np.uint8 and images.size \
            and images.dtype != object:
        a = images.astype(np.float64)
        finite = np.isfinite(a).reshape(len(a), -1).all(axis=1)
        if finite.any():
            a[finite] = _float_to_uint8(a[finite])
        return [to_bgr(a[i].astype(np.uint8), bgr) if finite[i] else (None, "non-finite pixel values")
                for i in range(len(a))]
    if isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[-1] in (3, 4):
        images = images[None]
    return [(None, "unreadable") if im is None else to_bgr(im, bgr) for im in images]


# ---- per-image table -------------------------------------------------------------------------------
def extract_paper(task, images, pipeline: str = "gen", settings: Settings | None = None, names=None,
                  errors=None):
    """One row per image: ``image``, ``parsed``, ``reason`` ("" when parsed), ``coarse_ok`` (nullable),
    ``label`` (Task A), ``rule_x``, ``rule_y`` and the pipeline's raw features. Never raises for a bad image.

    ``images``: uint8 [N, H, W, C] (RGB unless ``settings.bgr``), floats, or a list of images of any
    size (None = unreadable). ``errors``: per-image read errors (e.g. from :func:`load_paper_images`).
    """
    import pandas as pd

    from fullscale.tasks import check_task

    task = check_task(task)
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be 'gen' or 'train', got {pipeline!r}")
    settings = (settings or Settings()).check(task, pipeline)
    parse = PARSERS[(task, pipeline)]
    opts = settings.as_dict()
    rows = []
    for i, (img, why) in enumerate(_items(images, settings.bgr)):
        if errors is not None and errors[i]:
            img, why = None, errors[i]
        if img is None:
            rows.append({"reason": why or "unreadable", "rule_x": math.nan, "rule_y": math.nan, "coarse_ok": None})
            continue
        try:
            rows.append(parse(img, opts))
        except Exception as exc:  # noqa: BLE001 - OpenCV refusing a degenerate image is a failure
            rows.append({"reason": f"evaluator error ({type(exc).__name__})", "rule_x": math.nan,
                         "rule_y": math.nan, "coarse_ok": None})
    df = pd.DataFrame(rows, columns=None if rows else ["reason", "rule_x", "rule_y", "coarse_ok"])
    df.insert(0, "image", list(names) if names is not None else [str(i) for i in range(len(df))])
    df.insert(1, "parsed", (df["reason"] == "").to_numpy(dtype=bool))
    df["coarse_ok"] = pd.array(df["coarse_ok"].tolist(), dtype="boolean")
    if task == "A" and "label" not in df:
        df["label"] = ""
    if "label" in df:
        df["label"] = df["label"].fillna("").astype(str)
    for col in ("rule_x", "rule_y"):
        df[col] = df[col].astype(float)
    return df


# ---- recipes, fit, conform (spec Sec. 1.5-1.7) -----------------------------------------------------
def jitter(x: np.ndarray, y: np.ndarray, amplitude: float, seed: int | None):
    """Uniform noise on [-a, a]: all x draws first, in point order, then all y draws (legacy
    Mersenne-Twister seeded with ``seed``; ``None``: NumPy's global generator, as the authors)."""
    if not amplitude:
        return x, y
    rng = np.random if seed is None else np.random.RandomState(seed)
    jx = rng.uniform(-amplitude, amplitude, len(x))
    jy = rng.uniform(-amplitude, amplitude, len(y))
    return x + jx, y + jy


def recipe_mask(recipe: Recipe, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points the recipe keeps (percentiles over all given points, inclusive; then the boxes)."""
    keep = np.ones(len(x), dtype=bool)
    if len(x) == 0:
        return keep
    with np.errstate(divide="ignore", invalid="ignore"):
        if recipe.trim is not None:
            kind, p, q = recipe.trim
            if kind == "xy":
                xl, xh = np.percentile(x, [p, q])
                yl, yh = np.percentile(y, [p, q])
                keep &= (x >= xl) & (x <= xh) & (y >= yl) & (y <= yh)
            else:  # a 0/0 ratio makes both bounds NaN and empties the fit (NumPy's behaviour, kept)
                r = np.abs(y / x)
                lo, hi = np.percentile(r, [p, q])
                keep &= (r >= lo) & (r <= hi)
        for xo, xv, yo, yv in recipe.boxes:
            keep &= ~(_OPS[xo](x, xv) & _OPS[yo](y, yv))
    return keep


def ols(x, y) -> dict:
    """OLS y = a x + b with an intercept; R² = 1 - SS_res / SS_tot; variance error = population SD of
    the residuals; bias = |a - 1| + |b| (the authors' target 1, Sec. 1.7). No fit below 3 points or
    when every x is equal."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out = {"n_fit": int(len(x)), "slope": None, "intercept": None, "r2": None, "variance_error": None,
           "bias_error_paper": None}
    if len(x) < 3 or np.ptp(x) == 0 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        return out
    xm, ym = x.mean(), y.mean()
    a = float(np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2))
    b = float(ym - a * xm)
    e = y - (a * x + b)
    ss_tot = float(np.sum((y - ym) ** 2))
    out.update(slope=_num(a), intercept=_num(b), r2=_num(1 - float(np.sum(e**2)) / ss_tot) if ss_tot > 0 else None,
               variance_error=_num(np.sqrt(np.mean((e - e.mean()) ** 2))), bias_error_paper=_num(abs(a - 1) + abs(b)))
    return out


def apply_recipe(recipe: Recipe, x, y, seed: int | None = 0) -> dict:
    """Jitter (if the recipe has it), trim, boxes, OLS; the fit uses the jittered values."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xj, yj = jitter(x, y, recipe.jitter, seed)
    keep = recipe_mask(recipe, xj, yj)
    return ols(xj[keep], yj[keep])


def conform(x, y, g: float) -> float | None:
    """Sec. 1.6: k = int((g x) 20); y conforms if k / 20 <= y < (k + 1) / 20 (same-bin test)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0:
        return None
    k = np.trunc((g * x) * 20)
    return _num(100.0 * np.mean((k / 20 <= y) & (y < (k + 1) / 20)))


def summarize_paper(task, table, pipeline: str = "gen", settings: Settings | None = None, *,
                    variants: bool = True) -> dict:
    """The paper protocol's metrics of one :func:`extract_paper` table. Keys as the precise evaluator's
    (n, parsed, parse_failure_rate, coarse_violation_rate, n_fit, slope, intercept, r2, conform_pct,
    bias_error = |a - g| + |b|, bias_error_paper = |a - 1| + |b|, variance_error, sum_error, rule_slope,
    failure_reasons) plus protocol, pipeline, recipe, recipe_filter, settings and, with ``variants``,
    recipes (every recipe of the pipeline), untrimmed (OLS on all points) and jitter (the seed mean)."""
    from fullscale.tasks import check_task, rule_slope

    task = check_task(task)
    settings = (settings or Settings()).check(task, pipeline)
    g = rule_slope(task)
    recipes = RECIPES[(task, pipeline)]
    recipe = next(r for r in recipes if r.name == (settings.recipe or recipes[0].name))
    n = int(len(table))
    parsed = table["parsed"].to_numpy(dtype=bool)
    x_all, y_all = table["rule_x"].to_numpy(dtype=float)[parsed], table["rule_y"].to_numpy(dtype=float)[parsed]
    coarse = table["coarse_ok"]
    if task == "A":  # violation rate = s / labelled (failures of the labeller excluded, Sec. 2.1 step 6)
        labels = table["label"].astype(str)
        labelled = labels.str.len() == 3
        viol = float((labels[labelled].str[2] == "s").mean()) if labelled.any() else None
    else:
        viol = float((~coarse[parsed].to_numpy(dtype=bool, na_value=True)).mean()) if parsed.any() else None
    sel = np.ones(len(x_all), dtype=bool)
    if task == "A" and pipeline == "train" and settings.a_train_d_only:
        sel = coarse[parsed].to_numpy(dtype=bool, na_value=False)
    x, y = x_all[sel], y_all[sel]
    cx, cy = x, y
    if task == "A" and pipeline == "gen" and settings.conform_category != "all":
        cat = table["label"].astype(str).to_numpy()[parsed] == settings.conform_category
        cx, cy = x_all[cat], y_all[cat]
    fit = apply_recipe(recipe, x, y, settings.jitter_seed)
    a, b = fit["slope"], fit["intercept"]
    bias = None if a is None else _num(abs(a - g) + abs(b))
    reasons = table.loc[~parsed, "reason"].value_counts()
    out = {
        "task": task, "protocol": "paper" if pipeline == "gen" else "paper-train", "pipeline": pipeline,
        "recipe": recipe.name, "recipe_cell": recipe.cell, "recipe_filter": recipe.describe(),
        "n": n, "parsed": int(parsed.sum()),
        "parse_failure_rate": _num(1 - parsed.sum() / n) if n else None,
        "coarse_violation_rate": _num(viol),
        "fit_on": "d-labelled" if task == "A" and (pipeline == "gen" or settings.a_train_d_only) else "parsed",
        "trim": None, **fit,
        "conform_pct": conform(cx, cy, g),
        "bias_error": bias,
        "sum_error": None if bias is None or fit["variance_error"] is None else _num(bias + fit["variance_error"]),
        "rule_slope": g,
        "failure_reasons": {str(k): int(v) for k, v in reasons.items()},
        "settings": settings.as_dict(),
    }
    if task == "A":
        counts = table["label"].astype(str).value_counts()
        out["labels"] = {str(k): int(v) for k, v in counts.items() if len(str(k)) == 3}
    if variants:
        out["recipes"] = [{"recipe": r.name, "cell": r.cell, "filter": r.describe(), "headline": r is recipes[0],
                           **apply_recipe(r, x, y, settings.jitter_seed)} for r in recipes]
        out["untrimmed"] = ols(x, y)
        if recipe.jitter and settings.jitter_repeats and settings.jitter_seed is not None:
            s0 = settings.jitter_seed
            fits = [apply_recipe(recipe, x, y, s) for s in range(s0, s0 + settings.jitter_repeats)]
            r2s = [f["r2"] for f in fits if f["r2"] is not None]
            slopes = [f["slope"] for f in fits if f["slope"] is not None]
            out["jitter"] = {"amplitude": recipe.jitter, "seeds": [s0, s0 + settings.jitter_repeats - 1],
                             "r2_mean": _num(np.mean(r2s)) if r2s else None, "r2_sd": _num(np.std(r2s)) if r2s else None,
                             "slope_mean": _num(np.mean(slopes)) if slopes else None,
                             "slope_sd": _num(np.std(slopes)) if slopes else None}
    return out


def evaluate_paper(task, images, pipeline: str = "gen", settings: Settings | None = None, **kw) -> dict:
    """:func:`extract_paper` then :func:`summarize_paper` (``kw``: Settings fields)."""
    settings = settings or Settings(**kw)
    return summarize_paper(task, extract_paper(task, images, pipeline, settings), pipeline, settings)


# ---- reading files (the CLI's only I/O) ------------------------------------------------------------
def load_paper_images(path):
    """``(images, names, errors, bgr)`` from a data-set directory, an ``.npy`` array (RGB), an image
    file or a folder of .png/.jpg/.jpeg (sorted by name, read with OpenCV's default colour read: BGR,
    alpha dropped, Sec. 1.1). A bad *path* is a ValueError; a bad *file* is a failed image."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_dir() and (path / "images.npy").is_file():
        path = path / "images.npy"
    if path.is_file() and path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{path} is not a readable .npy array ({type(exc).__name__})") from None
        if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
            arr = arr[..., None]
        if arr.ndim != 4:
            raise ValueError(f"{path} holds an array of shape {list(arr.shape)}; expected [N, H, W, C]")
        return arr, [str(i) for i in range(len(arr))], None, False
    suffixes = (".png", ".jpg", ".jpeg")
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise ValueError(f"{path} is neither an .npy array nor a .png/.jpg image")
        files = [path]
    else:
        folder = path / "png" if (path / "png").is_dir() else path
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise ValueError(f"{path} holds no images.npy and no .png/.jpg files")
    import cv2

    images, errors = [], []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        images.append(img)
        errors.append("" if img is not None else "unreadable file")
    return images, [f.name for f in files], errors, True
