"""Examples of violations (rules paper Figures 9 and 10) and of rule-exact samples, per DDPM run.

Per run, three panels picked by ``fullscale.evaluate.examples`` from the evaluator's per-sample table:
coarse violations (wrong layout), the worst fine violations among samples with the right layout
(largest |rule_y - g rule_x|), and rule-exact samples (within 1 % of the rule) for contrast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports.figures.ddpm_gallery import _grid
from reports.figures.ddpm_runs import CPU_RUN, all_runs, label
from reports.pipeline import Figure

TITLES = {"coarse": "coarse violations (Fig. 9)", "fine": "worst fine violations (Fig. 10)",
          "exact": "rule-exact (|error| <= 1 %)"}


def _counts(run: dict) -> dict[str, str]:
    """'k of N' per group, from the run's full per-sample table when there is one."""
    pts = run.get("points")
    if pts is None:
        return {}
    from fullscale.evaluate import examples

    parsed = pts["parsed"].to_numpy(dtype=bool)
    ok = pts["coarse_ok"].to_numpy(dtype=float, na_value=np.nan)
    err = np.abs(examples.relative_error(run["task"], pts))
    n = int(parsed.sum())
    return {"coarse": f"{int((parsed & (ok == 0)).sum())} of {n} parsed",
            "fine": f"of {int((parsed & (ok == 1)).sum())} with the right layout",
            "exact": f"{int((parsed & (ok == 1) & (err <= examples.EXACT_TOL)).sum())} of {n} parsed"}


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from reports import style

    runs = [r for r in all_runs(inputs) if r.get("examples")]
    if not runs:
        return []
    fig, axes = plt.subplots(len(runs), 3, figsize=(11, 1.9 * len(runs) + 0.4), squeeze=False)
    for row, run in zip(axes, runs):
        counts = _counts(run)
        for ax, group in zip(row, ("coarse", "fine", "exact")):
            ex = run["examples"][group]
            ax.set_xticks([])
            ax.set_yticks([])
            if len(ex["images"]):
                ax.imshow(_grid(np.asarray(ex["images"]), ncol=6, nrow=2), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes, color="0.4")
            extra = ""
            if group == "fine" and len(ex["residual"]):
                r = np.abs(ex["residual"])
                extra = f"\n|rule_y - g rule_x| {r.min():.3f}-{r.max():.3f}"
            ax.set_title(f"{TITLES[group]}: {counts.get(group, '')}{extra}", fontsize=7.5)
        row[0].set_ylabel(label(run), fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle("What the DDPMs get wrong: coarse and fine rule violations, next to rule-exact samples", y=1.0)
    fig.tight_layout()
    return [style.save(fig, out_dir / "ddpm_violations.png")]


FIGURES = [
    Figure(
        name="ddpm_violations",
        title="Violation examples (rules paper Figures 9 and 10)",
        caption="Left: generated samples with the wrong layout (the coarse rule broken, e.g. sun and shadow on the "
                "same side in Task A). Middle: samples with the right layout whose rule_y is farthest from "
                "g rule_x (fine-rule violations: the shadow length or size ratio is off). Right: samples within "
                "1 % of the rule. Picked from each run's evaluated samples by `dmrules run` (examples.npz, "
                "exported with the run's other result files).",
        needs=(CPU_RUN,),
        draw=_draw,
        section="rules-ddpm",
        reproduces=("rules:fig9", "rules:fig10"),
    ),
]
