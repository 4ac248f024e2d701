"""Noisy-Digits: the real-data analogue of the feature-learning paper's Noisy-MNIST experiment
(scikit-learn's bundled 8x8 digits, since nothing can be downloaded here)."""

from __future__ import annotations

from pathlib import Path

from reports.figures.fl_common import DIGITS, OBJECTIVES, load, per_model
from reports.pipeline import Figure


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.gridspec import GridSpec

    from reports import style
    from sims.digits import DigitsModel

    df = load(inputs[DIGITS.key])
    pm = per_model(df)
    classes = tuple(int(c) for c in df.classes.iloc[0].split(","))
    snrs = sorted(df.snr.unique())
    fig = plt.figure(figsize=(13, 4.6))
    gs = GridSpec(2, 4, figure=fig, width_ratios=[0.9, 0.9, 2, 2], wspace=0.35, hspace=0.3)
    # (a) what the networks see: digit patch and Gaussian patch, at the lowest and highest SNR
    for row, snr in enumerate((snrs[0], snrs[-1])):
        model = DigitsModel("diffusion", int(df.n.iloc[0]), snr, 0, d=64, sigma_xi=float(df.sigma_xi.iloc[0]),
                            classes=classes)
        dat = model.data()
        lim = float(dat["patches"][: model.n].abs().max().item() + 1e-12)
        lim = max(lim, float(dat["xi"][0].abs().max()))
        for col, (img, name) in enumerate(((dat["patches"][0], "x(1): digit"), (dat["xi"][0], "x(2): noise"))):
            ax = fig.add_subplot(gs[row, col])
            ax.imshow(img.reshape(8, 8).numpy(), cmap="gray", vmin=-lim, vmax=lim)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name}\nSNR {snr:g}" if row == 0 or col == 0 else name, fontsize=8)
    # (b) final signal/noise vs n·SNR², both objectives
    ax = fig.add_subplot(gs[:, 2])
    sns.lineplot(data=pm, x="n_snr2", y="final_ratio", hue="objective", palette=style.COLORS, marker="o",
                 errorbar=("pi", 100), ax=ax)
    ax.axhline(1, color="0.5", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="n·SNR²", ylabel="final signal / noise",
           title=f"alignment with the class-mean digits vs the noise ({classes[0]} vs {classes[1]})")
    ax.title.set_fontsize(9)
    # (c) test accuracy of the classifier on held-out digits + fresh noise
    ax = fig.add_subplot(gs[:, 3])
    cls = pm[pm.objective == "classification"]
    sns.lineplot(data=cls, x="n_snr2", y="test_acc", color=style.COLORS["classification"], marker="o",
                 errorbar=("pi", 100), ax=ax)
    ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
    ax.set(xscale="log", ylim=(0.4, 1.02), xlabel="n·SNR²", ylabel="test accuracy",
           title="classifier on held-out digits")
    ax.title.set_fontsize(9)
    return [style.save(fig, out_dir / "fl_digits.png")]


def _paper_vs_ours(inputs: dict) -> list[dict]:
    from reports.reference import row

    pm = per_model(load(inputs[DIGITS.key]))
    g = pm.groupby(["objective", "n_snr2"]).final_ratio.mean()
    lo, hi = g.index.get_level_values(1).min(), g.index.get_level_values(1).max()
    spread = {obj: g[obj][hi] / g[obj][lo] for obj in OBJECTIVES}
    ours = (f"from n·SNR² = {lo:.2g} to {hi:.2g}: classification ratio {g['classification'][lo]:.2g} → "
            f"{g['classification'][hi]:.2g}, diffusion {g['diffusion'][lo]:.2g} → {g['diffusion'][hi]:.2g}")
    note = ("8x8 sklearn digits (two classes), not MNIST; the classifier's ratio spans more orders of magnitude "
            f"(×{spread['classification']:.0f} vs ×{spread['diffusion']:.0f}); digits are not orthogonal, so the "
            "switch is smoother than on the synthetic law")
    return [row("fl.noisy_mnist", ours, note, bool(spread["classification"] > spread["diffusion"]))]


FIGURES = [
    Figure(
        name="fl_digits",
        title="Noisy-Digits: the Noisy-MNIST analogue",
        caption=("scikit-learn's 8×8 digits, classes 0 and 1: the signal patch is the digit scaled to norm ‖µ‖, the "
                 "noise patch is N(0, σ² I₆₄) with σ = 0.2; n = 40, 3 seeds, same networks and training as the "
                 "synthetic sweep. Alignment: max over filters with the class-mean digit (rescaled to ‖µ‖) vs "
                 "mean over examples of the max alignment with their noise patch."),
        needs=(DIGITS,),
        draw=_draw,
        section="feature-learning",
        paper_vs_ours=_paper_vs_ours,
        reproduces=("fl:fig4",),
    ),
]
