"""One look for every figure: seaborn theme, palettes, and an atomic ``save``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from dmrules import results as R  # noqa: E402

# Fixed colours so a concept has the same colour in every figure.
COLORS = {
    "diffusion": "#1f77b4",
    "classification": "#d62728",
    "signal": "#2ca02c",
    "noise": "#9467bd",
    "patchwise": "#ff7f0e",
    "joint": "#17becf",
    "bound": "#000000",
    "train": "#7f7f7f",
    "generated": "#1f77b4",
    "truth": "#d62728",
}
TASK_COLORS = {"A": "#4c72b0", "B": "#dd8452", "C": "#55a868", "D": "#c44e52"}


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "axes.titleweight": "bold"})


def save(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically (PNG) and close it."""
    path = Path(path)
    with R.atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def markdown_table(df, floatfmt: str = ".3g") -> str:
    """A small pandas -> GitHub markdown table (no extra dependency)."""
    cols = list(df.columns)
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    rows = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join(rows) + "\n"


setup()
