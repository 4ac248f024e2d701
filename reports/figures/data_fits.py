"""Training-data fits per task (the training row of the rules paper's Figure 4) and the evaluator's
ceiling at 32 and 64 px, beside the numbers the authors' notebooks printed (protocol Sec. 4.1, 4.2).

The data sets come from ``dmrules data``; the points are measured from their pixels by
``fullscale.evaluate`` (a few seconds per task; nothing is trained).
"""

from __future__ import annotations

import functools
from pathlib import Path

from fullscale.tasks import registry
from reports.pipeline import Figure, Result

TASKS = tuple(registry.BUILTIN)  # the paper's tasks (their numbers are compared below); the registry's A-D
SIZES = {t: registry.get(t).paper_n for t in TASKS}  # the paper's training-set sizes
DATA32 = {t: Result(f"data_{t}_32", {"default": ["data", "--task", t, "--n", str(SIZES[t]), "--seed", "0"]}, suffix="")
          for t in TASKS}
DATA64 = {t: Result(f"data_{t}_64", {"default": ["data", "--task", t, "--n", "1000", "--size", "64", "--seed", "0"]},
                    suffix="") for t in TASKS}

# protocol Sec. 4.1 / 4.2 (the authors' notebook outputs) and Sec. 3.5b (their evaluator run on exact
# rule-conforming 32 px renders, measured for the issue)
PAPER = {
    "A": {"fit": "y = 1.09x - 0.00", "r2": 0.99, "conform": 95.02, "their_eval_32": "R2 0.93, 93 % parsed"},
    "B": {"fit": "y = 1.00x + 0.00", "r2": 1.00, "conform": 97.22, "their_eval_32": "R2 0.93, 31 % parsed"},
    "C": {"fit": "y = 1.41x - 0.00", "r2": 1.00, "conform": 99.51, "their_eval_32": "R2 0.92, 11 % parsed"},
    "D": {"fit": "y = 1.50x - 0.00", "r2": 1.00, "conform": 98.63, "their_eval_32": "R2 0.82, 38 % parsed"},
}


@functools.lru_cache(maxsize=16)  # draw and paper_vs_ours measure the same data sets in one run
def _measure(path):
    from fullscale import evaluate as ev
    from fullscale import tasks

    images, _, meta = tasks.load_dataset(path)
    table = ev.extract(meta["task"], images)
    return table, ev.summarize(meta["task"], table)


