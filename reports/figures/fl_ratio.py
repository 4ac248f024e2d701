"""Signal/noise ratio against n·SNR² on log-log axes: the diffusion growth-rate ratio with the theory
line (``theory.growth``) and the final ratios of both objectives, with fitted slopes; a table of the
slopes and the classification switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports.figures.fl_common import FL, OBJECTIVES, load, per_model
from reports.pipeline import Figure


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from dmrules.core.results import write_text
    from reports import style
    from sims.analysis import slopes, transition

    df = load(inputs[FL.key])
    pm = per_model(df[df.experiment == "grid"])
    x = np.geomspace(pm.n_snr2.min() / 1.2, pm.n_snr2.max() * 1.2, 50)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))

    ax = axes[0]
    dif = pm[pm.objective == "diffusion"]
    s = slopes(df, "diffusion")
    sns.scatterplot(data=dif, x="n_snr2", y="early_ratio", hue="n", palette="crest", ax=ax, s=28, edgecolor="none")
    theory = dif.sort_values("n_snr2")
    ax.plot(theory.n_snr2, theory.theory_ratio, color=style.COLORS["bound"], lw=1.5,
            label="theory: n‖µ‖² / (2σ²(d−2)) ≈ n·SNR²/2")
    e = s["early"]
    ax.plot(x, np.exp(e["intercept"]) * x ** e["slope"], color=style.COLORS["diffusion"], ls="--",
            label=f"fit: slope {e['slope']:.3f} ± {e['stderr']:.3f}")
    ax.set(xscale="log", yscale="log", xlabel="n·SNR²", ylabel="Δ⟨w, µ⟩ / Δ⟨w, ξ⟩ at step 1",
           title="diffusion: early growth-rate ratio (exact expected gradient)")
    ax.legend(fontsize=8, title="n", title_fontsize=8)

    ax = axes[1]
    for obj in OBJECTIVES:
        sub = pm[pm.objective == obj]
        ax.scatter(sub.n_snr2, sub.final_ratio, s=16, alpha=0.6, color=style.COLORS[obj], edgecolor="none")
        f = slopes(df, obj)["final"]
        ax.plot(x, np.exp(f["intercept"]) * x ** f["slope"], color=style.COLORS[obj], ls="--",
                label=f"{obj}: fitted slope {f['slope']:.2f}")
    ax.plot(x, x / 2, color=style.COLORS["bound"], lw=1, alpha=0.6, label="n·SNR²/2 (slope 1)")
    tr = transition(df)
    if np.isfinite(tr["point"]):
        ax.axvline(tr["point"], color=style.COLORS["classification"], lw=1, ls=":",
                   label=f"classification switch ≈ {tr['point']:.2g}")
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="n·SNR²", ylabel="final signal / noise",
           title="end of training: both objectives")
    ax.legend(fontsize=8)
    fig.tight_layout()
    files = [style.save(fig, out_dir / "fl_ratio.png")]

    rows = []
    for obj in OBJECTIVES:
        sl = slopes(df, obj)
        early = obj == "diffusion"  # the classifier's coefficients grow exponentially: no rate ratio at step 1
        rows.append({"objective": obj,
                     "early growth-ratio slope": f"{sl['early']['slope']:.3f}" if early else "n/a",
                     "early / theory (median)": f"{sl['early_over_theory_median']:.3f}" if early else "n/a",
                     "final-ratio slope": f"{sl['final']['slope']:.3f}", "final-ratio r²": f"{sl['final']['r2']:.3f}",
                     "models": sl["models"]})
    text = style.markdown_table(pd.DataFrame(rows))
    text += (f"\nClassification switch (logistic fit of signal-dominated vs log n·SNR²): n·SNR² ≈ {tr['point']:.3g}; "
             f"largest noise-dominated model at {tr['largest_noise_dominated']:.3g}, smallest signal-dominated at "
             f"{tr['smallest_signal_dominated']:.3g}. Theory slope of the early ratio: 1 (theory.growth).\n")
    files.append(write_text(out_dir / "fl_ratio.md", text))
    return files


def _paper_vs_ours(inputs: dict) -> list[dict]:
    from reports.reference import row
    from sims.analysis import slopes

    s = slopes(load(inputs[FL.key]), "diffusion")
    early, final = s["early"]["slope"], s["final"]["slope"]
    return [
        row("fl.diffusion.ratio", f"early growth ratio: slope {early:.3f} (theory 1; measured/predicted median "
                                  f"{s['early_over_theory_median']:.3f}); final ratio: slope {final:.2f}",
            "the early rates follow Θ(n·SNR²) (slope 1); the ratio at the end of training grows more slowly "
            "than slope 1 (spec §7 saw the same: the stationary ratio saturates when ‖ξ‖ is not small next to "
            "β√d), so the paper's stationary-point statement is reproduced for the rates, not for the end state",
            bool(0.8 <= early <= 1.2 and 0.8 <= final <= 1.2)),
    ]


FIGURES = [
    Figure(
        name="fl_ratio",
        title="Signal/noise ratio against n·SNR²",
        caption=("Left: the diffusion model's signal/noise growth-rate ratio at initialisation (step 1 of GD on the "
                 "exact expected loss, so it is η times the expected gradient's components), one dot per model, "
                 "against theory.growth's prediction n‖µ‖²/(2σ²(d−2)). Right: the ratio at the end of training for "
                 "both objectives with least-squares slopes on log-log axes."),
        needs=(FL,),
        draw=_draw,
        section="feature-learning",
        paper_vs_ours=_paper_vs_ours,
        reproduces=("fl:ratio",),
    ),
]
