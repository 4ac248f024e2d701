"""A new task in one file (issue 13): this module IS the toy task, and its tests.

The toy task "toy": a warm disc of radius r ~ U(0.08, 0.16) (fractions of the width) and, to its
right, a cool bar 0.12 wide whose height is h = 2.5 r (fine rule, slope g = 2.5). Coarse rule: the
bar is to the right of the disc. ``violate`` puts the bar on the left; ``contrastive`` gives
h = 2.5 r x (0.7 | 1 | 1.3) for labels 0 / 1 / 2. No ``STREAM_ID``: its data stream is a hash of its
name. Everything a task declares is below (the contract: fullscale/tasks/registry.py); nothing else
in the tree knows the toy task. The tests register it, run data -> evaluate -> smoke train ->
sample through the CLI, and check the registry's stream discipline.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fullscale.tasks.raster import Disc, Rect, S, sample_colors

# ---- the toy task: what a task module declares (docs/extending.md, "Add a task") ----------------
NAME = "toy"
TITLE = "a disc and a bar 2.5 radii tall"
RULE_SLOPE = 2.5
COARSE_RULE = "the bar stands to the right of the disc"
PAPER_N, PAPER_EPOCHS = 64, 2
COLOR = "#8172b3"
POSITION_FEATURES = ("r", "h", "disc_x", "disc_y", "bar_x", "bar_y")
FREE_VARIABLE = "r"
OBJECTS = ("disc", "bar")
EVAL_OBJECTS = (("disc", "warm", "disc"), ("bar", "cool", "rect"))
BAR_W = 0.12 * S


def sample(rng: np.random.Generator, n: int, *, contrastive: bool = False, violate: bool = False):
    """Scene parameters for ``n`` images: (shapes in painter order, feature columns, labels or None)."""
    r = rng.uniform(0.08 * S, 0.16 * S, n)
    labels = None
    h = RULE_SLOPE * r
    if contrastive:
        labels = rng.permutation(np.arange(n) % 3)
        h = h * np.array([0.7, 1.0, 1.3])[labels]
    disc_x = rng.uniform(r + 1.0, S / 2 - 1.0)
    disc_y = rng.uniform(r + 1.0, S - r - 1.0)
    bar_x0 = rng.uniform(S / 2 + 1.0, S - BAR_W - 1.0, n)
    bar_y0 = rng.uniform(1.0, S - h - 1.0)
    if violate:  # mirror the scene: the bar on the left
        disc_x, bar_x0 = S - disc_x, S - bar_x0 - BAR_W
    disc_color, bar_color = sample_colors(rng, "warm", n), sample_colors(rng, "cool", n)
    shapes = [Disc(disc_x, disc_y, r, disc_color), Rect(bar_x0, bar_x0 + BAR_W, bar_y0, bar_y0 + h, bar_color)]
    bar_x = bar_x0 + BAR_W / 2
    features = {"r": r / S, "h": h / S, "disc_x": disc_x / S, "disc_y": disc_y / S, "bar_x": bar_x / S,
                "bar_y": (bar_y0 + h / 2) / S, "rule_x": r / S, "rule_y": h / S, "coarse_ok": bar_x > disc_x}
    for name, col in zip(OBJECTS, (disc_color, bar_color)):
        for j, ch in enumerate("rgb"):
            features[f"{name}_{ch}"] = col[:, j]
    return shapes, features, labels


def measured(ms, color, size) -> dict:
    """Evaluator hook: features from the measured disc and bar (pixels, rows down) -> fractions, y up."""
    disc, bar = ms
    r, h = disc["r"] / size, bar["height"] / size
    disc_x, bar_x = disc["cx"] / size, 0.5 * (bar["x0"] + bar["x1"]) / size
    cols = {"r": r, "h": h, "disc_x": disc_x, "disc_y": 1.0 - disc["cy"] / size, "bar_x": bar_x,
            "bar_y": 1.0 - 0.5 * (bar["y0"] + bar["y1"]) / size, "rule_x": r, "rule_y": h,
            "coarse_ok": bar_x > disc_x}
    for k, name in enumerate(OBJECTS):
        for j, ch in enumerate("rgb"):
            cols[f"{name}_{ch}"] = color[:, k, j]
    return cols


# ---- tests ----------------------------------------------------------------------------------------
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# digests of render(task, 24, seed=3) for the three variants, taken before the registry existed:
# A-D keep their historical stream ids (0..3), so every data set ever rendered is unchanged
ABCD_DIGESTS = {("A", 0): "64a8e38614adeaba", ("A", 1): "b7a9bb34dd691fa6", ("A", 2): "140191d58e5a3546",
                ("B", 0): "d98c67d8d6a5551f", ("B", 1): "e9f03e398ea353db", ("B", 2): "c17bdc5fcaa83158",
                ("C", 0): "7da6b2df0367a399", ("C", 1): "03bd96065d0234e7", ("C", 2): "f4d4e9c9b8a8a3da",
                ("D", 0): "b8342dcf9546b4bc", ("D", 1): "e010a46311d21dae", ("D", 2): "496495b6e4880935"}
VARIANTS = ({}, {"contrastive": True}, {"violate": True})


def _digest(images, features) -> str:
    h = hashlib.sha256(images.tobytes())
    h.update(np.ascontiguousarray(features.select_dtypes("number").to_numpy(dtype=np.float64)).tobytes())
    h.update(",".join(features.columns).encode())
    return h.hexdigest()[:16]


def _twin(name: str) -> types.ModuleType:
    """Another task module: the toy task under another name."""
    twin = types.ModuleType(f"toy_twin_{name}")
    twin.__dict__.update({k: v for k, v in globals().items() if k.isupper() or k in ("sample", "measured")})
    twin.NAME = name
    return twin


@pytest.fixture
def toy():
    from fullscale.tasks import registry

    spec = registry.register(sys.modules[__name__])
    try:
        yield spec
    finally:
        registry.unregister(NAME)


def test_abcd_data_unchanged_by_the_registry():
    from fullscale import tasks

    for (task, v), want in ABCD_DIGESTS.items():
        assert _digest(*tasks.render(task, 24, size=32, seed=3, **VARIANTS[v])) == want, (task, v)


def test_toy_stream_comes_from_its_name_not_registration_order(toy):
    from dmrules.core.streams import name_id
    from fullscale import tasks
    from fullscale.tasks import registry

    assert toy.stream_id == name_id("toy") and toy.stream_id not in (0, 1, 2, 3)
    assert registry.names() == ("A", "B", "C", "D", "toy")
    first = tasks.render("toy", 16, seed=1)
    registry.unregister("toy")
    registry.register(_twin("aaa"))  # registered before the toy task this time
    try:
        registry.register(sys.modules[__name__])
        again = tasks.render("toy", 16, seed=1)
        assert registry.names().index("toy") != 4
        twin = tasks.render("aaa", 16, seed=1)
    finally:
        registry.unregister("aaa")
    assert np.array_equal(first[0], again[0]) and first[1].equals(again[1])
    assert not np.array_equal(first[0], twin[0])  # same law, another name: other draws


def test_toy_render_and_measure_agree(toy):
    from fullscale import tasks
    from fullscale.evaluate import evaluate, extract

    for kw in VARIANTS:
        images, truth = tasks.render("toy", 48, seed=2, **kw)
        table = extract("toy", images)
        assert table.parsed.all(), table.reason.unique()
        for col in ("r", "h", "disc_x", "bar_x", "bar_y"):
            assert np.abs(table[col] - truth[col]).max() < 0.01, col
        assert (table.coarse_ok.astype(bool) == truth.coarse_ok).all()
    res = evaluate("toy", tasks.render("toy", 64, seed=0)[0])
    assert res["slope"] == pytest.approx(2.5, abs=0.05) and res["r2"] > 0.99 and res["coarse_violation_rate"] == 0


def test_registry_refuses_bad_tasks_in_one_sentence(toy):
    from fullscale.tasks import registry

    with pytest.raises(ValueError, match="unknown task 'nope': choose one of A, B, C, D, toy"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(sys.modules[__name__])
    clash = _twin("clash")
    clash.STREAM_ID = 2
    with pytest.raises(ValueError, match="share data stream id 2 with task 'C'"):
        registry.register(clash)
    half = types.ModuleType("half")
    half.NAME = "half"
    with pytest.raises(ValueError, match="does not declare TITLE, sample"):
        registry.register(half)
    with pytest.raises(ValueError, match="built in"):
        registry.register(_twin("A"))


def test_unknown_task_fails_early_on_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dmrules", "data", "--task", "nope", "--out", str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "unknown task 'nope': choose one of A, B, C, D" in out.stderr
    assert not (tmp_path / "d").exists()


def test_toy_task_from_the_shell_via_the_environment(tmp_path):
    """``DMRULES_TASK_MODULES`` registers extra task modules for the command line."""
    env = dict(os.environ, DMRULES_TASK_MODULES="test_toy_task",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "dmrules", "data", "--task", "toy", "--n", "12",
                          "--out", str(tmp_path / "d")], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "d" / "meta.json").read_text())["task"] == "toy"


def test_toy_task_data_evaluate_train_sample(toy, tmp_path, capsys):
    """data -> evaluate -> smoke train -> sample -> evaluate on the toy task, through the CLI."""
    from dmrules.cli import main

    data = tmp_path / "data"
    assert main(["data", "--task", "toy", "--n", "32", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--task", "toy", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 32 and res["parsed"] == 32 and res["slope"] == pytest.approx(2.5, abs=0.05)
    run = tmp_path / "run"
    assert main(["run", "--task", "toy", "--model", "unet", "--preset", "smoke", "--threads", "1",
                 "--data-seed", "4", "--sample-seed", "2", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert (cfg["task"], cfg["data_seed"], cfg["sample_seed"], cfg["n_train"]) == ("toy", 4, 2, 32)
    assert json.loads((run / "data" / "meta.json").read_text())["seed"] == 4
    ev = json.loads((run / "eval.json").read_text())
    assert ev["task"] == "toy" and ev["n"] == cfg["n_samples"]
    samples = np.load(run / "samples" / "images.npy")
    assert samples.shape == (cfg["n_samples"], 32, 32, 3) and samples.dtype == np.uint8


def test_toy_task_has_no_paper_protocol_and_says_so(toy, tmp_path, capsys):
    from dmrules.cli import main

    data = tmp_path / "d"
    assert main(["data", "--task", "toy", "--n", "6", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--task", "toy", str(data), "--protocol", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "covers tasks A, B, C, D only, not 'toy'" in err
