"""The rules paper's metrics on measured (rule_x, rule_y) points (rules-paper protocol Sec. 3.5, 3.6).

- OLS fit ``rule_y = a rule_x + b`` (scipy.stats.linregress) and the R^2 of that fit -- linear
  tightness, not agreement with the rule; closeness to the rule is |a - g| and |b|.
- Bias error ``|a - g| + |b|`` with the task's true slope g (the authors' code uses g = 1 for every
  task; we report that variant as ``bias_error_paper``), variance error = std of the OLS residuals.
- Rule-conforming %: y in the same 0.05-wide bin as g x, ``floor(20 g x) / 20 <= y < (floor(20 g x)
  + 1) / 20``.
- Coarse-violation rate over parsed images; parse-failure rate over all images.

Our choices (docs/tasks.md): the fit uses every parsed image (``fit_on="parsed"``; the authors'
Task A used only coarse-rule-satisfying ones: ``fit_on="coarse_ok"``), and no outlier trimming unless
asked (``trim=2.5`` keeps x and y inside their [2.5, 97.5] percentiles, the authors' usual filter).
"""

from __future__ import annotations

import math

import numpy as np

BIN = 0.05


def _num(v):
    """JSON-friendly float (None for NaN / inf)."""
    v = float(v)
    return v if math.isfinite(v) else None


def fit_line(x, y) -> dict:
    """OLS slope, intercept, R^2 and residual std of y on x (None where undefined)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    out = {"slope": None, "intercept": None, "r2": None, "variance_error": None}
    if len(x) < 3 or np.ptp(x) == 0:
        return out
    from scipy import stats

    res = stats.linregress(x, y)
    resid = y - (res.slope * x + res.intercept)
    out.update(slope=_num(res.slope), intercept=_num(res.intercept),
               r2=_num(res.rvalue**2) if np.ptp(y) > 0 else None, variance_error=_num(np.std(resid)))
    return out


def conform_pct(x, y, g: float) -> float | None:
    """% of points whose y lies in the 0.05-wide bin of g x (the authors' bin metric)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0:
        return None
    k = round(1.0 / BIN)  # the authors' int(20 g x) / 20 (multiplying keeps their float rounding)
    lo = np.floor(k * g * x) / k
    return _num(100.0 * np.mean((y >= lo) & (y < lo + 1.0 / k)))


def trim_mask(x, y, pct: float) -> np.ndarray:
    """Keep x and y each inside their [pct, 100 - pct] percentiles (the authors' outlier filter)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) == 0:
        return np.zeros(0, dtype=bool)
    xl, xh = np.percentile(x, [pct, 100 - pct])
    yl, yh = np.percentile(y, [pct, 100 - pct])
    return (x >= xl) & (x <= xh) & (y >= yl) & (y <= yh)


def summarize(task: str, df, *, fit_on: str = "parsed", trim: float | None = None) -> dict:
    """The metrics of one set of measured images (``extract``'s table)."""
    from fullscale.tasks import rule_slope

    if fit_on not in ("parsed", "coarse_ok"):
        raise ValueError(f"fit_on must be 'parsed' or 'coarse_ok', got {fit_on!r}")
    if trim is not None and not 0 <= trim < 50:
        raise ValueError(f"trim must be a percentile in [0, 50), got {trim}")
    g = rule_slope(task)
    n = int(len(df))
    parsed = df["parsed"].to_numpy(dtype=bool)
    n_parsed = int(parsed.sum())
    coarse = df["coarse_ok"].to_numpy(dtype=bool, na_value=False)
    sel = parsed & coarse if fit_on == "coarse_ok" else parsed
    x = df["rule_x"].to_numpy(dtype=float)[sel]
    y = df["rule_y"].to_numpy(dtype=float)[sel]
    if trim:
        keep = trim_mask(x, y, trim)
        x, y = x[keep], y[keep]
    fit = fit_line(x, y)
    a, b = fit["slope"], fit["intercept"]
    bias = None if a is None else _num(abs(a - g) + abs(b))
    reasons = df.loc[~parsed, "reason"].value_counts()
    return {
        "task": task,
        "n": n,
        "parsed": n_parsed,
        "parse_failure_rate": _num(1 - n_parsed / n) if n else None,
        "coarse_violation_rate": _num(np.mean(~coarse[parsed])) if n_parsed else None,
        "n_fit": int(len(x)),
        "fit_on": fit_on,
        "trim": trim,
        **fit,
        "conform_pct": conform_pct(x, y, g),
        "bias_error": bias,
        "bias_error_paper": None if a is None else _num(abs(a - 1.0) + abs(b)),
        "sum_error": None if bias is None or fit["variance_error"] is None else _num(bias + fit["variance_error"]),
        "rule_slope": g,
        "failure_reasons": {str(k): int(v) for k, v in reasons.items()},
    }
