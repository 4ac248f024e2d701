"""Mitigation (rules paper; protocol Sec. 4.4, 6): classifier accuracy per task and architecture beside
the authors' 60-80 %, and guided vs unguided vs filtered samples (fine-rule R^2, conforming %).

These tables are committed, not recomputed by ``make figures``: training 20 classifiers and sampling
every guidance arm takes about an hour on two CPU cores (past the 15-minute budget of the default
run) and GPU time at paper scale. Each table carries its provenance (the exact ``dmrules`` command,
commit, device, wall time); the figure shows the paper-preset (GPU) table when one is committed,
otherwise the cpu-preset one. To regenerate (docs/mitigation.md has the GPU commands):

    dmrules classifier sweep --tasks A,B,C,D --preset cpu --work runs/mitigate/cpu \
        --out reports/results/mitigation_classifiers_cpu.parquet
    dmrules mitigate --tasks A --preset cpu --work runs/mitigate/cpu \
        --out reports/results/mitigation_guidance_cpu.parquet
"""

from __future__ import annotations

import math
from pathlib import Path

from fullscale.tasks import registry
from reports.pipeline import COMMITTED, Figure

TASKS = registry.names()  # the task registry (fullscale/tasks/registry.py)
CLASSIFIER_TABLES = (COMMITTED / "mitigation_classifiers_paper.parquet",
                     COMMITTED / "mitigation_classifiers_cpu.parquet")
GUIDANCE_TABLES = (COMMITTED / "mitigation_guidance_paper.parquet", COMMITTED / "mitigation_guidance_cpu.parquet")
ARCH_LABEL = {("noisy", "unet"): "noisy U-Net", ("noisy", "mlp"): "noisy MLP", ("clean", "mlp"): "MLP",
              ("clean", "conv"): "small conv", ("clean", "resnet8"): "ResNet-8"}
REGENERATE = ("`dmrules classifier sweep --tasks A,B,C,D --preset cpu --out "
              "reports/results/mitigation_classifiers_cpu.parquet` and `dmrules mitigate --tasks A --preset cpu "
              "--out reports/results/mitigation_guidance_cpu.parquet` (docs/mitigation.md)")


def _first(paths):
    """(table with provenance, path) of the first committed table that exists, else (None, None)."""
    from dmrules.core.results import read_table

    for p in paths:
        if Path(p).exists():
            return read_table(p), Path(p)
    return None, None


def _missing(out_dir: Path, name: str) -> list[Path]:
    from dmrules.core.results import write_text

    return [write_text(out_dir / f"{name}.md", f"No committed table yet: run {REGENERATE}.\n")]


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _pct(v) -> str:
    return "–" if _isnan(v) else f"{100 * v:.1f}"


def _num(v, digits=3) -> str:
    return "–" if _isnan(v) else f"{v:.{digits}f}"


def _made_by(df, path: Path) -> str:
    prov = df.attrs.get("provenance", {})
    return (f"\nTable `{path.relative_to(COMMITTED.parent.parent)}`, made by `{prov.get('command', '?')}` at commit "
            f"`{prov.get('commit', '?')}` on `{prov.get('device', '?')}` in "
            f"{prov.get('wall_time_s', float('nan')):.0f} s.\n")


# ---- classifiers ----------------------------------------------------------------------------------
def _main_rows(df):
    """One row per classifier: held-out accuracy on clean images (noisy ones at t = 0)."""
    df = df[~df.nt_xent] if "nt_xent" in df else df
    main = df[(df.noise_t == "0") | df.noise_t.str.startswith("clean")].copy()
    main["label"] = [ARCH_LABEL.get((k, a), f"{k} {a}") for k, a in zip(main.kind, main.arch)]
    return main


