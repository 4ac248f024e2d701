"""The locality ladder (issue 14, Sec. 2 and 4): closed-form denoisers from a global to a local score,
with the trained U-Net at the same n as a line, per task and training-set size; and the theory rung.

Reads committed tables only (``make figures`` trains and samples nothing here):
    dmrules ladder --tasks A,B,C,D --n 64,1024 --unet runs/ladder/unet --work runs/ladder/work \
        --out reports/results/ladder_cpu.parquet
    dmrules ladder --theory --out reports/results/ladder_theory.parquet
(docs/baselines.md has the U-Net commands and the sample counts.)
"""

from __future__ import annotations

import math
from pathlib import Path

from reports.pipeline import COMMITTED, Figure

TABLE = COMMITTED / "ladder_cpu.parquet"
THEORY = COMMITTED / "ladder_theory.parquet"
RUNGS = ("local-P3", "local-P5", "local-P9", "local-P15", "local-P32", "empirical", "gaussian")
LABELS = {"local-P3": "P=3", "local-P5": "P=5", "local-P9": "P=9", "local-P15": "P=15", "local-P32": "P=32",
          "empirical": "empir.", "gaussian": "Gauss."}
LINE = ("local-P3", "local-P5", "local-P9", "local-P15", "local-P32")  # the ladder's axis; then the Gaussian apart
XLABELS = ("P=3", "P=5", "P=9", "P=15", "P=32 (emp.)", "Gaussian")
METRICS = (("parse_rate", "parsed %", 100.0, None),
           ("coarse_violation_rate", "coarse violations", 100.0, "coarse_violation_rate_se"),
           ("conform_pct", "conform %", 1.0, "conform_pct_se"),
           ("copy_rate", "copy rate (pixels)", 100.0, "copy_rate_se"),
           ("r2", "fine-rule R$^2$", 1.0, None))
MATCH = ("coarse_violation_rate", "conform_pct", "copy_rate")


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v, scale=1.0, digits=1) -> str:
    return "–" if _nan(v) else f"{scale * v:.{digits}f}"


def best_match(df, task: str, n: int) -> dict:
    """For each metric, the local rungs whose value is closest to the U-Net's: every P within one
    combined standard error of the smallest gap counts (ties are listed), as (labels, gap)."""
    cell = df[(df.task == task) & (df.n == n)].set_index("rung")
    if "unet" not in cell.index:
        return {}
    out = {}
    for m in MATCH:
        u = cell.loc["unet", m]
        local = cell[cell.index.str.startswith("local-")]
        local = local[local[m].notna()]
        if _nan(u) or not len(local):
            continue
        se_col = f"{m}_se"
        gap = (local[m] - u).abs()
        se_u = cell.loc["unet", se_col] if se_col in cell else 0.0
        se = ((local[se_col].fillna(0.0) ** 2 + (0.0 if _nan(se_u) else se_u) ** 2) ** 0.5) if se_col in local else 0.0
        tied = [r for r in local.index if gap[r] <= gap.min() + (se[r] if hasattr(se, "__getitem__") else se)]
        out[m] = (" / ".join(LABELS[r] for r in tied), float(gap.min()))
    return out


def _table_md(df) -> str:
    import pandas as pd

    from reports import style

    rows = []
    for (task, n), cell in df.groupby(["task", "n"], sort=True):
        cell = cell.set_index("rung")
        for rung in ("fresh", *RUNGS, "unet"):
            if rung not in cell.index:
                continue
            r = cell.loc[rung]
            rows.append({"task": task, "n": int(n), "rung": {"fresh": "fresh renders (the law)", "unet": "U-Net"}.get(
                rung, LABELS.get(rung, rung)), "samples": int(r.n_samples),
                "parsed %": _fmt(r.parse_rate, 100),
                "coarse viol. %": f"{_fmt(r.coarse_violation_rate, 100)} ± {_fmt(r.coarse_violation_rate_se, 100)}",
                "conform %": f"{_fmt(r.conform_pct)} ± {_fmt(r.conform_pct_se)}",
                "R2 [95 % CI]": f"{_fmt(r.r2, 1, 3)} [{_fmt(r.r2_lo, 1, 2)}, {_fmt(r.r2_hi, 1, 2)}]",
                "copy rate %": f"{_fmt(r.copy_rate, 100)} ± {_fmt(r.copy_rate_se, 100)}",
                "novel conform %": _fmt(r.novel_conform_pct),
                "median NN dist (px)": _fmt(r.median_d_pix, 1, 3),
                "U-Net images seen": "" if rung != "unet" else f"{r.unet_images_seen / 1000:.0f} k"
                + ("" if r.unet_images_seen >= r.unet_images_planned else
                   f" of {r.unet_images_planned / 1000:.0f} k (cut short)")})
    text = style.markdown_table(pd.DataFrame(rows))
    lines = []
    for (task, n), _ in df.groupby(["task", "n"], sort=True):
        bm = best_match(df, task, n)
        if bm:
            lines.append(f"- Task {task}, n = {n}: closest local P to the U-Net in coarse violations "
                         f"{bm.get('coarse_violation_rate', ('–',))[0]}, conform % {bm.get('conform_pct', ('–',))[0]}, "
                         f"copy rate {bm.get('copy_rate', ('–',))[0]}.")
    if lines:
        text += ("\nWhere the U-Net sits: the local P (P = 32 is the empirical denoiser) nearest to the U-Net in each "
                 "metric; P within one combined standard error of the nearest are listed as ties:\n") \
            + "\n".join(lines) + "\n"
    return text


