"""Picking violation examples (Figures 9/10) from evaluated samples."""

import numpy as np
import pandas as pd
import pytest

from fullscale import evaluate, tasks
from fullscale.evaluate import examples


def _points(task="A"):
    g = tasks.rule_slope(task)
    x = np.array([0.05, 0.05, 0.05, 0.10, 0.10, np.nan])
    y = np.array([0.05 * g, 0.05 * g * 1.005, 0.02, 0.10 * g + 0.03, 0.10 * g, np.nan])
    return pd.DataFrame({"parsed": [True, True, True, True, True, False], "rule_x": x, "rule_y": y,
                         "coarse_ok": pd.array([True, True, True, False, True, pd.NA], dtype="boolean")})


def test_groups_are_picked_by_their_definitions():
    picks = examples.select_examples("A", _points(), k=10)
    assert picks["coarse"].tolist() == [3]                 # parsed with coarse_ok False
    assert picks["fine"].tolist()[0] == 2                  # largest |rule_y - g rule_x| among coarse_ok
    assert set(picks["fine"].tolist()) == {0, 1, 2, 4}     # never the coarse violator or unparsed row
    assert picks["exact"].tolist() == [0, 4, 1]            # within 1 %, closest first (stable)


def test_round_trip_on_real_renders(tmp_path):
    images, _ = tasks.render("A", 40, seed=3)
    points = evaluate.extract("A", images)
    path = examples.save_examples(tmp_path / "ex.npz", "A", points, images, k=5)
    got = examples.load_examples(path)
    assert set(got) == set(examples.GROUPS)
    assert len(got["coarse"]["index"]) == 0                # the training law never breaks the coarse rule
    idx = got["fine"]["index"]
    assert 0 < len(idx) <= 5 and np.array_equal(got["fine"]["images"], images[idx])


def test_mismatched_lengths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="evaluated rows"):
        examples.save_examples(tmp_path / "x.npz", "A", _points(), np.zeros((2, 32, 32, 3), np.uint8))
