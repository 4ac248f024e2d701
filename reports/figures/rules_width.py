"""The rule error E_t against width, training steps and n: the patch-wise network settles at the
constant L_t (not at zero) as m and steps grow; the joint control goes to zero."""

from __future__ import annotations

from pathlib import Path

from reports.figures.rules_fig6 import ACTS, RULES, load
from reports.pipeline import Figure


def _ratio(df):
    """E_t / L_t per row (both scale-free), the patch-wise constant as the unit."""
    return df.assign(ratio=df.error_scaled / df.bound_scaled)


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import seaborn as sns

    from reports import style

    df = _ratio(load(inputs[RULES.key]))
    last = df[df.step == df.step.max()]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    pw = last[last.network == "patchwise"].groupby(["activation", "n", "m"], as_index=False).ratio.mean()
    pw["n"] = pw.n.map(lambda v: f"n = {v}")
    sns.lineplot(data=pw, x="m", y="ratio", hue="activation", style="n", markers=True, ax=ax,
                 palette={"quadratic": style.COLORS["patchwise"], "relu": "#8c510a"})
    jt = last[last.network == "joint"].groupby(["activation", "m"], as_index=False).ratio.mean()
    for act, marker in zip(ACTS, ("s", "D")):
        sel = jt[jt.activation == act]
        ax.scatter(sel.m, sel.ratio, marker=marker, color=style.COLORS["joint"], s=40, zorder=3,
                   label=f"joint {act} (control)")
    ax.axhline(1, color=style.COLORS["bound"], lw=1.2, label="E_t = L_t")
    ax.set(xscale="log", ylim=(-0.05, max(1.6, float(pw.ratio.max()) * 1.1)), xlabel="width m",
           ylabel="E_t / L_t (mean over t)", title="end of training: against width and n (linear y)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    big = df[df.n == df.n.max()]
    widest = big.groupby("network").m.transform("max")
    big = big[big.m == widest].groupby(["network", "activation", "step"], as_index=False).ratio.mean()
    big["curve"] = big.network + " " + big.activation
    big["step1"] = big.step + 1
    palette = {f"{net} {act}": c for net in ("patchwise", "joint") for act, c in
               zip(ACTS, (style.COLORS[net], "#8c510a" if net == "patchwise" else "#006d77"))}
    sns.lineplot(data=big, x="step1", y="ratio", hue="curve", palette=palette, marker="o", ax=ax)
    ax.axhline(1, color=style.COLORS["bound"], lw=1.2)
    ax.set(xscale="log", yscale="log", xlabel="Adam step + 1", ylabel="E_t / L_t (mean over t)",
           title="over training, widest networks, largest n")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [style.save(fig, out_dir / "rules_width.png")]


FIGURES = [
    Figure(
        name="rules_width",
        title="Rule error against width, steps and n",
        caption=("E_t / L_t (both divided by (α/β²)², averaged over the evaluation times). Early in training the "
                 "nearly constant network conforms to the rule (E_t ≈ 0); DSM then drives the patch-wise network to "
                 "the rule-violating optimum, and E_t settles at L_t for every width from 5 to 320 (slightly above "
                 "with n = 256 training points); the joint network ends orders of magnitude below."),
        needs=(RULES,),
        draw=_draw,
        section="theory",
        reproduces=("rules:fig6",),
    ),
]