def _theory_md(th) -> str:
    import pandas as pd

    from reports import style

    g = th.groupby(["score", "steps", "eta"], sort=False)
    rows = []
    for (score, steps, eta), grp in g:
        rows.append({"score": score, "sampler": f"DDIM {steps}, eta {eta:g}", "seeds": len(grp),
                     "residual std": f"{grp.residual_std.mean():.4f} ± {grp.residual_std.std():.4f}",
                     "|r| < 0.05 %": f"{100 * grp.within_005.mean():.1f}",
                     "conform %": f"{grp.conform_pct.mean():.1f} ± {grp.conform_pct.std():.1f}",
                     "R2": f"{grp.r2.mean():.3f} ± {grp.r2.std():.3f}", "slope": f"{grp.slope.mean():.3f}",
                     "KS vs U[0,1]": f"{grp.ks_uniform.mean():.3f}"})
    return ("\n**Theory rung** (`theory.sampling`): the rules law x = [zeta u, (1 - zeta) v] sampled with the exact "
            f"score and the DSM-optimal patch-wise score, {int(th.n.iloc[0])} samples per seed (mean ± sd over seeds); "
            "residual r = ||x(1)|| + ||x(2)|| - 1; R2 and slope of the OLS fit of ||x(2)|| on ||x(1)|| (rule: slope -1).\n\n"
            + style.markdown_table(pd.DataFrame(rows)))


def _made_by(df, path: Path) -> str:
    prov = df.attrs.get("provenance", {})
    return (f"\nTable `{path.relative_to(COMMITTED.parent.parent)}`, made by `{prov.get('command', '?')}` at commit "
            f"`{prov.get('commit', '?')}` on `{prov.get('device', '?')}`.\n")


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.lines as mlines

    from dmrules.core.results import read_table, write_text
    from reports import style

    if not TABLE.exists():
        return [write_text(out_dir / "locality_ladder.md", "No committed ladder table yet: run `dmrules ladder` "
                           "(docs/baselines.md).\n")]
    df = read_table(TABLE)
    ns = sorted(df.n.unique())
    fig, axes = style.subplots(len(ns), len(METRICS), height=3.4 * len(ns))
    for i, n in enumerate(ns):
        for j, (col, label, scale, se) in enumerate(METRICS):
            ax = axes[i, j]
            for task, cell in df[df.n == n].groupby("task"):
                color = style.TASK_COLORS[task]
                cell = cell.set_index("rung")

                def val(r, c=col, k=scale):
                    return k * cell.loc[r, c] if r in cell.index and not _nan(cell.loc[r, c]) else math.nan

                def err(r):
                    return val(r, se) if se else 0.0

                ax.errorbar(range(len(LINE)), [val(r) for r in LINE], yerr=[err(r) for r in LINE], color=color,
                            marker="o", ms=3.5, lw=1.2, capsize=2)
                ax.errorbar([len(LINE)], [val("gaussian")], yerr=[err("gaussian")], color=color, marker="D", ms=4,
                            capsize=2, ls="none")
                if not math.isnan(val("unet")):
                    ax.axhline(val("unet"), color=color, ls="--", lw=1.2)
            ax.set_xticks(range(len(XLABELS)), XLABELS if i == len(ns) - 1 else [], rotation=60, fontsize=7)
            if i == 0:
                ax.set_title(label, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"n = {n}", fontsize=10)
            ax.set_ylim(*((-0.05, 1.05) if col == "r2" else (-3, 103)))
    handles = [mlines.Line2D([], [], color=style.TASK_COLORS[t], marker="o", label=f"Task {t}")
               for t in sorted(df.task.unique())]
    handles.append(mlines.Line2D([], [], color="0.3", ls="--", label="trained U-Net (same n, same seeds)"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, 1.05))
    files = [style.save(fig, out_dir / "locality_ladder.png")]
    text = _table_md(df) + _made_by(df, TABLE)
    if THEORY.exists():
        th = read_table(THEORY)
        text += _theory_md(th) + _made_by(th, THEORY)
    files.append(write_text(out_dir / "locality_ladder.md", text))
    return files


FIGURES = [
    Figure(
        name="locality_ladder",
        title="Locality ladder: closed-form denoisers from local (P x P) to global, beside the trained U-Net",
        caption="Samples of the training set's closed-form denoisers (local P x P patch machine of Kamb & Ganguli, "
                "P = 32 = the whole image = the empirical denoiser; Gaussian/Wiener), drawn with the cpu preset's "
                "sampler (stochastic DDIM, 100 steps) and the same per-sample seeds as the trained U-Net (dashed, "
                "cpu preset; images seen per run in the table: 160 k planned, runs cut short are marked), "
                "evaluated by the precise evaluator. Copy rate: samples closer in "
                "pixels to a training image than any fresh render of the law. Error bars: binomial standard errors. "
                "Committed tables; the theory rung is in the table below the figure.",
        draw=_draw,
        section="rules-ddpm",
        watch=(TABLE, THEORY),
    ),
]
