"""Stored samples (issue 11): the lossless PNG atlas every DDPM run keeps, and the run-folder loader."""

from __future__ import annotations

import numpy as np
import pytest

from fullscale import tasks
from fullscale.evaluate import stored


def test_atlas_round_trip_is_lossless(tmp_path):
    images, _ = tasks.render("C", 130, seed=3)  # 130: not a multiple of the 64 tiles per row
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 20, images.shape), 0, 255).astype(np.uint8)
    for arr in (images, noisy, images[:1]):
        path = stored.save_atlas(tmp_path / "s.png", arr)
        back = stored.load_atlas(path)
        assert back.dtype == np.uint8 and np.array_equal(back, arr)
    with pytest.raises(ValueError):
        stored.atlas_bytes(images[:0])
    from PIL import Image

    Image.fromarray(images[0]).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="not a dmrules sample atlas"):
        stored.load_atlas(tmp_path / "plain.png")
    (tmp_path / "bad.png").write_text("no")
    with pytest.raises(ValueError, match="not a readable PNG"):
        stored.load_atlas(tmp_path / "bad.png")


def test_load_run_samples_prefers_the_full_set(tmp_path):
    images, _ = tasks.render("A", 70, seed=1)
    with pytest.raises(ValueError):
        stored.load_run_samples(tmp_path)
    np.save(tmp_path / "preview.npy", images[:64])
    got, info = stored.load_run_samples(tmp_path)
    assert info == {"file": "preview.npy", "n": 64, "preview": True} and np.array_equal(got, images[:64])
    stored.save_atlas(tmp_path / "samples.png", images)
    got, info = stored.load_run_samples(tmp_path)
    assert info["file"] == "samples.png" and not info["preview"] and np.array_equal(got, images)


def test_store_samples_writes_once_and_on_change(tmp_path):
    pytest.importorskip("torch")
    from fullscale.pipeline import store_samples

    run = tmp_path / "run"
    assert store_samples(run, log=lambda m: None) is None
    images, _ = tasks.render("B", 20, seed=0)
    (run / "samples").mkdir(parents=True)
    np.save(run / "samples" / "images.npy", images)
    path = store_samples(run, log=lambda m: None)
    stamp = path.stat().st_mtime_ns
    assert store_samples(run, log=lambda m: None) == path and path.stat().st_mtime_ns == stamp
    np.save(run / "samples" / "images.npy", images[:5])
    store_samples(run, log=lambda m: None)
    assert np.array_equal(stored.load_atlas(path), images[:5])
