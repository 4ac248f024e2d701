"""The held-out band (issue 14, Sec. 3): `dmrules data --holdout NAME:LO:HI` removes exactly the band."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dmrules.cli import main
from fullscale import tasks
from fullscale.tasks import holdout


@pytest.mark.parametrize("task", tasks.TASKS)
def test_every_task_declares_a_free_variable_the_evaluator_measures(task):
    from fullscale.evaluate import extract

    name = holdout.free_variable(task)
    images, feats = tasks.render(task, 8, seed=3)
    assert name in feats.columns and name in tasks.position_features(task)
    measured = extract(task, images)
    assert name in measured.columns
    ok = measured["parsed"].to_numpy(bool)
    assert np.allclose(measured.loc[ok, name], feats.loc[ok, name], atol=0.02)


def test_apply_removes_exactly_the_band_and_nothing_else():
    images, feats = tasks.render("C", 300, seed=1)
    band = holdout.parse_band("r1:0.09:0.11", "C")
    kept_imgs, kept, info = holdout.apply(images, feats, band)
    inside = (feats["r1"] >= 0.09) & (feats["r1"] < 0.11)
    assert 0 < inside.sum() < 300  # the band is neither empty nor everything
    assert info == {"band": {"name": "r1", "lo": 0.09, "hi": 0.11}, "n_rendered": 300,
                    "n_dropped": int(inside.sum()), "n_kept": int((~inside).sum())}
    np.testing.assert_array_equal(kept_imgs, images[~inside.to_numpy()])
    assert kept.equals(feats[~inside].reset_index(drop=True))
    assert not band.contains(kept["r1"]).any()


def test_parse_band_resolves_free_and_rejects_bad_input():
    assert holdout.parse_band("free:0.35:0.45", "A") == holdout.Band("sun_x", 0.35, 0.45)
    for bad in ("r1:0.2:0.1", "r1:0.1", "r1:a:b", ":0:1", "r1:nan:1", "sun_x:0:1"):
        with pytest.raises(ValueError):
            holdout.parse_band(bad, "C")
    images, feats = tasks.render("C", 20, seed=0)
    with pytest.raises(ValueError, match="every image"):
        holdout.apply(images, feats, holdout.Band("r1", 0.0, 1.0))


def test_cli_holdout_writes_the_kept_set_and_refuses_a_mismatch(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["data", "--task", "C", "--n", "120", "--seed", "2", "--holdout", "r1:0.09:0.11",
                 "--out", str(out)]) == 0
    imgs, feats, meta = tasks.load_dataset(out)
    ref_imgs, ref = tasks.render("C", 120, seed=2)
    keep = ~((ref["r1"] >= 0.09) & (ref["r1"] < 0.11)).to_numpy()
    np.testing.assert_array_equal(imgs, ref_imgs[keep])
    assert meta["holdout"] == "r1:0.09:0.11" and meta["holdout_info"]["n_kept"] == keep.sum()
    # meta n is the request (rendered n): it identifies the set for the skip check
    assert json.loads((out / "meta.json").read_text())["n"] == 120 and len(imgs) == int(keep.sum())
    # the same command skips; without the band (another data set) it is refused with exit 2
    assert main(["data", "--task", "C", "--n", "120", "--seed", "2", "--holdout", "r1:0.09:0.11",
                 "--out", str(out)]) == 0
    assert main(["data", "--task", "C", "--n", "120", "--seed", "2", "--out", str(out)]) == 2
    capsys.readouterr()
    assert main(["data", "--task", "C", "--n", "50", "--holdout", "sun_x:0:1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no feature 'sun_x'" in err[0]
