"""One look for every figure: seaborn theme, palettes, sizes, and an atomic ``save``.

Conventions (docs/reports.md): one colour per concept (:data:`COLORS`, :data:`TASK_COLORS`), figures
:data:`WIDTH` inches wide (a row of panels) at 150 dpi, the papers' reported values drawn with
:func:`paper_marker` and fitted or theoretical lines annotated with :func:`textbox`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from dmrules.core import results as R  # noqa: E402

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
    # added by the reports issue: keep a concept's colour the same in every figure
    "theory": "#000000",
    "paper": "#444444",  # the paper's reported value (see paper_marker)
    "ceiling": "#bbbbbb",  # the evaluator on training images
    "unguided": "#1f77b4",
    "guided": "#e377c2",
    "filtered": "#bcbd22",
    "conforming": "#2ca02c",
    "violation": "#000000",
    "memorised": "#8c564b",
}


class _TaskColors(dict):
    """Task -> colour, as each task module declares it (``COLOR``); a task registered later is looked up."""

    def __missing__(self, task):
        from fullscale.tasks import registry

        return registry.get(task).color


def _task_colors() -> _TaskColors:
    from fullscale.tasks import registry

    return _TaskColors({t: registry.get(t).color for t in registry.names()})


TASK_COLORS = _task_colors()  # A "#4c72b0", B "#dd8452", C "#55a868", D "#c44e52"
WIDTH = 11.0  # inches: a full-width figure (one row of 2-4 panels)
PANEL_HEIGHT = 3.6  # inches per row of panels


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "axes.titleweight": "bold"})


def subplots(nrows: int = 1, ncols: int = 1, width: float = WIDTH, height: float | None = None, **kw):
    """``plt.subplots`` at the house size: ``width`` wide, :data:`PANEL_HEIGHT` per row."""
    kw.setdefault("squeeze", False)
    return plt.subplots(nrows, ncols, figsize=(width, height or PANEL_HEIGHT * nrows), **kw)


def paper_marker(ax, x, y, label: str | None = "paper", **kw):
    """The paper's reported value(s): a hollow star, the same in every figure."""
    style = dict(marker="*", s=140, facecolors="none", edgecolors=COLORS["paper"], linewidths=1.2, zorder=5)
    style.update(kw)
    return ax.scatter(x, y, label=label, **style)


def textbox(ax, text: str, loc: str = "upper left", fontsize: float = 7.5):
    """A small white box of numbers (fit, R², paper value) in a corner of the axes."""
    x = 0.03 if "left" in loc else 0.97
    y = 0.97 if "upper" in loc else 0.03
    return ax.text(x, y, text, transform=ax.transAxes, fontsize=fontsize, va="top" if "upper" in loc else "bottom",
                   ha="left" if "left" in loc else "right", bbox=dict(fc="white", ec="0.8", alpha=0.9))


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

    def fmt(v) -> str:
        text = format(v, floatfmt) if isinstance(v, float) else str(v)
        return text.replace("|", "\\|").replace("\n", " ")

    rows = ["| " + " | ".join(fmt(str(c)) for c in cols) + " |", "|" + "---|" * len(cols)]  # headers escaped too
    rows += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join(rows) + "\n"


setup()
