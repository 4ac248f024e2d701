"""Task gallery: training images next to generated ones, per run (cpu preset and committed GPU runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reports.figures.ddpm_runs import CPU_RUN, all_runs, label
from reports.pipeline import Figure


def _grid(images: np.ndarray, ncol: int = 6, nrow: int = 3, gap: int = 1) -> np.ndarray:
    h, w = images.shape[1:3]
    canvas = np.full((nrow * (h + gap) - gap, ncol * (w + gap) - gap, 3), 255, np.uint8)
    for i, img in enumerate(images[: ncol * nrow]):
        r, c = divmod(i, ncol)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    return canvas


def _draw(inputs: dict, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from fullscale import tasks
    from reports import style

    runs = [r for r in all_runs(inputs) if r["preview"] is not None]
    if not runs:
        return []
    fig, axes = plt.subplots(len(runs), 2, figsize=(8, 2.1 * len(runs)), squeeze=False)
    for row, run in zip(axes, runs):
        cfg = run["config"]
        train, _ = tasks.render(run["task"], 18, size=int(cfg.get("image_size", 32)), seed=int(cfg.get("data_seed", 0)))
        for ax, imgs, what in ((row[0], train, "training"), (row[1], run["preview"], "generated")):
            ax.imshow(_grid(imgs), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label(run)}: {what}", fontsize=8)
    fig.suptitle("Training vs generated images", y=1.0)
    fig.tight_layout()
    return [style.save(fig, out_dir / "ddpm_gallery.png")]


FIGURES = [
    Figure(
        name="ddpm_gallery",
        title="Training vs generated images per task",
        caption="Left: training images (re-rendered with the run's data seed). Right: the first generated samples "
                "(seeds 0, 1, ...) of each run, at 32 px.",
        needs=(CPU_RUN,),
        draw=_draw,
        section="rules-ddpm",
    ),
]
