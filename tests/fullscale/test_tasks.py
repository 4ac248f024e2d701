"""Tasks A-D generators (rules paper, arXiv 2502.04725, Sec. 1 of the protocol): geometry, ground
truth, variants, exact rendering, data-set files and ``dmrules data``."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fullscale import tasks
from fullscale.tasks import raster

TASKS = tasks.TASKS


@pytest.mark.parametrize("task", TASKS)
def test_render_is_deterministic_uint8_rgb(task):
    a, fa = tasks.render(task, 40, seed=3)
    b, fb = tasks.render(task, 40, seed=3)
    c, _ = tasks.render(task, 40, seed=4)
    assert a.dtype == np.uint8 and a.shape == (40, 32, 32, 3)
    assert a.tobytes() == b.tobytes() and fa.equals(fb)
    assert not np.array_equal(a, c)
    assert {"rule_x", "rule_y", "coarse_ok"} <= set(fa.columns) and len(fa) == 40
    # every image shows something on a white background
    assert (a.reshape(40, -1, 3) == 255).all(-1).mean(1).min() > 0.4
    assert (a < 250).any(axis=(1, 2, 3)).all()


@pytest.mark.parametrize("task", TASKS)
def test_fine_rule_holds_exactly_and_coarse_flags(task):
    g = tasks.rule_slope(task)
    _, f = tasks.render(task, 500, seed=0)
    np.testing.assert_allclose(f.rule_y, g * f.rule_x, rtol=1e-12, atol=1e-15)
    assert f.coarse_ok.all()
    _, v = tasks.render(task, 200, seed=0, violate=True)
    assert not v.coarse_ok.any()


def test_rule_slopes_and_paper_sizes():
    assert tasks.TASKS == ("A", "B", "C", "D")
    assert tasks.PAPER_TRAIN_SIZE == {"A": 4000, "B": 2000, "C": 2000, "D": 2000}
    assert [tasks.rule_slope(t) for t in TASKS] == [1.0, 1.0, pytest.approx(np.sqrt(2)), 1.5]


def test_task_a_geometry_follows_the_protocol():
    _, f = tasks.render("A", 4000, seed=1)
    assert (f.cls.str[:3].value_counts() == 1000).all()  # four classes, 1000 each
    ranges = {"l_f": (0, 0.2), "r_f": (0.8, 1.0), "l_n": (0.3, 0.5), "r_n": (0.5, 0.7)}
    for cls, (lo, hi) in ranges.items():
        sx = f.sun_x[f.cls.str.startswith(cls)]
        assert sx.min() >= lo and sx.max() <= hi and sx.max() - sx.min() > 0.9 * (hi - lo)
    assert f.h2.between(0.2, 0.4).all()
    np.testing.assert_allclose(f.h1, f.h2)  # H_sun = 2 H_pole
    np.testing.assert_allclose(f.l2, f.l1)  # shadow length = |x_s - x_p|
    sun_left = f.sun_x < 0.5
    assert (f.shadow_x0[sun_left] == 0.5).all() and (f.shadow_x1[~sun_left] == 0.5).all()
    _, v = tasks.render("A", 400, seed=1, violate=True)
    left = v.sun_x < 0.5  # same side: the shadow points at the sun
    assert (v.shadow_x1[left] == 0.5).all() and (v.shadow_x0[~left] == 0.5).all()
    assert v.cls.str.endswith("_s").all()


def test_task_b_c_d_geometry():
    _, b = tasks.render("B", 2000, seed=1)
    assert b.x1.between(0, 0.3).all() and b.h1.between(0.2, 0.6).all()
    assert (b.x2 >= b.x1 + 0.2 - 1e-12).all() and (b.x2 <= 0.8).all() and (b.h1 > b.h2).all()
    _, c = tasks.render("C", 2000, seed=1)
    assert (2 * c.r1).between(0.1, 0.3).all()
    np.testing.assert_allclose(c.r2, np.sqrt(2) * c.r1)
    for k in ("1", "2"):  # both circles inside the canvas
        r = c.r1 if k == "1" else c.r2
        assert ((c[f"c{k}_x"] - r) >= 0).all() and ((c[f"c{k}_x"] + r) <= 1).all()
        assert ((c[f"c{k}_y"] - r) >= 0).all() and ((c[f"c{k}_y"] + r) <= 1).all()
    dist = np.hypot(c.c1_x - c.c2_x, c.c1_y - c.c2_y)
    np.testing.assert_allclose(dist, c.r1 + c.r2)  # externally tangent
    assert set(c.side) == {"left", "right", "top", "bottom"}
    _, d = tasks.render("D", 2000, seed=1)
    assert d.l1.between(0.16, 0.32).all()
    gap = (d.upper_y - d.l1 / 2) - (d.lower_y + d.l2 / 2)
    assert gap.between(0.05, 0.12).all()
    assert ((d.lower_y - d.l2 / 2) >= 0.5 / 32 - 1e-12).all() and ((d.upper_y + d.l1 / 2) <= 1 - 0.5 / 32 + 1e-12).all()


@pytest.mark.parametrize("task", TASKS)
def test_contrastive_classes_deviate_in_opposite_directions(task):
    g = tasks.rule_slope(task)
    _, f = tasks.render(task, 600, seed=2, contrastive=True)
    assert sorted(f.label.value_counts().tolist()) == [200, 200, 200]
    assert f.coarse_ok.all()
    dev = f.rule_y - g * f.rule_x
    np.testing.assert_allclose(dev[f.label == 1], 0, atol=1e-12)
    low, high = (0, 2) if task == "A" else (2, 0)  # A: class 0 short shadows; B-D: class 0 above the line
    assert (dev[f.label == low] < 0).all()
    assert (dev[f.label == high] >= 0).all() and dev[f.label == high].median() > 0


def test_contrastive_offsets_match_the_protocol():
    _, b = tasks.render("B", 600, seed=0, contrastive=True)
    m = (b.rule_y - b.rule_x).abs() * 32**2  # scene units^2
    assert m[b.label != 1].between(15, 15 + 5 * 6).all()  # m = 15 + |5 N(0, 1)|
    assert (b.h2[b.label != 1] >= 0.1 - 1e-12).all()
    _, c = tasks.render("C", 600, seed=0, contrastive=True)
    d_off = (2 * c.r2 - np.sqrt(2) * 2 * c.r1) * 32
    np.testing.assert_allclose(d_off[c.label == 0], 1.0)
    np.testing.assert_allclose(d_off[c.label == 2], -1.0)
    assert (2 * c.r1).between(0.2, 0.3).all()


def test_task_c_violations_are_equal_or_swapped():
    _, v = tasks.render("C", 100, seed=0, violate=True)
    eq, sw = v.violation == "equal", v.violation == "swapped"
    assert eq.sum() == 50 and sw.sum() == 50
    np.testing.assert_allclose(v.r1[eq], v.r2[eq])
    np.testing.assert_allclose(v.r1[sw], np.sqrt(2) * v.r2[sw])


def _supersample(shape_fn, size, ss=32):
    xs = (np.arange(size * ss) + 0.5) / ss
    X, Y = np.meshgrid(xs, xs)
    return shape_fn(X, Y).reshape(size, ss, size, ss).mean((1, 3))


def test_rect_and_disc_coverage_are_exact():
    rng = np.random.default_rng(0)
    n = 6
    rect = raster.Rect(rng.uniform(2, 10, n), rng.uniform(12, 30, n), rng.uniform(1, 9, n), rng.uniform(12, 31, n),
                       np.zeros((n, 3)))
    disc = raster.Disc(np.array([0.7, 31.5, 16.2, 8.3, 20.0, 3.3]), rng.uniform(5, 27, n),
                       np.array([3.2, 3.2, 1.6, 4.9, 6.8, 2.5]), np.zeros((n, 3)))
    rc, dc = raster.rect_coverage(rect, 32), raster.disc_coverage(disc, 32)
    for i in range(n):
        ref = _supersample(lambda X, Y: (X >= rect.x0[i]) & (X <= rect.x1[i]) & (32 - Y >= rect.y0[i])
                           & (32 - Y <= rect.y1[i]), 32)
        assert np.abs(rc[i] - ref).max() < 0.04  # supersampling error, 1/32
        ref = _supersample(lambda X, Y: (X - disc.cx[i]) ** 2 + (Y - (32 - disc.cy[i])) ** 2 <= disc.r[i] ** 2, 32)
        assert np.abs(dc[i] - ref).max() < 0.02
        # the disc's visible area is exact (the sun of Task A is cut by the border: i = 0, 1)
        assert dc[i].sum() == pytest.approx(ref.sum(), rel=2e-3)
    whole = raster.Disc(rng.uniform(8, 24, 50), rng.uniform(8, 24, 50), rng.uniform(1.6, 6, 50), np.zeros((50, 3)))
    np.testing.assert_allclose(raster.disc_coverage(whole, 32).sum((1, 2)), np.pi * whole.r**2, rtol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_renders_at_64_px_area_average_to_the_32_px_render(task):
    """Box-filtered coverage at 64 px, averaged 2x2, is the coverage at 32 px (up to rounding)."""
    a32, _ = tasks.render(task, 30, size=32, seed=5)
    a64, _ = tasks.render(task, 30, size=64, seed=5)
    down = a64.astype(float).reshape(30, 32, 2, 32, 2, 3).mean((2, 4))
    assert np.abs(down - a32).max() <= 1.0


def test_colours_come_from_the_families():
    import cv2

    _, f = tasks.render("A", 300, seed=0)
    for obj, fam in (("sun", "warm"), ("pole", "cool"), ("shadow", "grey")):
        rgb = f[[f"{obj}_r", f"{obj}_g", f"{obj}_b"]].to_numpy()[None].astype(np.float32) / 255
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[0]
        (h0, h1), (s0, s1), (v0, v1) = tasks.FAMILIES[fam]
        h = hsv[:, 0] / 2  # OpenCV 8-bit hue units
        if fam != "grey":
            assert (h >= h0 - 0.5).all() and (h <= h1 + 0.5).all()
        assert (hsv[:, 1] * 255 >= s0 - 0.5).all() and (hsv[:, 1] * 255 <= s1 + 0.5).all()
        assert (hsv[:, 2] * 255 >= v0 - 0.5).all() and (hsv[:, 2] * 255 <= v1 + 0.5).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(task="E", n=5), "unknown task"),
    (dict(task="A", n=0), "n must be"),
    (dict(task="A", n=2.5), "n must be an integer"),
    (dict(task="A", n=5, size=4), "size must be"),
    (dict(task="A", n=5, seed=-1), "seed must be"),
    (dict(task="A", n=5, contrastive=True, violate=True), "either contrastive or violate"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.render(**kwargs)


def test_dataset_roundtrip(tmp_path):
    images, feats = tasks.render("B", 25, seed=1, contrastive=True)
    tasks.save_dataset(tmp_path / "ds", images, feats, {"task": "B", "seed": 1}, png=True)
    im2, f2, meta = tasks.load_dataset(tmp_path / "ds")
    assert np.array_equal(images, im2)
    assert f2.drop(columns=[]).equals(feats) and f2.attrs["provenance"]["config"]["task"] == "B"
    assert meta["n"] == 25 and meta["size"] == 32 and meta["files"]["png"] == "png"
    pngs = sorted((tmp_path / "ds" / "png").glob("*.png"))
    assert [p.name for p in pngs[:2]] == ["000000.png", "000001.png"] and len(pngs) == 25
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(pngs[3])), images[3])
    with pytest.raises(ValueError, match="not a complete data set"):
        tasks.load_dataset(tmp_path)


def test_data_cli_writes_resumes_and_refuses_other_configs(run_cli, tmp_path):
    out = tmp_path / "d"
    rc, stdout, _ = run_cli("data", "--task", "c", "--n", "12", "--seed", "2", "--out", out, "--png")
    assert rc == 0 and "12" in stdout
    images, feats, meta = tasks.load_dataset(out)
    ref, _ = tasks.render("C", 12, seed=2)
    assert np.array_equal(images, ref) and meta["task"] == "C" and len(list((out / "png").glob("*.png"))) == 12
    rc, stdout, _ = run_cli("data", "--task", "C", "--n", "12", "--seed", "2", "--out", out)
    assert rc == 0 and "skipped" in stdout
    rc, _, err = run_cli("data", "--task", "C", "--n", "13", "--seed", "2", "--out", out)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "another data set" in err
    for bad in (["--task", "Z"], ["--task", "A", "--n", "0"], ["--task", "A", "--seed", "-3"],
                ["--task", "A", "--contrastive", "--violate"]):
        rc, _, err = run_cli("data", *bad, "--out", tmp_path / "x")
        assert rc == 2 and len(err.strip().splitlines()) == 1, bad


def test_data_command_imports_neither_torch_nor_opencv(tmp_path):
    code = ("import sys; from dmrules.cli import main; "
            f"rc = main(['data', '--task', 'A', '--n', '50', '--out', {str(tmp_path / 'a')!r}]); "
            "print(rc, 'torch' in sys.modules, 'cv2' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "0 False False", proc.stderr
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert json.loads((tmp_path / "a" / "provenance.json").read_text())["device"].startswith("cpu")  # issue 12
