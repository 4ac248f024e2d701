"""The held-out band (issue 14, Sec. 3): do samples fill a band of the free variable that training never showed?

Reads the committed tables ``reports/results/holdout_cpu.parquet`` (one row per evaluation of each
held-out run) and ``holdout_cpu_points.parquet`` (the free variable of every training image, fresh
render and final-budget sample, as the evaluator measures it), made by ``make clocks``
(docs/clocks.md). Per (task, n): histograms of the free variable for the training set (band removed),
fresh renders of the full law and the generated samples, the band shaded; the share of samples in
the band and their conform %. Samples that land in the band *and* conform there follow the rule
where no training image could be copied.
"""

from __future__ import annotations

import math
from pathlib import Path

from reports.pipeline import COMMITTED, Figure

TABLE = COMMITTED / "holdout_cpu.parquet"
POINTS = COMMITTED / "holdout_cpu_points.parquet"
BASELINES = COMMITTED / "holdout_cpu_baselines.parquet"
REGENERATE = "`make clocks` (docs/clocks.md)"


def _pm(v, se, scale=100.0, digits=1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if se is None or (isinstance(se, float) and math.isnan(se)):
        return f"{scale * v:.{digits}f}"
    return f"{scale * v:.{digits}f} ± {scale * se:.{digits}f}"


def band_table(df) -> str:
    import pandas as pd

    from reports import style

    rows = []
    for r in df.sort_values(["task", "n", "kimg"]).itertuples(index=False):
        rows.append({"task": r.task, "n (kept)": f"{r.n} ({r.n_train})", "seed": r.seed, "band": r.holdout,
                     "kimg": f"{r.kimg:g}", "sampler": r.sampler,
                     "coarse viol. %": _pm(r.coarse_violation_rate, r.coarse_violation_rate_se),
                     "conform % (all)": _pm(r.conform_pct, r.conform_pct_se, 1.0),
                     "in band %": _pm(r.band_frac, r.band_frac_se), "law in band %": _pm(r.fresh_band_frac, None),
                     "train in band %": _pm(r.train_band_frac, None),
                     "samples in band": r.band_n, "conform % in band": _pm(r.band_conform_pct, r.band_conform_pct_se, 1.0),
                     "copy rate %": _pm(r.copy_rate, r.copy_rate_se)})
    return style.markdown_table(pd.DataFrame(rows))


def baseline_table(base) -> str:
    import pandas as pd

    from reports import style

    rows = [{"task": r.task, "n (kept)": f"{r.n} ({r.n_train})", "denoiser": r.denoiser, "sampler": r.sampler,
             "parsed %": _pm(r.parse_rate, None), "coarse viol. %": _pm(r.coarse_violation_rate, r.coarse_violation_rate_se),
             "in band %": _pm(r.band_frac, r.band_frac_se), "samples in band": r.band_n,
             "conform % in band": _pm(r.band_conform_pct, r.band_conform_pct_se, 1.0),
             "conform % (all)": _pm(r.conform_pct, r.conform_pct_se, 1.0), "copy rate %": _pm(r.copy_rate, r.copy_rate_se)}
            for r in base.sort_values(["task", "n", "denoiser"]).itertuples(index=False)]
    return style.markdown_table(pd.DataFrame(rows))


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import numpy as np
    import pandas as pd

    from dmrules.core.results import read_table, write_text
    from reports import style

    if not TABLE.exists() or not POINTS.exists():
        return [write_text(out_dir / "held_out_band.md", f"No committed held-out-band tables yet: run {REGENERATE}.\n")]
    df = read_table(TABLE)
    pts = read_table(POINTS)
    base = read_table(BASELINES) if BASELINES.exists() else pd.DataFrame()
    cells = sorted({(t, n) for t, n in zip(pts["task"], pts["n"])})
    fig, axes = style.subplots(1, len(cells), width=4.2 * len(cells))
    colors = {"train": style.COLORS["train"], "fresh": style.COLORS["truth"], "generated": style.COLORS["generated"]}
    for ax, (task, n) in zip(axes[0], cells):
        p = pts[(pts["task"] == task) & (pts["n"] == n) & pts["parsed"]]
        lo, hi = float(p["band_lo"].iloc[0]), float(p["band_hi"].iloc[0])
        vals = p["value"].to_numpy(float)
        bins = np.linspace(np.nanmin(vals), np.nanmax(vals), 41)
        for src, kw in (("train", dict(histtype="stepfilled", alpha=0.35)), ("fresh", dict(histtype="step", lw=1.2)),
                        ("generated", dict(histtype="step", lw=1.8))):
            v = p.loc[p["source"] == src, "value"].to_numpy(float)
            if len(v):
                ax.hist(v, bins=bins, density=True, color=colors[src], label=f"{src} ({len(v)})", **kw)
        ax.axvspan(lo, hi, color="#ffbf00", alpha=0.25, label="held-out band")
        row = df[(df["task"] == task) & (df["n"] == n) & df["final"]].sort_values("kimg").iloc[-1]
        text = (f"{row['kimg']:g} kimg: in band {_pm(row['band_frac'], row['band_frac_se'])} % "
                f"(law {_pm(row['fresh_band_frac'], None)} %)\nconform there: "
                f"{_pm(row['band_conform_pct'], row['band_conform_pct_se'], 1.0)} % of {int(row['band_n'])}")
        for r in (base[(base["task"] == task) & (base["n"] == n)].itertuples(index=False) if len(base) else []):
            text += (f"\n{r.denoiser}: in band {_pm(r.band_frac, None)} %, conform there "
                     f"{_pm(r.band_conform_pct, None, 1.0)} %")
        style.textbox(ax, text, loc="upper right", fontsize=7)
        ax.set(xlabel=f"{p['free_variable'].iloc[0]} (fraction of the width)", ylabel="density",
               title=f"Task {task}, n = {n}")
        ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    prov = df.attrs.get("provenance", {})
    cov = prov.get("coverage", {})
    if len(base):
        text_base = ("\nClosed-form denoisers of the same training sets (`dmrules sweep baselines`: `dmrules baseline` "
                     "with the run's sampler and seeds), measured the same way:\n\n" + baseline_table(base))
    else:
        text_base = "\nNo closed-form denoisers sampled beside these runs yet (`dmrules sweep baselines`).\n"
    text = (band_table(df) + text_base + "\nIn band: share of parsed samples whose measured free variable lies in the band "
            "(± binomial standard error); law: the same for fresh renders of the full law; train: the training set "
            "as measured (0 by construction, up to measurement error at the band's edges). One seed per cell.\n"
            f"\nTable `reports/results/{TABLE.name}`: made by `{prov.get('command', '?')}` at commit "
            f"`{prov.get('commit', '?')}` on {', '.join(prov.get('devices', [])) or '?'}; "
            f"{prov.get('wall_time_s', float('nan')) / 60:.0f} CPU-minutes. Coverage: {cov.get('runs_finished', '?')} "
            f"of {cov.get('runs_planned', '?')} runs.\n")
    return [style.save(fig, out_dir / "held_out_band.png"), write_text(out_dir / "held_out_band.md", text)]


FIGURES = [
    Figure(
        name="held_out_band",
        title="Held-out band: do samples fill a band of the free variable missing from training, and conform there?",
        caption="Tasks A (sun x) and C (warm radius r1), cpu preset, trained without the images whose free variable "
                "lies in the band (shaded). Histograms: training set, fresh renders of the full law, generated "
                "samples (256 fixed seeds, stochastic DDIM 100 steps) at the final budget. Committed tables "
                "(make clocks).",
        draw=_draw,
        section="rules-ddpm",
        watch=(TABLE, POINTS, BASELINES),
    ),
]
