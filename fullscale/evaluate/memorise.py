"""Memorisation check (rules-paper protocol Sec. 3.7): nearest-neighbour distances to the training set.

Both sets are measured by the same evaluator. Features (ours, in unit ranges so the two parts weigh
alike): the task's position features (fractions of the image width, ``fullscale.tasks.
position_features``) and those plus the objects' mean colours (RGB / 255). Distances are Euclidean,
divided by sqrt(2) as the authors divide by T sqrt(2). A sample is "memorised" at threshold t when
its distance is < t; the authors' sweep of t is kept. As the authors do, the rule-exact samples
(|rule_y / (g rule_x) - 1| <= 1 %) are reported on their own. Our addition: the same rates for
each training image against the other training images (``train_leave_one_out``): what a fresh
sample of the data law itself scores. Task A's geometry has two degrees of freedom, so with 4000
training images most fresh samples lie within 0.03 of one in position: that threshold alone
cannot tell memorisation from coverage.
"""

from __future__ import annotations

import numpy as np

THRESHOLDS = (0.0, 0.01, 0.03, 0.05, 0.08, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
RULE_EXACT_TOL = 0.01


def _features(task: str, df) -> tuple[np.ndarray, np.ndarray]:
    """Position features and position + colour features (RGB / 255) of each row."""
    from fullscale.tasks import object_names, position_features

    pos = df[list(position_features(task))].to_numpy(dtype=float)
    cols = [f"{o}_{c}" for o in object_names(task) for c in "rgb"]
    return pos, np.hstack([pos, df[cols].to_numpy(dtype=float) / 255.0])


def nearest_distances(gen: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of ``gen`` to its nearest row of ``train``, / sqrt(2)."""
    from scipy.spatial import cKDTree

    if len(gen) == 0 or len(train) == 0:
        return np.full(len(gen), np.nan)
    dist, _ = cKDTree(train).query(gen, k=1)
    return dist / np.sqrt(2.0)


def _loo_distances(train: np.ndarray) -> np.ndarray:
    """Distance of each training row to its nearest other training row, / sqrt(2)."""
    from scipy.spatial import cKDTree

    if len(train) < 2:
        return np.full(len(train), np.nan)
    dist, _ = cKDTree(train).query(train, k=2)
    return dist[:, 1] / np.sqrt(2.0)


def memorisation(task: str, gen_df, train_df, thresholds=THRESHOLDS) -> dict:
    """Fractions of generated samples within each distance threshold of a training image."""
    from fullscale.tasks import rule_slope

    gen = gen_df[gen_df["parsed"].to_numpy(dtype=bool)]
    train = train_df[train_df["parsed"].to_numpy(dtype=bool)]
    g_pos, g_all = _features(task, gen)
    t_pos, t_all = _features(task, train)
    d_pos = nearest_distances(g_pos, t_pos)
    d_all = nearest_distances(g_all, t_all)
    # null calibration (ours): a training image against the *other* training images -- the rate
    # at which fresh samples of the data law itself would count as "memorised"
    n_pos = _loo_distances(t_pos)
    n_all = _loo_distances(t_all)
    x, y = gen["rule_x"].to_numpy(dtype=float), gen["rule_y"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.abs(y / (rule_slope(task) * x) - 1.0) <= RULE_EXACT_TOL

    def rates(d):
        ok = len(d) and np.isfinite(d).all()
        return [float(np.mean(d < t)) if ok else None for t in thresholds]

    def median(d):
        return float(np.median(d)) if len(d) and np.isfinite(d).all() else None

    return {
        "thresholds": list(thresholds),
        "n": int(len(gen)),
        "n_train": int(len(train)),
        "position": rates(d_pos),
        "position_colour": rates(d_all),
        "median_distance_position": median(d_pos),
        "median_distance_position_colour": median(d_all),
        "train_leave_one_out": {"position": rates(n_pos), "position_colour": rates(n_all)},
        "rule_exact": {"n": int(exact.sum()), "position": rates(d_pos[exact]),
                       "position_colour": rates(d_all[exact])},
    }
