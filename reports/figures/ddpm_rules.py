"""The rules paper's Figure 4 analogue (fine rule: rule_x vs rule_y of generated images with the
OLS fit) and Table 1 analogue (coarse-rule violations), per task and model.

Sources: the ``cpu`` preset run on Task A (made by ``make figures``) and every committed GPU
paper-protocol run under reports/results/ddpm_paper/. R² of generated images is shown beside the
evaluator's ceiling: the same metric measured on the run's training images at the same resolution.
"""

from __future__ import annotations

from pathlib import Path

from reports.figures.ddpm_runs import budget, CPU_RUN, PAPER_R2, all_runs, label
from reports.pipeline import Figure


def _fit(a, b) -> str:
    if a is None or b is None:
        return "no fit"
    return f"y = {a:.2f}x {'+' if b >= 0 else '-'} {abs(b):.3f}"


def _num(v, fmt=".3f") -> str:
    return "n/a" if v is None or v != v else format(v, fmt)


def _draw_fig4(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import numpy as np

    from fullscale import evaluate as ev
    from fullscale import tasks
    from reports import style

    runs = [r for r in all_runs(inputs) if r["points"] is not None]
    if not runs:
        return []
    fig, axes = plt.subplots(1, len(runs), figsize=(3.9 * len(runs), 3.9), squeeze=False)
    for ax, run in zip(axes[0], runs):
        task, e, cfg = run["task"], run["eval"], run["config"]
        g = tasks.rule_slope(task)
        # the evaluator's ceiling: training images of this run, re-rendered (deterministic) and measured
        train_imgs, _ = tasks.render(task, min(int(cfg.get("n_train", 1000)), 1000), size=int(cfg.get("image_size", 32)),
                                     seed=int(cfg.get("data_seed", 0)))
        tt = ev.extract(task, train_imgs)
        ok = tt.parsed.to_numpy(dtype=bool)
        ax.scatter(tt.rule_x[ok], tt.rule_y[ok], s=3, color=style.COLORS["train"], alpha=0.25, rasterized=True,
                   label="training images")
        p = run["points"]
        parsed = p.parsed.to_numpy(dtype=bool)
        good = parsed & p.coarse_ok.to_numpy(dtype=bool, na_value=False)
        bad = parsed & ~good
        ax.scatter(p.rule_x[good], p.rule_y[good], s=5, color=style.TASK_COLORS[task], alpha=0.6, rasterized=True,
                   label="generated")
        if bad.any():
            ax.scatter(p.rule_x[bad], p.rule_y[bad], s=12, marker="x", color="black", label="coarse violation")
        xs = np.concatenate([tt.rule_x[ok].to_numpy(), p.rule_x[parsed].to_numpy()])
        grid = np.linspace(0, np.nanmax(xs) * 1.05 if xs.size else 1, 50)
        ax.plot(grid, g * grid, ls="--", color=style.COLORS["truth"], lw=1.2, label=f"rule y = {g:.3g}x")
        if e.get("slope") is not None:
            ax.plot(grid, e["slope"] * grid + e["intercept"], color="black", lw=1.0, label="OLS fit (generated)")
        train = e.get("train") or {}
        ax.text(0.03, 0.97,
                f"generated: {_fit(e.get('slope'), e.get('intercept'))}, R² {_num(e.get('r2'), '.2f')}\n"
                f"parsed {e.get('parsed')}/{e.get('n')}; ceiling R² {_num(train.get('r2'), '.2f')}\n"
                f"paper (U-Net, GPU): R² {PAPER_R2[task]:.2f}",
                transform=ax.transAxes, va="top", fontsize=7.5, bbox=dict(fc="white", ec="0.8", alpha=0.9))
        ax.set_title(label(run), fontsize=9)
        ax.set_xlabel("rule_x")
    axes[0][0].set_ylabel("rule_y")
    axes[0][0].legend(loc="lower right", fontsize=6.5)
    fig.suptitle("Fine rule in generated images (Figure 4 analogue)", y=1.02)
    return [style.save(fig, out_dir / "ddpm_fig4.png")]


def _draw_table1(inputs: dict, out_dir: Path) -> list[Path]:
    import pandas as pd

    from dmrules.core.results import write_text
    from reports import style

    rows = []
    for run in all_runs(inputs):
        s, e = run["summary"], run["eval"]
        train = e.get("train") or {}
        n, parsed = e.get("n") or 0, e.get("parsed") or 0
        cvr = e.get("coarse_violation_rate")
        rows.append({
            "task": run["task"], "model": run["model"], "preset": run["preset"],
            "device": str(s.get("device", "?")).split(" (")[0],
            "images seen (paper)": "{:.2f} M ({:.1f} M)".format(*(x / 1e6 for x in budget(run))),
            "samples": f"{n} ({s.get('sampler')} {int(s.get('sample_steps', 0))})",
            "parsed %": _num(100 * parsed / n if n else None, ".1f"),
            "coarse violations %": _num(None if cvr is None else 100 * cvr, ".2f"),
            "fit (generated)": _fit(e.get("slope"), e.get("intercept")),
            "R² generated": _num(e.get("r2"), ".3f"),
            "R² ceiling (training images)": _num(train.get("r2"), ".3f"),
            "R² paper": f"{PAPER_R2[run['task']]:.2f}",
            "conforming %": _num(e.get("conform_pct"), ".1f"),
            "train / sample s": f"{_num(s.get('train_s'), '.0f')} / {_num(s.get('sample_s'), '.0f')}",
        })
    if not rows:
        return []
    text = style.markdown_table(pd.DataFrame(rows))
    text += ("\nCoarse violations: share of parsed generated images breaking the coarse rule (A: sun and shadow on "
             "the same side; B: far rectangle not shorter; C: circles of equal size; D: upper square not smaller). "
             "The paper reports near-zero coarse violations for B-D (0 cases) and does not give A's count "
             "(protocol Sec. 4.3). R² is the OLS fit of rule_y on rule_x over parsed generated images; the ceiling "
             "is the same metric on the run's training images. The cpu preset uses the small U-Net, 2000 training "
             "images and DDIM sampling (docs/ddpm.md); GPU rows follow the paper protocol with a batch of 256.\n")
    return [write_text(out_dir / "ddpm_table1.md", text)]


def _paper_vs_ours(inputs: dict) -> list[dict]:
    """Per run: the fine-rule fit, the conforming % and the coarse violations beside the paper's."""
    from reports.reference import row

    rows = []
    for run in all_runs(inputs):
        t, e = run["task"], run["eval"]
        paper_scale = run["preset"] == "paper" and run["model"] == "unet"
        seen, paper_images = budget(run)
        where = f"{run['model']}, {run['preset']} preset" + (
            f", {seen / 1e6:.2f} M of the paper's {paper_images / 1e6:.1f} M images" if paper_scale and seen < paper_images else "")
        why = ("" if paper_scale else f"{run['preset']} preset: {run['model']} trained on {seen / 1e3:.0f} k images "
               "(the paper: a 23 M-parameter U-Net, 1.6 M images on Task A); not comparable in size")
        if e.get("r2") is not None:
            ok = abs(e["r2"] - PAPER_R2[t]) <= 0.1 if paper_scale else None
            r2_why = why
            if paper_scale and not ok:
                # our own reading (issue 5, docs/tasks.md): the authors' evaluator caps R2 at 0.82-0.93 on exact
                # renders at 32 px and parses 11-93 % of them; ours parses >= 97 % of training images at R2 >= 0.998
                r2_why = ("higher than the paper: measured with our sub-pixel evaluator (ceiling R² "
                          f"{(e.get('train') or {}).get('r2', float('nan')):.3f} on training images), whereas the "
                          "authors' evaluator caps R² at 0.82-0.93 on exact renders at 32 px; the fine rule is still "
                          "not learned exactly (R² below the ceiling, slope off the rule, conforming % below training)")
            rows.append(row(f"rules.gen_fit.{t}", f"{_fit(e['slope'], e['intercept'])}, R² {e['r2']:.3f} "
                            f"({e.get('n_fit', e.get('parsed'))} points; {where})", r2_why, ok))
        if e.get("conform_pct") is not None:
            rows.append(row(f"rules.conform_gen.{t}", f"{e['conform_pct']:.1f} % ({where})", why, None))
        cvr = e.get("coarse_violation_rate")
        if cvr is not None:
            ok = (cvr <= 0.02) if paper_scale else None
            rows.append(row(f"rules.coarse.{t}", f"{100 * cvr:.2f} % of {e.get('parsed')} parsed ({where})", why, ok))
    return rows


FIGURES = [
    Figure(
        name="ddpm_fig4",
        title="Generated images and the fine rule (Figure 4 analogue)",
        caption="Per task and model: rule_x vs rule_y of generated images measured from pixels, the OLS fit with R², "
                "the ground-truth rule (dashed) and, in grey, the run's training images measured the same way "
                "(the evaluator's ceiling). Task A on CPU comes from `make figures`; GPU rows appear once the paper "
                "runs are committed under reports/results/ddpm_paper/.",
        needs=(CPU_RUN,),
        draw=_draw_fig4,
        section="rules-ddpm",
        paper_vs_ours=_paper_vs_ours,
        reproduces=("rules:fig4",),
    ),
    Figure(
        name="ddpm_table1",
        title="Coarse and fine rules in generated images (Table 1 analogue)",
        caption="One row per run. Read R² against the ceiling column (same evaluator, training images).",
        needs=(CPU_RUN,),
        draw=_draw_table1,
        section="rules-ddpm",
        reproduces=("rules:table1",),
    ),
]
