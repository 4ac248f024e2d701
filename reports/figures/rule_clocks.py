"""Rule clocks (issue 14): when, in images seen, each rule and memorisation set in, against n.

Reads the committed sweep table ``reports/results/clocks_cpu.parquet`` (and ``*_split``), made by
``make clocks`` (docs/clocks.md); it is not recomputed by ``make figures`` (the sweep takes CPU hours).
Per task: the first evaluated budget (kimg, first sampler) at which (i) coarse violations fall below
1 % (on >= MIN_COUNT parsed samples), (ii) conform % on *novel* samples comes within 5 points of the
training images' conform % (on >= MIN_COUNT novel samples), and (iii) copy_rate passes 50 %, per seed (a marker at the top edge: not reached by the last budget);
then the trajectories behind them, the disjoint-split ratio, and a table at the final budget with the
seeds' spread and the second sampler beside the first.
"""

from __future__ import annotations

import math
from pathlib import Path

from reports.pipeline import COMMITTED, Figure

TABLE = COMMITTED / "clocks_cpu.parquet"
SPLIT = COMMITTED / "clocks_cpu_split.parquet"
LONG = COMMITTED / "clocks_long_cpu.parquet"  # one cell again with twice the images (its own LR schedule)
LONG_SPLIT = COMMITTED / "clocks_long_cpu_split.parquet"
REGENERATE = "`make clocks` (docs/clocks.md)"
CLOCKS = (("coarse violations < 1 %", "o"), ("novel conform % within 5 of training", "s"), ("copy rate > 50 %", "^"))


MIN_COUNT = 30  # a clock fires only on a proportion of at least this many samples (toolkit's choice)


def counts(g):
    """(parsed, novel) sample counts per evaluation (older tables lack the count columns)."""
    parsed = g["parsed"] if "parsed" in g else g["parse_rate"] * g["n_samples"]
    return parsed, (g["n_novel"] if "n_novel" in g else parsed * g["novel_frac"])


def reached(g) -> tuple[float | None, float | None, float | None]:
    """First kimg (sorted evaluations of one run, first sampler) at which each clock condition holds.

    A proportion read off a handful of samples is not a clock: 0 violations among 4 parsed images, or
    2 novel samples that both conform, would fire it. So the coarse clock needs >= MIN_COUNT parsed
    samples and the novel-conform clock >= MIN_COUNT novel ones (the copy clock reads all samples)."""
    g = g.sort_values("kimg")

    def first(mask):
        hit = g.loc[mask.fillna(False).astype(bool), "kimg"]
        return float(hit.iloc[0]) if len(hit) else None

    parsed, novel = counts(g)
    return (first((g["coarse_violation_rate"] < 0.01) & (parsed >= MIN_COUNT)),
            first((g["novel_conform_pct"] >= g["train_conform_pct"] - 5.0) & (novel >= MIN_COUNT)),
            first(g["copy_rate"] > 0.5))


def _primary(df):
    """Rows of each run's first (clock) sampler."""
    first = df.groupby("run")["sampler"].transform(lambda s: s.mode().iloc[0])  # the sampler at every budget
    return df[df["sampler"] == first]


def clock_table(df):
    import pandas as pd

    rows = []
    for (task, n, seed), g in _primary(df).groupby(["task", "n", "seed"]):
        k = reached(g)
        rows.append({"task": task, "n": n, "seed": seed, "last_kimg": float(g["kimg"].max()),
                     **{name: v for (name, _), v in zip(CLOCKS, k)}})
    return pd.DataFrame(rows)