def _fit_text(res) -> str:
    b = res["intercept"]
    return f"y = {res['slope']:.3f}x {'+' if b >= 0 else '-'} {abs(b):.4f}"


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from dmrules.core.results import write_text
    from fullscale import tasks
    from reports import style

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.9))
    rows = []
    for ax, task in zip(axes, TASKS):
        table, res = _measure(inputs[DATA32[task].key])
        _, res64 = _measure(inputs[DATA64[task].key])
        ok = table.parsed.to_numpy()
        x, y = table.rule_x[ok].to_numpy(), table.rule_y[ok].to_numpy()
        g = tasks.rule_slope(task)
        ax.scatter(x, y, s=3, alpha=0.35, color=style.TASK_COLORS[task], rasterized=True, label="training images")
        grid = np.linspace(0, x.max() * 1.02, 50)
        ax.plot(grid, g * grid, color=style.COLORS["truth"], lw=1.2, ls="--", label=f"rule y = {g:.3g}x")
        ax.plot(grid, res["slope"] * grid + res["intercept"], color="black", lw=0.9, label="OLS fit")
        ax.set_title(f"Task {task}")
        ax.set_xlabel("rule_x")
        ax.text(0.03, 0.97, f"ours: {_fit_text(res)}\nR² = {res['r2']:.4f}, parsed {100 * res['parsed'] / res['n']:.1f} %"
                f"\npaper: {PAPER[task]['fit']}, R² = {PAPER[task]['r2']:.2f}",
                transform=ax.transAxes, va="top", fontsize=7.5, bbox=dict(fc="white", ec="0.8", alpha=0.9))
        rows.append({
            "task": task,
            "paper: training fit": f"{PAPER[task]['fit']}, R² {PAPER[task]['r2']:.2f}",
            "paper: conforming %": f"{PAPER[task]['conform']:.2f}",
            "authors' evaluator, exact 32 px renders": PAPER[task]["their_eval_32"],
            "ours 32 px: fit": f"{_fit_text(res)}, R² {res['r2']:.4f}",
            "ours 32 px: parsed %": f"{100 * res['parsed'] / res['n']:.1f} of {res['n']}",
            "ours 32 px: conforming %": f"{res['conform_pct']:.2f}",
            "ours 64 px: fit": f"{_fit_text(res64)}, R² {res64['r2']:.4f}",
            "ours 64 px: parsed %": f"{100 * res64['parsed'] / res64['n']:.1f} of {res64['n']}",
        })
    axes[0].set_ylabel("rule_y")
    axes[0].legend(loc="lower right", fontsize=7)
    fig.suptitle("Training data measured from pixels (32 px): the fine rule and the evaluator's ceiling", y=1.02)
    files = [style.save(fig, out_dir / "data_fits.png")]
    text = style.markdown_table(pd.DataFrame(rows))
    text += ("\nA: rule_x = l1 h2, rule_y = l2 h1; B: x1 h1 vs x2 h2; C: radii r1 (warm) vs r2 (cool); D: sides l1 "
             "(upper) vs l2 (lower); lengths in fractions of the image width. The paper's Task A slope 1.09 comes "
             "from its evaluator measuring the pole-top-to-shadow-tail height, which includes the shadow's "
             "thickness (protocol Sec. 3.5b); ours measures the pole. Parse failures are Task A shadows and Task B "
             "far rectangles thinner than about 0.3 px (near-invisible at 32 px).\n")
    files.append(write_text(out_dir / "data_fits.md", text))
    return files


def _paper_vs_ours(inputs: dict) -> list[dict]:
    """Training-data fits and conforming % beside the authors' printed numbers (reports.reference)."""
    from reports.reference import REFERENCE, row

    rows = []
    for task in TASKS:
        _, res = _measure(inputs[DATA32[task].key])
        paper = REFERENCE[f"rules.train_fit.{task}"].values
        paper_slope, paper_r2 = paper["slope"], paper["r2"]
        ok = abs(res["slope"] - paper_slope) <= 0.03 and abs(res["r2"] - paper_r2) <= 0.02
        note = "" if ok else ("their evaluator measures the pole-top-to-shadow-tail height, which includes the "
                              "shadow's thickness (protocol Sec. 3.5b); ours measures the pole")
        rows.append(row(f"rules.train_fit.{task}", f"{_fit_text(res)}, R² {res['r2']:.4f} (32 px)", note, ok))
        paper_pct = REFERENCE[f"rules.conform_train.{task}"].value
        ok = abs(res["conform_pct"] - paper_pct) <= 2.0
        note = "" if ok else ("ours measures exact renders at 32 px with sub-pixel features; the authors' numbers come "
                              "from their colour-threshold evaluator on their PNGs, whose measurement error moves "
                              "points out of the 0.05 bin")
        rows.append(row(f"rules.conform_train.{task}", f"{res['conform_pct']:.2f} %", note, ok))
        rows.append(row(f"rules.authors_eval_exact.{task}",
                        f"R² {res['r2']:.4f}, {100 * res['parsed'] / res['n']:.1f} % parsed (our evaluator)",
                        "different evaluators on the same kind of images: ours is the ceiling that generated images "
                        "are read against here", None))
    return rows


FIGURES = [
    Figure(
        name="data_fits",
        title="Training-data fits per task (Figure 4, training row) and the evaluator's ceiling",
        caption="Each point is one training image, measured from its pixels by `fullscale.evaluate` "
                "(`dmrules evaluate`). The fit is OLS of rule_y on rule_x over all parsed images, no trimming. "
                "R² on generated images should be read against these ceilings at the same resolution.",
        needs=tuple(DATA32.values()) + tuple(DATA64.values()),
        draw=_draw,
        section="rules-data",
        paper_vs_ours=_paper_vs_ours,
        reproduces=("rules:fig4",),
    ),
]
