"""Numbers read off the feature-learning tables: growth-rate and final-ratio slopes against
n·SNR², the theory line, and the classification transition point. Used by the CLI summary, the
claim tests and the figures (one definition for all three).

- early growth ratio: signal_inc / noise_inc at the first logged step after 0 (step 1: exactly
  eta times the components of the expected gradient at initialisation, see :mod:`sims.fl`);
- final ratio: signal / noise at the last step;
- slopes: least squares of log(ratio) on log(n·SNR²) (``scipy.stats.linregress``);
- theory: ``theory.growth.diffusion_growth_ratio`` (n ||mu||^2 / (2 sigma^2 (d - 2)));
- transition: the n·SNR² where a logistic fit of P(signal-dominated at the end | log n·SNR²)
  crosses 1/2 (``scipy.optimize``), plus the bracketing grid values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

KEYS = ["objective", "experiment", "n", "snr", "seed"]


def per_model(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model: early growth ratio, final ratio, final test accuracy, theory prediction."""
    from theory.growth import diffusion_growth_ratio

    pos = df[df.step > 0]
    early = pos[pos.step == pos.groupby(KEYS).step.transform("min")].set_index(KEYS)
    last = df[df.step == df.groupby(KEYS).step.transform("max")].set_index(KEYS)
    out = last[["n_snr2", "d", "mu_norm", "sigma_xi", "signal", "noise", "test_acc", "step"]].copy()
    out["final_ratio"] = last.signal / last.noise
    out["early_step"] = early.step
    out["early_ratio"] = early.signal_inc / early.noise_inc
    out = out.reset_index()
    out["theory_ratio"] = [diffusion_growth_ratio(r) for r in out.itertuples()]
    return out


def loglog_slope(x, y) -> dict:
    """Slope, intercept, r^2 and the slope's standard error of log y on log x."""
    from scipy.stats import linregress

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return {"slope": math.nan, "intercept": math.nan, "r2": math.nan, "stderr": math.nan, "points": int(ok.sum())}
    fit = linregress(np.log(x[ok]), np.log(y[ok]))
    return {"slope": fit.slope, "intercept": fit.intercept, "r2": fit.rvalue**2, "stderr": fit.stderr,
            "points": int(ok.sum())}


def slopes(df: pd.DataFrame, objective: str = "diffusion", experiment: str | None = "grid") -> dict:
    """Early and final log-log slopes against n·SNR², and measured / predicted early ratio."""
    pm = per_model(df)
    pm = pm[pm.objective == objective]
    if experiment is not None:
        pm = pm[pm.experiment == experiment]
    rel = pm.early_ratio / pm.theory_ratio
    return {
        "early": loglog_slope(pm.n_snr2, pm.early_ratio),
        "final": loglog_slope(pm.n_snr2, pm.final_ratio),
        "theory": loglog_slope(pm.n_snr2, pm.theory_ratio),
        "early_over_theory_median": float(np.median(rel)) if len(rel) else math.nan,
        "early_over_theory_range": (float(rel.min()), float(rel.max())) if len(rel) else (math.nan, math.nan),
        "models": len(pm),
    }


def transition(df: pd.DataFrame, objective: str = "classification") -> dict:
    """Where the final state switches from noise- to signal-dominated (ratio 1) along n·SNR²."""
    from scipy.optimize import minimize

    pm = per_model(df)
    pm = pm[pm.objective == objective]
    x = np.log(pm.n_snr2.to_numpy())
    z = (pm.final_ratio.to_numpy() > 1).astype(float)
    below = pm.n_snr2[pm.final_ratio <= 1]
    above = pm.n_snr2[pm.final_ratio > 1]
    out = {"largest_noise_dominated": float(below.max()) if len(below) else math.nan,
           "smallest_signal_dominated": float(above.min()) if len(above) else math.nan,
           "point": math.nan, "width": math.nan, "models": len(pm)}
    if len(below) == 0 or len(above) == 0:
        return out

    def nll(p):  # logistic regression P(z = 1) = sigmoid((x - c) / s), s = exp(p[1])
        c, s = p[0], math.exp(p[1])
        logits = (x - c) / s
        return float(np.sum(np.logaddexp(0, logits) - z * logits)) + 1e-3 * p[1] ** 2

    c0 = 0.5 * (math.log(out["largest_noise_dominated"]) + math.log(out["smallest_signal_dominated"]))
    res = minimize(nll, x0=[c0, math.log(0.3)], method="Nelder-Mead")
    out["point"] = float(math.exp(res.x[0]))
    out["width"] = float(math.exp(res.x[1]))  # in log n·SNR² units; small = sharp
    return out


def fl_summary_lines(df: pd.DataFrame) -> list[str]:
    """What ``dmrules sims fl`` prints at the end."""
    lines = []
    objectives = set(df.objective)
    if "diffusion" in objectives and (df.experiment == "grid").any():
        s = slopes(df, "diffusion")
        lines.append(f"diffusion: log-log slope vs n·SNR² of the early growth ratio {s['early']['slope']:.3f} "
                     f"(theory {s['theory']['slope']:.3f}; measured/predicted median "
                     f"{s['early_over_theory_median']:.3f}), of the final signal/noise ratio {s['final']['slope']:.3f}")
    if "classification" in objectives:
        tr = transition(df)
        s = slopes(df, "classification")
        lines.append(f"classification: noise- to signal-dominated at n·SNR² ≈ {tr['point']:.3g} "
                     f"(largest noise-dominated {tr['largest_noise_dominated']:.3g}, smallest signal-dominated "
                     f"{tr['smallest_signal_dominated']:.3g}); final-ratio slope {s['final']['slope']:.3f}")
    return lines
