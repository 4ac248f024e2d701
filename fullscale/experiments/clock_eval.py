"""The metrics of one rule-clock evaluation: one tidy row (issue 14, Sec. 1 "Metrics").

Precise protocol (``fullscale.evaluate.summarize``): parse rate, coarse-violation rate, OLS slope,
intercept and R^2 (with a percentile-bootstrap 95 % CI over samples), conform %, residual std;
novelty against the training set read against fresh renders at the same n
(``fullscale.evaluate.novelty``); and, for held-out-band runs, the share of parsed samples whose
measured free variable lies in the band and their conform %. Proportions carry binomial standard
errors (``*_se``), computed on the row's own samples; the spread over seeds is the aggregate's.
"""

from __future__ import annotations

import numpy as np

R2_BOOT = 300


def reference(run, train_images, fresh_images) -> dict:
    """Measured tables of the training set and the fresh renders, and the novelty thresholds."""
    from fullscale.evaluate import extract, novelty, summarize

    train_table = extract(run.task, train_images)
    fresh_table = extract(run.task, fresh_images)
    ref = novelty.reference(run.task, train_images, train_table, fresh_images, fresh_table)
    ref["train_table"], ref["fresh_table"] = train_table, fresh_table
    ref["train_summary"] = summarize(run.task, train_table)
    ref["fresh_summary"] = summarize(run.task, fresh_table)
    return ref


def reference_points(run, ref):
    """Per-image free variable, parse and conform flags of the training set and the fresh renders."""
    import pandas as pd

    from fullscale.evaluate import novelty
    from fullscale.tasks import holdout

    name = run.band().name if run.holdout else holdout.free_variable(run.task)
    parts = []
    for source, table in (("train", ref["train_table"]), ("fresh", ref["fresh_table"])):
        parts.append(pd.DataFrame({"source": source, "free_variable": name,
                                   "value": table[name].to_numpy(dtype=float),
                                   "parsed": table["parsed"].to_numpy(dtype=bool),
                                   "conform": novelty.conform_flags(run.task, table)}))
    out = pd.concat(parts, ignore_index=True)
    out["d_pix"] = np.nan
    out.loc[out["source"] == "fresh", "d_pix"] = ref["fresh_d_pix"]
    return out


def r2_ci(x, y, n_boot: int = R2_BOOT, seed: int = 0):
    """Percentile-bootstrap 95 % CI of the OLS R^2 (= squared correlation) of y on x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return None, None
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    xs, ys = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = (xs * ys).sum(1) ** 2 / ((xs**2).sum(1) * (ys**2).sum(1))
    r2 = r2[np.isfinite(r2)]
    if len(r2) == 0:
        return None, None
    return float(np.percentile(r2, 2.5)), float(np.percentile(r2, 97.5))


def _se(p, n):
    return None if p is None or not n else float(np.sqrt(max(p * (1 - p), 0.0) / n))


def measure(run, samples: np.ndarray, train_images: np.ndarray, ref: dict):
    """(row dict, per-sample points DataFrame) of one set of generated samples."""
    import pandas as pd

    from fullscale.evaluate import extract, novelty, summarize
    from fullscale.tasks import holdout

    table = extract(run.task, samples)
    s = summarize(run.task, table)
    parsed = table["parsed"].to_numpy(dtype=bool)
    nov = novelty.novelty(run.task, samples, table, train_images, ref["train_table"], ref)
    flags = novelty.conform_flags(run.task, table)
    lo, hi = r2_ci(table.loc[parsed, "rule_x"], table.loc[parsed, "rule_y"])
    cv = s["coarse_violation_rate"]
    cp = s["conform_pct"]
    row = {
        "n_samples": int(s["n"]), "parsed": int(s["parsed"]), "parse_rate": s["parsed"] / s["n"] if s["n"] else None,
        "coarse_violation_rate": cv, "coarse_violation_rate_se": _se(cv, s["parsed"]),
        "slope": s["slope"], "intercept": s["intercept"], "r2": s["r2"], "r2_lo": lo, "r2_hi": hi,
        "conform_pct": cp, "conform_pct_se": None if cp is None else 100 * _se(cp / 100, s["parsed"]),
        "residual_std": s["variance_error"], "bias_error": s["bias_error"],
        "train_conform_pct": ref["train_summary"]["conform_pct"], "train_r2": ref["train_summary"]["r2"],
        "fresh_conform_pct": ref["fresh_summary"]["conform_pct"],
        "n_fresh": ref["n_fresh"], "tau_copy_pix": ref["tau_copy_pix"], "tau_copy_pos": ref["tau_copy_pos"],
        "tau_novel_pos": ref["tau_novel_pos"], "fresh_median_pix": ref["fresh_median_pix"],
        **{k: v for k, v in nov.items() if not isinstance(v, np.ndarray)},
    }
    band = run.band()
    name = band.name if band is not None else holdout.free_variable(run.task)
    points = pd.DataFrame({"parsed": parsed, "rule_x": table["rule_x"].to_numpy(float),
                           "rule_y": table["rule_y"].to_numpy(float), "conform": flags,
                           "free_variable": name, "value": table[name].to_numpy(float),
                           "d_pix": nov["d_pix"], "d_pos": nov["d_pos"]})
    row.update(band_name=None, band_lo=None, band_hi=None, band_frac=None, band_frac_se=None, band_n=None,
               band_conform_pct=None, band_conform_pct_se=None, fresh_band_frac=None, train_band_frac=None)
    if band is not None:
        def frac(tab):
            ok = tab["parsed"].to_numpy(bool)
            return float(band.contains(tab.loc[ok, band.name]).mean()) if ok.any() else None

        inside = parsed & band.contains(table[band.name].to_numpy(float))
        k = int(inside.sum())
        bf = frac(table)
        bc = float(100 * flags[inside].mean()) if k else None
        row.update(band_name=band.name, band_lo=band.lo, band_hi=band.hi, band_frac=bf,
                   band_frac_se=_se(bf, int(parsed.sum())), band_n=k, band_conform_pct=bc,
                   band_conform_pct_se=None if bc is None else 100 * _se(bc / 100, k),
                   fresh_band_frac=frac(ref["fresh_table"]), train_band_frac=frac(ref["train_table"]))
    return row, points
