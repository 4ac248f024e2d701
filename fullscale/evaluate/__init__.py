"""Pixel-only evaluation of Tasks A-D: features, the rules paper's metrics, memorisation.

    from fullscale.evaluate import evaluate, extract, load_images
    result = evaluate("A", images, train_images=train)   # dict: n, parsed, slope, r2, conform_pct, ...
    table = extract("A", images)                          # one row per image

``images``: uint8 [N, H, W, 3], a list of images of any size, or ``load_images(path)`` (a data-set
directory, an ``.npy`` file or a folder of PNGs). Garbage never raises: unreadable, blank, noisy,
gray, tiny or non-square images are parse failures with a reason. Method: docs/tasks.md.

The authors' own evaluator (their notebook's pipelines, quirks included) is the second family:
``evaluate_paper(task, images, pipeline="gen" | "train")`` (docs/evaluate.md).
"""

from __future__ import annotations

from .features import OBJECTS, extract
from .images import ImageSet, load_images
from .memorise import THRESHOLDS, memorisation
from .metrics import conform_pct, fit_line, summarize
from .paper_protocol import RECIPES, Settings, evaluate_paper, extract_paper, load_paper_images, summarize_paper

__all__ = ["evaluate", "evaluate_tables", "extract", "load_images", "ImageSet", "summarize", "fit_line", "conform_pct",
           "memorisation", "THRESHOLDS", "OBJECTS", "CEILING_KEYS",
           # the rules-paper authors' own evaluator (docs/evaluate.md)
           "evaluate_paper", "extract_paper", "summarize_paper", "load_paper_images", "Settings", "RECIPES"]

CEILING_KEYS = ("n", "parsed", "parse_failure_rate", "coarse_violation_rate", "slope", "intercept", "r2",
                "conform_pct", "bias_error", "variance_error")


def evaluate(task, images, train_images=None, *, fit_on: str = "parsed", trim: float | None = None) -> dict:
    """The metrics of a set of images; with ``train_images`` also memorisation and the evaluator's
    ceiling (the same metrics on the training images, key ``train``).

    Keys: task, n, parsed, parse_failure_rate, coarse_violation_rate, n_fit, fit_on, trim, slope,
    intercept, r2, variance_error (residual std), conform_pct, bias_error (|a - g| + |b|),
    bias_error_paper (|a - 1| + |b|), sum_error, rule_slope (g), failure_reasons; undefined
    values are None.
    """
    from fullscale.tasks import check_task

    task = check_task(task)
    train_table = None if train_images is None else extract(task, train_images)
    return evaluate_tables(task, extract(task, images), train_table, fit_on=fit_on, trim=trim)


def evaluate_tables(task, table, train_table=None, *, fit_on: str = "parsed", trim: float | None = None) -> dict:
    """:func:`evaluate` on tables already made by :func:`extract`."""
    from fullscale.tasks import check_task

    task = check_task(task)
    result = summarize(task, table, fit_on=fit_on, trim=trim)
    if train_table is not None:
        train = summarize(task, train_table, fit_on=fit_on, trim=trim)
        result["train"] = {k: train[k] for k in CEILING_KEYS}
        result["memorisation"] = memorisation(task, table, train_table)
    return result