def _draw_classifiers(inputs: dict, out_dir: Path) -> list[Path]:
    import pandas as pd
    import seaborn as sns

    from dmrules.core.results import write_text
    from reports import style

    df, path = _first(CLASSIFIER_TABLES)
    if df is None:
        return _missing(out_dir, "mitigation_classifiers")
    main = _main_rows(df)
    rows = []
    for (kind, arch), g in main.groupby(["kind", "arch"], sort=False):
        row = {"classifier": ARCH_LABEL.get((kind, arch), arch), "params": f"{int(g.params.iloc[0]):,}"}
        for task in TASKS:
            r = g[g.task == task]
            if len(r):
                row[f"{task} ours"] = _pct(r.acc.iloc[0])
                row[f"{task} paper"] = _pct(r.paper_acc.iloc[0])
        rows.append(row)
    text = style.markdown_table(pd.DataFrame(rows))
    text += (f"\nHeld-out accuracy (%) on {int(main.n_test.iloc[0])} fresh contrastive images per task (classes 0 / "
             f"1 / 2 equally frequent; chance 33.3 %), preset `{main.preset.iloc[0]}`. Noisy classifiers: on clean "
             "images (t = 0). Paper: the authors' filter accuracies (protocol Sec. 4.4, `test_acc.pdf`; their "
             "\"small conv U-Net\" is our `conv`).\n" + _made_by(df, path))
    files = [write_text(out_dir / "mitigation_classifiers.md", text)]

    fig, axes = style.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1]})
    ax = axes[0, 0]
    order = [t for t in TASKS if t in set(main.task)]
    hues = [lab for lab in ARCH_LABEL.values() if lab in set(main.label)]
    sns.barplot(data=main, x="task", y="acc", hue="label", ax=ax, order=order, hue_order=hues)
    width = 0.8 / max(len(hues), 1)  # seaborn's default: the hue bars share 80 % of each category
    paper = main[main.paper_acc.notna()]
    xs = [order.index(t) - 0.4 + width * (hues.index(lab) + 0.5) for t, lab in zip(paper.task, paper.label)]
    style.paper_marker(ax, xs, paper.paper_acc, label="paper (filters)")
    ax.axhline(1 / 3, color="0.5", lw=0.8, ls=":")
    ax.set(ylim=(0, 1.05), ylabel="held-out accuracy (clean images)", title="Rule classifiers, contrastive data")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax = axes[0, 1]
    noisy = df[(df.kind == "noisy") & ~df.nt_xent & df.noise_t.str.fullmatch(r"\d+")].copy()
    if len(noisy):
        noisy["t"] = noisy.noise_t.astype(int)
        sns.lineplot(data=noisy.sort_values("t"), x="t", y="acc", hue="task", style="arch", marker="o", ax=ax,
                     palette=style.TASK_COLORS, hue_order=[t for t in TASKS if t in set(noisy.task)])
        ax.legend(fontsize=7)
    ax.axhline(1 / 3, color="0.5", lw=0.8, ls=":")
    ax.set(ylim=(0, 1.02), xlabel="DDPM step t of the input x_t", ylabel="held-out accuracy",
           title="Noisy classifiers vs noise level")
    files.insert(0, style.save(fig, out_dir / "mitigation_classifiers.png"))
    return files


def _classifier_rows(inputs: dict) -> list:
    from reports.reference import row

    df, _ = _first(CLASSIFIER_TABLES)
    if df is None:
        return [row("rules.clf_claim", "not measured yet", f"no committed table: run {REGENERATE}", None)]
    main = _main_rows(df)
    clean = main[main.kind == "clean"]
    out = []
    for r in clean.itertuples(index=False):
        diff = 100 * (r.acc - r.paper_acc)
        agrees = abs(diff) <= 10
        if agrees:
            why = "within 10 points"
        elif diff > 0:
            why = (f"{diff:+.0f} points: our renders are exact anti-aliased 32 px images of the same scenes, the "
                   "authors' were 770 px matplotlib figures downscaled (and possibly randomly cropped)")
        else:
            why = f"{diff:+.0f} points" + (f": the {r.preset} preset trains smaller networks for fewer steps"
                                           if r.preset != "paper" else "")
        out.append(row(f"rules.clf_acc.{r.arch}.{r.task}", f"{100 * r.acc:.1f} %",
                       f"preset {r.preset}, {int(r.n_test)} held-out images; {why}", agrees))
    lo, hi = 100 * clean.acc.min(), 100 * clean.acc.max()
    holds = bool(lo >= 50 and hi <= 90)
    out.append(row("rules.clf_claim", f"{lo:.0f}-{hi:.0f} % ({len(clean)} clean filters, {clean.task.nunique()} tasks)",
                   "the claim holds if accuracies sit well above chance (33 %) and well below 100 %" + (
                       "" if holds else "; here a small CNN (ResNet-8) separates the classes almost perfectly on "
                       "our exact renders, where the ±1-unit size differences of C and D and the B/A margins stay "
                       "visible in the anti-aliased pixels; the authors' downscaled matplotlib images (and random "
                       "crops in their loader) blur or jitter exactly these cues"), holds))
    return out


