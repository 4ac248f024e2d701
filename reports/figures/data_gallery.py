"""A gallery of Tasks A-D: training images, the three contrastive classes and coarse violations, at
the 32 px the models see (rendered here with ``fullscale.tasks.render``: milliseconds, no training)."""

from __future__ import annotations

from pathlib import Path

from fullscale.tasks import registry
from reports.pipeline import Figure

TASKS = registry.names()  # the task registry (fullscale/tasks/registry.py)
N_TRAIN = 5
CAPTIONS = {
    "A": ("sun, pole, shadow", "short shadow", "long shadow", "sun's side"),
    "B": ("near / far rectangles", "far too tall", "far too short", "near shorter"),
    "C": ("tangent circles", "cool too big", "cool too small", "equal / swapped"),
    "D": ("upper / lower squares", "lower too big", "lower too small", "upper larger"),
}


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import numpy as np

    from fullscale import tasks
    from reports import style

    cols = N_TRAIN + 3 + 2
    fig, axes = plt.subplots(len(TASKS), cols, figsize=(cols * 1.25, len(TASKS) * 1.45))
    for r, task in enumerate(TASKS):
        # a task added through the registry: its title, and generic labels for the other columns
        caption = CAPTIONS.get(task, (registry.get(task).title, "class 0", "class 2", "violation"))
        train, _ = tasks.render(task, N_TRAIN, seed=100)
        con, cf = tasks.render(task, 30, seed=100, contrastive=True)
        bad, _ = tasks.render(task, 2, seed=100, violate=True)
        picks = [int(np.flatnonzero(cf.label.to_numpy() == k)[0]) for k in (1, 0, 2)]
        images = list(train) + [con[i] for i in picks] + list(bad)
        names = ["train"] * N_TRAIN + ["class 1 (rule)", "class 0", "class 2", "violation", "violation"]
        for c, (ax, img, name) in enumerate(zip(axes[r], images, names)):
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 or c >= N_TRAIN:
                ax.set_title(name, fontsize=7)
            if c == 0:
                ax.set_ylabel(f"Task {task}\n{caption[0]}", fontsize=8)
        axes[r, N_TRAIN + 1].set_xlabel(caption[1], fontsize=6.5)
        axes[r, N_TRAIN + 2].set_xlabel(caption[2], fontsize=6.5)
        axes[r, N_TRAIN + 3].set_xlabel(caption[3], fontsize=6.5)
    fig.subplots_adjust(wspace=0.08, hspace=0.45)
    return [style.save(fig, out_dir / "data_gallery.png")]


FIGURES = [
    Figure(
        name="data_gallery",
        title="Tasks A-D at 32 px: training images, contrastive classes, coarse violations",
        caption="`dmrules data --task T [--contrastive | --violate]`. Contrastive class 1 follows the fine rule; "
                "classes 0 and 2 leave it in opposite directions (Task A: short / long shadows; B-D: rule_y above / "
                "below g rule_x). Violations break the coarse rule (Task C alternates equal and swapped sizes).",
        needs=(),
        draw=_draw,
        section="rules-data",
    ),
]
