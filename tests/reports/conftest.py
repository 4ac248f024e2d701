"""Tiny synthetic results for the figure modules, so every figure can be drawn in a test.

``fake_result(result, path)`` writes a small stand-in for what ``result``'s dmrules command would
write at ``path`` (same file layout and columns; a data set is rendered for real, it takes
milliseconds) and returns True, or False when it does not know the result. Add a maker here when a
figure module brings a new kind of result.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmrules import results as R


def _bound_table(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.geomspace(0.01, 2.0, 6)
    alpha = np.exp(-t)
    beta = np.sqrt(1 - alpha**2)
    target = alpha / beta**2
    scaled = 0.03 * np.exp(-((np.log(t) + 3) ** 2) / 4)
    df = pd.DataFrame({"t": t, "bound": scaled * target**2, "bound_scaled": scaled, "target": target,
                       "bound_mc": scaled * target**2 * (1 + 0.01 * rng.standard_normal(6)),
                       "bound_mc_se": 0.01 * scaled * target**2})
    if seed == 0:  # the uniform law also carries the polynomial classes
        for k in (1, 3):
            df[f"bound_deg{k}_scaled"] = scaled * (1 + 0.05 / k)
            df[f"bound_deg{k}"] = df[f"bound_deg{k}_scaled"] * target**2
    R.write_table(df, path, R.provenance(command="fake"))


def _score_table(path: Path) -> None:
    rows = [{"dist": "rules", "t": t, "d": 6, "n_points": 16, "law": "RulePatches(d=6, seed=0)", "reference": ref,
             "max_rel_err": 1e-10, "max_abs_err": 1e-10, "max_z": np.nan if ref == "autograd" else 1.3,
             "min_ess": np.nan if ref == "autograd" else 900.0, "mc_points": 0 if ref == "autograd" else 16,
             "tol": 5.0, "passed": True} for t in (0.1, 1.0) for ref in ("autograd", "monte_carlo")]
    R.write_table(pd.DataFrame(rows), path, R.provenance(command="fake"))


def _data_set(argv: list[str], path: Path) -> None:
    """Render the data set for real, with 24 images instead of thousands."""
    from dmrules.cli import main

    argv = list(argv)
    argv[argv.index("--n") + 1] = "24"
    assert main([*argv, "--out", str(path)]) == 0


def _ddpm_run(path: Path, task: str = "A", preset: str = "cpu", model: str = "unet-small") -> None:
    """A finished ``dmrules run`` folder (fullscale/pipeline.py layout) with made-up numbers."""
    from fullscale import tasks

    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    n = 40
    x = rng.uniform(0.02, 0.2, n)
    g = tasks.rule_slope(task)
    points = pd.DataFrame({"image": [f"{i:05d}" for i in range(n)], "parsed": rng.uniform(size=n) < 0.9,
                           "rule_x": x, "rule_y": g * x * (1 + 0.1 * rng.standard_normal(n)),
                           "coarse_ok": pd.array(rng.uniform(size=n) < 0.95, dtype="boolean")})
    R.write_table(points, path / "points.parquet", R.provenance(command="fake"))
    ev = {"n": n, "parsed": int(points.parsed.sum()), "coarse_violation_rate": 0.05, "slope": 0.9 * g,
          "intercept": 0.002, "r2": 0.8, "conform_pct": 60.0, "rule_slope": g,
          "train": {"n": 50, "parsed": 49, "slope": g, "intercept": 0.0, "r2": 0.999, "conform_pct": 99.0},
          "memorisation": {"thresholds": [0.01, 0.03, 0.1], "n": 36, "n_train": 49,
                           "position": [0.0, 0.1, 0.5], "position_colour": [0.0, 0.05, 0.3],
                           "train_leave_one_out": {"position": [0.0, 0.2, 0.6], "position_colour": [0.0, 0.1, 0.4]},
                           "rule_exact": {"n": 4, "position": [0.0, 0.25, 0.5], "position_colour": [0.0, 0.0, 0.25]}}}
    (path / "eval.json").write_text(json.dumps(ev))
    images, _ = tasks.render(task, n, seed=5)
    np.save(path / "preview.npy", images[:18])
    from fullscale.evaluate import examples

    examples.save_examples(path / "examples.npz", task, points, images)
    config = {"task": task, "model": model, "preset": preset, "image_size": 32, "data_seed": 0, "n_train": 50}
    (path / "config.json").write_text(json.dumps({"config": config}))
    row = {"task": task, "model": model, "preset": preset, "n_samples": n, "sampler": "ddim", "sample_steps": 50,
           "n": float(n), "parsed": float(ev["parsed"]), "coarse_violation_rate": 0.05, "slope": ev["slope"],
           "intercept": 0.002, "r2": 0.8, "conform_pct": 60.0, "train_r2": 0.999, "train_s": 12.0, "sample_s": 3.0,
           "device": "cpu:fake (2 threads)"}
    R.write_table(pd.DataFrame([row]), path / "summary.parquet", R.provenance(command="fake"))


# small, fast versions of the sims sweeps: the real commands with these flags appended (argparse: the
# last value wins), a few seconds each
SIMS_TINY = {
    "fl": ["--ns", "8,16", "--snrs", "0.2,0.5", "--seeds", "0,1", "--d", "100", "--diffusion-steps", "40",
           "--classification-steps", "40"],
    "digits": ["--ns", "10,20", "--snrs", "0.1,0.5", "--seeds", "0", "--diffusion-steps", "30",
               "--classification-steps", "30"],
    "rules": ["--widths", "5,20", "--ns", "64", "--steps", "30", "--n-eval", "64", "--eval-steps", "10,100,500",
              "--seeds", "0"],
}


def _sims(argv: list[str], path: Path) -> None:
    from dmrules.cli import main

    assert main([*argv, *SIMS_TINY[argv[1]], "--out", str(path)]) == 0


def _ceiling(path: Path) -> None:
    """``dmrules ceiling`` for real on tiny sets: two tasks, 40 exact renders per seed, two fake runs."""
    from dmrules.cli import main

    runs = [path.with_name(path.name + "-runA"), path.with_name(path.name + "-runC")]
    _ddpm_run(runs[0], task="A", preset="paper", model="unet")
    _ddpm_run(runs[1], task="C")
    assert main(["ceiling", "--tasks", "A,C", "--seeds", "0,1", "--n", "40", "--bootstrap", "20",
                 "--runs", ",".join(map(str, runs)), "--out", str(path)]) == 0


def fake_result(result, path: Path) -> bool:
    """Write a tiny stand-in for ``result`` at ``path``; False when there is no maker for it."""
    key = result.key
    argv = result.command("default")
    if key.startswith("theory_bound"):
        _bound_table(path, 0 if "uniform" in argv else 1)
    elif key.startswith("theory_score"):
        _score_table(path)
    elif argv and argv[0] == "data":
        _data_set(argv, path)
    elif argv and argv[0] == "run":
        _ddpm_run(path, task=argv[argv.index("--task") + 1])
    elif argv[:1] == ["ceiling"]:
        _ceiling(path)
    elif argv[:1] == ["sims"] and len(argv) > 1 and argv[1] in SIMS_TINY:
        _sims(argv, path)
    else:
        return False
    return True


@pytest.fixture(scope="session")
def fake(tmp_path_factory):
    """``fake(result, path) -> bool``: each stand-in is made once per test session, then copied."""
    store = tmp_path_factory.mktemp("fake-results")

    def make(result, path: Path) -> bool:
        src = store / result.path("default", store).name
        if not src.exists() and not fake_result(result, src):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, path)
        else:
            shutil.copy2(src, path)
        return True

    return make


@pytest.fixture
def no_committed_runs(tmp_path, monkeypatch):
    """Figure modules that read committed GPU runs read an empty folder instead."""
    empty = tmp_path / "committed"
    empty.mkdir()
    try:
        import reports.figures.ddpm_runs as ddpm_runs
    except ImportError:
        return empty
    monkeypatch.setattr(ddpm_runs, "PAPER_DIR", empty / "ddpm_paper")
    return empty
