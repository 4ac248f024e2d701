"""Tasks A-D of the rules paper (arXiv 2502.04725): scenes, ground truth, contrastive and violating sets.

    images, features = render("A", 4000, size=32, seed=0)

``images`` is uint8 [n, size, size, 3] (RGB), ``features`` a DataFrame with one row per image: the
task's features (lengths as fractions of the image width, y measured up from the bottom edge),
``rule_x`` and ``rule_y`` (so ``rule_y == rule_slope(task) * rule_x`` holds exactly for conforming
images), ``coarse_ok`` and, for contrastive sets, ``label`` in {0, 1, 2} (1 = conforming).
Geometry per task: the module docstrings of ``task_a`` ... ``task_d`` and docs/tasks.md.

Imports only numpy and pandas (no torch, no OpenCV): ``dmrules data`` starts fast.
"""

from __future__ import annotations

import numpy as np

from . import task_a, task_b, task_c, task_d
from .dataset import load_dataset, save_dataset
from .raster import FAMILIES, S, composite

TASKS = ("A", "B", "C", "D")
PAPER_TRAIN_SIZE = {"A": 4000, "B": 2000, "C": 2000, "D": 2000}
MODULES = {"A": task_a, "B": task_b, "C": task_c, "D": task_d}

__all__ = ["TASKS", "PAPER_TRAIN_SIZE", "FAMILIES", "S", "render", "rule_slope", "check_task",
           "position_features", "object_names", "save_dataset", "load_dataset"]


def check_task(task) -> str:
    """The canonical task letter, or ``ValueError`` with the valid choices."""
    name = str(task).strip().upper()
    if name not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
    return name


def rule_slope(task) -> float:
    """The fine rule's slope g in (rule_x, rule_y): A 1, B 1, C sqrt(2), D 1.5."""
    return float(MODULES[check_task(task)].RULE_SLOPE)


def position_features(task) -> tuple:
    """Feature columns describing an image's geometry (used by the memorisation check)."""
    return tuple(MODULES[check_task(task)].POSITION_FEATURES)


def object_names(task) -> tuple:
    """The task's objects, in the order their colour columns ``<object>_r/_g/_b`` appear."""
    return tuple(MODULES[check_task(task)].OBJECTS)


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        span = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {span}, got {value}")
    return int(value)


def render(task, n: int, size: int = 32, seed: int = 0, *, contrastive: bool = False, violate: bool = False):
    """Render ``n`` images of a task: ``(images uint8 [n, size, size, 3], features DataFrame)``.

    Deterministic: the same arguments give the same bytes. ``contrastive`` gives the ternary set
    (column ``label``: 1 conforming, 0 and 2 deviating in opposite directions); ``violate`` breaks
    the coarse rule in every image (``coarse_ok`` False).
    """
    import pandas as pd

    task = check_task(task)
    n = _check_int("n", n, 1)
    size = _check_int("size", size, 8, 4096)
    seed = _check_int("seed", seed, 0)
    if contrastive and violate:
        raise ValueError("choose either contrastive or violate, not both")
    variant = 1 if contrastive else 2 if violate else 0
    # independent streams per (seed, task, variant): the contrastive set of seed 0 shares no draws
    # with the training set of seed 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, TASKS.index(task), variant]))
    shapes, features, labels = MODULES[task].sample(rng, n, contrastive=contrastive, violate=violate)
    images = composite(shapes, n, size)
    df = pd.DataFrame(features)
    if labels is not None:
        df["label"] = labels.astype(np.int64)
    df["coarse_ok"] = df["coarse_ok"].astype(bool)
    return images, df