# ---- guidance -------------------------------------------------------------------------------------
def _delta(r, key: str, digits: int = 3) -> str:
    """``+0.023 [-0.011, +0.060]`` from a row's delta columns (– where missing)."""
    d = getattr(r, key, None)
    if _isnan(d):
        return "–"
    lo, hi = getattr(r, f"{key}_lo"), getattr(r, f"{key}_hi")
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _setting(schedule, scale, filtered) -> str:
    return ("unguided" if schedule == "none" else f"{schedule} s={scale:g}") + (" + filter" if filtered else "")


def _draw_guidance(inputs: dict, out_dir: Path) -> list[Path]:
    import pandas as pd

    from dmrules.core.results import write_text
    from reports import style

    df, path = _first(GUIDANCE_TABLES)
    if df is None:
        return _missing(out_dir, "mitigation_guidance")
    df = df.copy()
    df["setting"] = [_setting(s, w, f) for s, w, f in zip(df.schedule, df.scale, df.filtered)]
    rows = []
    for r in df.itertuples(index=False):
        n = int(r.n) if not _isnan(r.n) else 0
        rows.append({"task": r.task, "samples": r.setting, "kept %": _pct(r.kept_frac), "images": n,
                     "parsed %": _pct(r.parsed / n) if n else "–", "coarse viol. %": _pct(r.coarse_violation_rate),
                     "slope": _num(r.slope), "R²": _num(r.r2), "ΔR² [95 % CI]": _delta(r, "r2_delta"),
                     "conforming %": _num(r.conform_pct, 1), "Δ conforming [95 % CI]": _delta(r, "conform_delta", 1),
                     "filter p(y=1)": _num(r.clean_p1)})
    first = df.iloc[0]
    text = style.markdown_table(pd.DataFrame(rows))
    how = (f"{int(first.steps)} steps, {first.variance} variance" if first.sampler == "ddpm"
           else f"{int(first.steps)} steps, eta {first.get('eta', 0):g}")
    sampling_s = df[~df.filtered].sample_s.sum()
    text += (f"\nSame seeds in every row: {int(first.n_samples)} samples per setting, {first.sampler} sampler "
             f"({how}) from DDPM `{first.ddpm_model}` (preset "
             f"`{first.ddpm_preset}`). Guide: the noisy {first.get('guide_arch', 'unet')} classifier, mu <- mu + "
             f"w_t sigma_t^2 grad log p(y=1|x_t). Filter: the clean {first.filter_arch} keeps predicted class 1. "
             "R² and slope: OLS of rule_y on rule_x over the parsed samples (`fullscale.evaluate`); conforming %: "
             "the 0.05-bin metric; Δ: change from the unguided set with a 95 % paired bootstrap interval over seeds; "
             "filter p(y=1): the filter's mean probability of the rule-conforming class. Sampling took "
             f"{sampling_s:.0f} s in all (column `sample_s`).\n" + _made_by(df, path))
    files = [write_text(out_dir / "mitigation_guidance.md", text)]
    fig, axes = style.subplots(1, 3, height=1.2 + 0.3 * len(df))
    # the parse rate beside each label: guidance can raise the conforming % while fewer samples parse
    labels = [f"{t}: {s} ({100 * p / n:.0f} % parsed)" if n else f"{t}: {s}"
              for t, s, p, n in zip(df.task, df.setting, df.parsed.fillna(0), df.n.fillna(0))]
    colors = [style.COLORS["filtered"] if f else style.COLORS["unguided" if sched == "none" else "guided"]
              for sched, f in zip(df.schedule, df.filtered)]
    for k, (col, title) in enumerate((("r2", "fine-rule R² (OLS)"), ("conform_pct", "rule-conforming %"))):
        ax = axes[0, k]
        ax.barh(range(len(df)), [0 if _isnan(v) else v for v in df[col].astype(float)], color=colors)
        ax.set_title(title)
    ax = axes[0, 2]
    if "r2_delta" in df:
        for i, r in enumerate(df.itertuples(index=False)):
            if not _isnan(r.r2_delta):
                ax.errorbar(r.r2_delta, i, xerr=[[r.r2_delta - r.r2_delta_lo], [r.r2_delta_hi - r.r2_delta]],
                            fmt="o", color=colors[i], capsize=3)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_title("ΔR² vs unguided (95 % CI)")
    for k in range(3):
        axes[0, k].set_yticks(range(len(df)), labels if k == 0 else [""] * len(df), fontsize=7)
        axes[0, k].set_ylim(len(df) - 0.5, -0.5)
    files.insert(0, style.save(fig, out_dir / "mitigation_guidance.png"))
    return files


