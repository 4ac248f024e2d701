"""Tasks A-D of the rules paper (arXiv 2502.04725): scenes, ground truth, contrastive and violating sets.

    images, features = render("A", 4000, size=32, seed=0)

``images`` is uint8 [n, size, size, 3] (RGB), ``features`` a DataFrame with one row per image: the
task's features (lengths as fractions of the image width, y measured up from the bottom edge),
``rule_x`` and ``rule_y`` (so ``rule_y == rule_slope(task) * rule_x`` holds exactly for conforming
images), ``coarse_ok`` and, for contrastive sets, ``label`` in {0, 1, 2} (1 = conforming).
Geometry per task: the module docstrings of ``task_a`` ... ``task_d`` and docs/tasks.md.

The tasks are listed once, in :mod:`fullscale.tasks.registry` (each task module declares its
renderer, evaluator hooks, rule g, coarse rule, paper constants, colour and free variable);
``TASKS``, ``PAPER_TRAIN_SIZE`` and ``MODULES`` here are read from it. A task's data stream is
``SeedSequence([seed, stream_id, variant])`` with the id the task declares (A-D: their historical
0..3), or a stable hash of its name: never its position in a list (docs/tasks.md).

Importing this package is cheap (the registry is standard library only; numpy, the renderer and
the task modules load on first use), so the CLI can read its ``--task`` choices at start-up.
"""

from __future__ import annotations

from . import registry

__all__ = ["TASKS", "PAPER_TRAIN_SIZE", "FAMILIES", "S", "render", "rule_slope", "check_task",
           "position_features", "object_names", "save_dataset", "load_dataset", "registry"]

_LAZY = {"FAMILIES": "raster", "S": "raster", "composite": "raster", "save_dataset": "dataset",
         "load_dataset": "dataset"}


def __getattr__(name):  # PEP 562: the registry's views, and the renderer's names on first use
    if name == "TASKS":
        return registry.names()
    if name == "PAPER_TRAIN_SIZE":
        return {k: registry.get(k).paper_n for k in registry.names()}
    if name == "MODULES":
        return {k: registry.get(k).module for k in registry.names()}
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_task(task) -> str:
    """The canonical task name, or ``ValueError`` (one sentence) with the valid choices."""
    return registry.canonical(task)


def rule_slope(task) -> float:
    """The fine rule's slope g in (rule_x, rule_y): A 1, B 1, C sqrt(2), D 1.5."""
    return registry.get(task).rule_slope


def position_features(task) -> tuple:
    """Feature columns describing an image's geometry (used by the memorisation check)."""
    return tuple(registry.get(task).POSITION_FEATURES)


def object_names(task) -> tuple:
    """The task's objects, in the order their colour columns ``<object>_r/_g/_b`` appear."""
    return tuple(registry.get(task).OBJECTS)


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    import numpy as np

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
    import numpy as np
    import pandas as pd

    from .raster import composite

    spec = registry.get(task)
    n = _check_int("n", n, 1)
    size = _check_int("size", size, 8, 4096)
    seed = _check_int("seed", seed, 0)
    if contrastive and violate:
        raise ValueError("choose either contrastive or violate, not both")
    variant = 1 if contrastive else 2 if violate else 0
    # independent streams per (seed, task, variant): the contrastive set of seed 0 shares no draws
    # with the training set of seed 0. The task's id is the one it declares (A-D: 0..3, so their
    # data are what they always were) or a hash of its name: never its position in a list.
    rng = np.random.default_rng(np.random.SeedSequence([seed, spec.stream_id, variant]))
    shapes, features, labels = spec.sample(rng, n, contrastive=contrastive, violate=violate)
    images = composite(shapes, n, size)
    df = pd.DataFrame(features)
    if labels is not None:
        df["label"] = labels.astype(np.int64)
    df["coarse_ok"] = df["coarse_ok"].astype(bool)
    return images, df