def _fmt(vals, digits=1, scale=1.0) -> str:
    v = [scale * x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return "–"
    mean = sum(v) / len(v)
    return f"{mean:.{digits}f}" if len(v) == 1 else f"{mean:.{digits}f} ± {(max(v) - min(v)) / 2:.{digits}f}"


def _final_table(df, split) -> str:
    import pandas as pd

    from reports import style

    rows = []
    fin = df[df["final"]]
    for (task, n, sampler, _), g in fin.groupby(["task", "n", "sampler", "kimg"]):
        sp = split[(split["task"] == task) & (split["n"] == n) & (split["sampler"] == sampler)
                   & (split["kimg"] == g["kimg"].iloc[0])] if len(split) else split
        rows.append({"task": task, "n": n, "sampler": sampler, "kimg": f"{g['kimg'].iloc[0]:g}",
                     "seeds": len(g), "coarse viol. %": _fmt(g["coarse_violation_rate"], 1, 100),
                     "R²": _fmt(g["r2"], 3), "conform %": _fmt(g["conform_pct"]),
                     "novel %": _fmt(g["novel_frac"], 0, 100), "novel conform %": _fmt(g["novel_conform_pct"]),
                     "train conform %": _fmt(g["train_conform_pct"]), "copy rate %": _fmt(g["copy_rate"], 1, 100),
                     "residual std": _fmt(g["residual_std"], 4),
                     "split ratio": "–" if not len(sp) else f"{sp['ratio'].iloc[0]:.2f} [{sp['ratio_lo'].iloc[0]:.2f}, "
                                                            f"{sp['ratio_hi'].iloc[0]:.2f}]"})
    return style.markdown_table(pd.DataFrame(rows))


def _provenance(df) -> str:
    prov = df.attrs.get("provenance", {})
    cov = prov.get("coverage", {})
    missing = cov.get("runs_missing") or []
    return (f"\nTable `reports/results/{TABLE.name}`: made by `{prov.get('command', '?')}` at commit "
            f"`{prov.get('commit', '?')}` on {', '.join(prov.get('devices', [])) or prov.get('device', '?')}; "
            f"{prov.get('wall_time_s', float('nan')) / 60:.0f} CPU-minutes of training, sampling and evaluation. "
            f"Coverage: {cov.get('runs_finished', '?')} of {cov.get('runs_planned', '?')} planned runs finished, "
            f"{cov.get('evaluations_present', '?')} of {cov.get('evaluations_planned', '?')} evaluations"
            + (f" (still missing: {', '.join(missing)})" if missing else "") + ".\n")


def _long_text(long, split) -> str:
    """The longer-budget cell (dotted in the novel-conform panel): every budget, both samplers."""
    if not len(long):
        return ""
    prov = long.attrs.get("provenance", {})
    return (f"\nA longer budget (`reports/results/{LONG.name}`, dotted in the figure): the same cell trained again "
            f"with budgets up to {long['kimg'].max():g} kimg (its learning-rate schedule spans them) (table written "
            f"at commit `{prov.get('commit', '?')}`):\n\n" + _final_table(long.assign(final=True), split))


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import numpy as np
    import pandas as pd
    import seaborn as sns

    from dmrules.core.results import read_table, write_text
    from reports import style

    if not TABLE.exists():
        return [write_text(out_dir / "rule_clocks.md", f"No committed rule-clock table yet: run {REGENERATE}.\n")]
    df = read_table(TABLE)
    split = read_table(SPLIT) if SPLIT.exists() else pd.DataFrame()
    df = df[df["holdout"] == ""]
    long = read_table(LONG) if LONG.exists() else pd.DataFrame()
    long_split = read_table(LONG_SPLIT) if LONG_SPLIT.exists() else pd.DataFrame()
    tasks = sorted(df["task"].unique())
    clocks = clock_table(df)
    prim = _primary(df)
    top = float(df["kimg"].max()) * 1.6  # "not reached" row
    fig, axes = style.subplots(4, len(tasks), width=7.0 * len(tasks), height=14, sharex="row")
    ns = sorted(df["n"].unique())
    palette = dict(zip(ns, sns.color_palette("viridis", len(ns))))
    for j, task in enumerate(tasks):
        c = clocks[clocks["task"] == task]
        ax = axes[0, j]
        for k, (name, marker) in enumerate(CLOCKS):
            y = c[name].astype(float)
            x = c["n"] * (1.0 + 0.06 * (k - 1))  # small offsets so the clocks do not hide each other
            ax.scatter(x[y.notna()], y[y.notna()], marker=marker, label=name, color=f"C{k}")
            ax.scatter(x[y.isna()], np.full(int(y.isna().sum()), top), marker=marker, facecolors="none",
                       edgecolors=f"C{k}")
            mean = c.assign(v=y).groupby("n")["v"].mean()
            ax.plot(mean.index * (1.0 + 0.06 * (k - 1)), mean.values, color=f"C{k}", lw=0.8)
        ax.axhline(top, color="0.7", lw=0.6, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="training-set size n", ylabel="kimg when reached",
               title=f"Task {task}: rule clocks (hollow: not by {df['kimg'].max():g} kimg)")
        budgets = sorted(df["kimg"].unique())
        ax.set_xticks(ns, [str(n) for n in ns], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_yticks(budgets + [top], [f"{b:g}" for b in budgets] + ["not\nreached"], minor=False)
        ax.set_yticks([], minor=True)
        ax.set_xlim(min(ns) / 1.6, max(ns) * 1.6)
        ax.set_ylim(min(budgets) / 1.4, top * 1.4)
        ax.legend(fontsize=7, loc="lower right")
        t = prim[prim["task"] == task].copy()
        t["coarse %"] = 100 * t["coarse_violation_rate"]
        t["copy %"] = 100 * t["copy_rate"]
        # rates resting on fewer than MIN_COUNT samples are left out of the curves (as of the clocks)
        parsed, novel = counts(t)
        t.loc[parsed < MIN_COUNT, "coarse %"] = float("nan")
        t.loc[novel < MIN_COUNT, "novel_conform_pct"] = float("nan")
        for i, (col, ylabel) in enumerate((("coarse %", f"coarse violations (%, >= {MIN_COUNT} parsed)"),
                                           ("novel_conform_pct", f"conform % on novel samples (>= {MIN_COUNT})"),
                                           ("copy %", "copy rate (%)")), start=1):
            ax = axes[i, j]
            sns.lineplot(t, x="kimg", y=col, hue="n", palette=palette, marker="o", errorbar=("pi", 100), ax=ax)
            ax.set(xscale="log", ylabel=ylabel, xlabel="training images seen (kimg)")
            if col == "novel_conform_pct":
                ax.axhline(float(t["train_conform_pct"].mean()), color=style.COLORS["ceiling"], ls="--",
                           label="training images")
                lt = _primary(long[long["task"] == task]) if len(long) else long
                for n, g in (lt.groupby("n") if len(lt) else ()):
                    m = g.groupby("kimg")["novel_conform_pct"].agg(["mean", "min", "max"])
                    ax.errorbar(m.index, m["mean"], yerr=[m["mean"] - m["min"], m["max"] - m["mean"]], color="k",
                                ls=":", marker="D", ms=4, capsize=2, lw=1,
                                label=f"n = {n}, {g['kimg'].max():g}-kimg schedule")
            if col == "coarse %":
                ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
                ax.set_yscale("symlog", linthresh=1.0)
                ax.set_ylim(bottom=0)
            if col == "copy %" and len(split):
                s = split[(split["task"] == task) & (split["sampler"].isin(t["sampler"].unique()))]
                if len(s):
                    tw = ax.twinx()
                    for n, g in s.groupby("n"):
                        tw.plot(g["kimg"], g["ratio"], ls="--", color=palette.get(n, "k"), lw=1)
                    tw.set(ylim=(0, 1.1), ylabel="disjoint-split ratio (dashed)")
                    tw.grid(False)
            ax.legend(fontsize=7, title="n", title_fontsize=7)
    fig.tight_layout()
    files = [style.save(fig, out_dir / "rule_clocks.png")]
    text = (_final_table(df, split) + "\nFinal budget per task and n: mean ± half the range over the seeds (one "
            "value: one seed). Novel: parsed samples farther (position features) from every training image "
            "than the median fresh render; copy rate: samples closer (pixels) than any fresh render; split ratio: "
            "paired / unrelated pixel distance of the two seeds' samples from the same noise (bootstrap 95 % CI; "
            "0 = same function of the noise, 1 = unrelated).\n\nClocks (first kimg at which each holds; –: not by the last budget; "
            f"the coarse and novel clocks need at least {MIN_COUNT} parsed / novel samples behind the rate):\n\n"
            + style.markdown_table(clocks.astype(object).fillna("–")) + _provenance(df) + _long_text(long, long_split))
    files.append(write_text(out_dir / "rule_clocks.md", text))
    return files


FIGURES = [
    Figure(
        name="rule_clocks",
        title="Rule clocks: the training budget at which rules, novelty and copying set in, against n",
        caption="Tasks A and C at the cpu preset (unet-small-p2), each (n, seed) one run evaluated at the same "
                "image budgets for every n on 256 fixed per-sample seeds (stochastic DDIM, 100 steps, eta 1); "
                "the two seeds train on disjoint sets. Top: first budget at which coarse violations < 1 %, "
                "conform % among novel samples within 5 points of the training images', copy rate > 50 %. "
                "Below: the trajectories (band: the seeds' range); dashed: disjoint-split ratio; dotted (Task A): "
                "n = 1024 trained again with twice the images (its own schedule to 320 kimg). Committed tables "
                "(make clocks).",
        draw=_draw,
        section="rules-ddpm",
        watch=(TABLE, SPLIT, LONG, LONG_SPLIT),
    ),
]