def _guidance_rows(inputs: dict) -> list:
    from reports.reference import row

    df, _ = _first(GUIDANCE_TABLES)
    if df is None:
        return [row("rules.guidance", "not measured yet", f"no committed table: run {REGENERATE}", None)]
    out = []
    for task, g in df.groupby("task"):
        base = g[(g.schedule == "none") & ~g.filtered].iloc[0]
        guided = g[(g.schedule != "none") & ~g.filtered]
        filt = g[(g.schedule == "none") & g.filtered].iloc[0]
        n = int(base.n) if not _isnan(base.n) else 0
        usable = n > 0 and base.parsed / n >= 0.3 and not _isnan(base.r2)
        note = (f"preset {base.preset}: unguided R² {_num(base.r2)} on {int(base.parsed)} parsed of {n}"
                + ("" if usable else "; most samples of this DDPM fail to parse, so R² changes mean little here"))
        gains = guided.r2 - base.r2
        best = guided.loc[gains.idxmax()] if gains.notna().any() else None
        if best is not None:
            arm = _setting(best.schedule, best.scale, False)
            ci = f" [{best.r2_delta_lo:+.3f}, {best.r2_delta_hi:+.3f}]" if "r2_delta_lo" in g else ""
            text = f"Task {task}: best guided ΔR² {best.r2 - base.r2:+.3f}{ci} ({arm})"
        else:
            text = f"Task {task}: guided R² not measurable"
        filt_gain = "n/a" if _isnan(filt.r2) or _isnan(base.r2) else f"{filt.r2 - base.r2:+.3f}"
        text += f"; filter ΔR² {filt_gain}, keeps {_pct(filt.kept_frac)} %"
        out.append(row("rules.guidance", text, note, None))
        if best is not None and usable and "r2_delta_lo" in g:
            lo, hi = best.r2_delta_lo, best.r2_delta_hi
            overlaps = bool(hi >= 0.05 and lo <= 0.10)
            why = (f"best of {len(guided)} guided arms ({arm}), 95 % paired bootstrap interval"
                   + ("; it also includes 0" if lo <= 0 <= hi else "")
                   + ("" if overlaps else "; outside the third-party 0.05-0.10"))
            out.append(row("rules.guidance_gain", f"Task {task}: {best.r2_delta:+.3f} [{lo:+.3f}, {hi:+.3f}]",
                           f"{note}; {why}", overlaps))
    return out


FIGURES = [
    Figure(
        name="mitigation_classifiers",
        title="Rule classifiers: held-out accuracy per task and architecture (paper: 60-80 %)",
        caption="Noisy (time-conditioned) classifiers guide the sampler; clean ones filter samples. Trained on "
                "the contrastive ternary sets (class 1 = rule-conforming; 0 and 2 deviate in opposite "
                "directions) with cross-entropy. Left: accuracy on clean held-out images; hollow stars: the "
                "authors' filter accuracies. Right: noisy classifiers against the noise level of their input. "
                "Committed table (see docs/mitigation.md to regenerate).",
        draw=_draw_classifiers,
        section="mitigation",
        paper_vs_ours=_classifier_rows,
        reproduces=("rules:clf",),
    ),
    Figure(
        name="mitigation_guidance",
        title="Guided vs unguided vs filtered samples",
        caption="Every row samples the same seeds from the same DDPM; guided rows add classifier guidance with "
                "the authors' weight schedules; '+ filter' rows keep what the clean classifier calls "
                "rule-conforming. The paper calls the improvement from guidance limited. Committed table.",
        draw=_draw_guidance,
        section="mitigation",
        paper_vs_ours=_guidance_rows,
        reproduces=("rules:guidance",),
    ),
]
