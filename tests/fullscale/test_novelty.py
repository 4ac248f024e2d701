"""Novelty against the training set, calibrated by fresh renders, and disjoint-split agreement (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from fullscale import tasks
from fullscale.evaluate import extract
from fullscale.evaluate import novelty as nv


@pytest.fixture(scope="module")
def setup_c():
    train, _ = tasks.render("C", 48, seed=0)
    fresh, _ = tasks.render("C", 96, seed=1000)
    tt, ft = extract("C", train), extract("C", fresh)
    return train, tt, nv.reference("C", train, tt, fresh, ft)


def _noisy_copies(train, k, seed=0):
    cp = train[np.arange(k) % len(train)].astype(int)
    noise = np.random.default_rng(seed).integers(-3, 4, cp.shape)
    return np.clip(cp + noise, 0, 255).astype(np.uint8)


def test_pixel_nn_is_exact_rms_distance():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (7, 4, 4, 3), dtype=np.uint8)
    brute = np.array([min(np.sqrt(np.mean((x / 255.0 - y / 255.0) ** 2)) for y in b) for x in a])
    np.testing.assert_allclose(nv.pixel_nn(a, b, chunk=2), brute, atol=1e-6)
    np.testing.assert_allclose(nv.pixel_nn(b[:3], b), 0.0, atol=1e-6)


def test_copies_are_copies_and_fresh_renders_are_not(setup_c):
    train, tt, ref = setup_c
    assert 0 < ref["tau_copy_pix"] < ref["fresh_median_pix"] and ref["n_fresh"] == 96
    copies = _noisy_copies(train, 64)
    res = nv.novelty("C", copies, extract("C", copies), train, tt, ref)
    assert res["copy_rate"] == 1.0 and res["novel_frac"] < 0.05
    fresh2, _ = tasks.render("C", 64, seed=2000)
    res2 = nv.novelty("C", fresh2, extract("C", fresh2), train, tt, ref)
    assert res2["copy_rate"] <= 0.05  # about 1 / (M + 1) by construction
    assert 0.3 < res2["novel_frac"] < 0.7  # the median threshold: about half the law is "novel"
    assert res2["novel_conform_pct"] > 90  # exact renders conform
    assert res2["copy_rate_se"] is not None and len(res2["d_pix"]) == 64


def test_violating_novel_samples_do_not_conform(setup_c):
    train, tt, ref = setup_c
    bad, _ = tasks.render("C", 64, seed=5, violate=True)  # equal or swapped sizes: off the fine rule
    res = nv.novelty("C", bad, extract("C", bad), train, tt, ref)
    assert res["novel_conform_pct"] < 60


def test_disjoint_agreement_separates_same_function_from_unrelated():
    a, _ = tasks.render("C", 40, seed=0)
    same = nv.disjoint_agreement(a, _noisy_copies(a, 40), n_boot=50)
    assert same["ratio"] < 0.2 and same["ratio_lo"] <= same["ratio"] <= same["ratio_hi"]
    b, _ = tasks.render("C", 40, seed=1)
    other = nv.disjoint_agreement(a, b, n_boot=50)
    assert 0.85 < other["ratio"] < 1.15
    with pytest.raises(ValueError):
        nv.disjoint_agreement(a, b[:10])


def test_conform_flags_match_conform_pct():
    from fullscale.evaluate import summarize

    imgs, _ = tasks.render("A", 60, seed=4, contrastive=True)
    table = extract("A", imgs)
    flags = nv.conform_flags("A", table)
    parsed = table["parsed"].to_numpy(bool)
    assert 0 < flags.sum() < parsed.sum()
    assert abs(100 * flags[parsed].mean() - summarize("A", table)["conform_pct"]) < 1e-9
