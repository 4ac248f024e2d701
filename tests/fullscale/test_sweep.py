"""`dmrules sweep clocks` (issue 14): manifest of resumable runs, fixed kimg budgets, kill + resume, launchers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dmrules import results as R
from dmrules.cli import main
from fullscale.experiments import aggregate, clocks, launch

ROOT = Path(__file__).resolve().parents[2]
# smoke preset: unet-small, batch 8; 4 budgets so that a kill lands between evaluations
SMOKE = ["--preset", "smoke", "--samples", "6", "--kimg", "0.016,0.032,0.048,0.064", "--threads", "1"]
TIMING = ["train_s", "sample_s", "eval_s", "device"]


@pytest.fixture(autouse=True)
def _restore_threads():
    """In-process sweeps set torch's thread count (--threads 1); give other tests theirs back."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_parse_sampler_and_budgets():
    assert clocks.parse_sampler("ddpm") == {"sampler": "ddpm", "steps": 999, "eta": 0.0}
    assert clocks.parse_sampler("ddim100-eta1") == {"sampler": "ddim", "steps": 100, "eta": 1.0}
    for bad in ("ddim0-eta1", "ddim10-eta2", "euler", "ddim10"):
        with pytest.raises(ValueError):
            clocks.parse_sampler(bad)
    runs = clocks.make_runs(["A", "C"], [16, 4000], [0, 1], "cpu")
    assert [r.name for r in runs[:4]] == ["A-n16-s0", "A-n16-s1", "A-n4000-s0", "A-n4000-s1"]
    # the same budgets (images seen, multiples of the batch 16) for every n: 5 kimg -> 5008 images
    assert {r.budgets for r in runs} == {(5008, 10000, 20000, 40000, 80000, 160000)}
    assert runs[0].config(16).total_images == runs[2].config(4000).total_images == 160000
    assert runs[0].evaluations()[-1] == (160000, "ddim100-eta0") and runs[0].sampler == "ddim100-eta1"
    held = clocks.make_runs(["C"], [64], [0], "cpu", holdout="free:0.09:0.11")[0]
    assert held.holdout == "r1:0.09:0.11" and held.name == "C-n64-s0-hold-r1-0.09-0.11"
    assert clocks.ClockRun.from_json(json.loads(json.dumps(held.to_json()))) == held


@pytest.mark.parametrize("args, msg", [
    (["--kimg", "10,5"], "increasing"),
    (["--sampler", "euler"], "unknown sampler"),
    (["--n", "1"], "at least 2"),
    (["--holdout", "r1:0.2:0.1"], "LO < HI"),
    (["--tasks", "E"], "unknown task"),
    (["--launcher", "slurm", "--workers", "2"], "--workers"),
    (["--second-sampler", "ddim100-eta1"], "differ"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, msg):
    base = {"--tasks": "C", "--n": "8", "--out": str(tmp_path / "o")}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = ["sweep", "clocks"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0]
    assert not (tmp_path / "o" / "runs").exists()


def _table(out):
    df = R.read_table(Path(out) / "clocks.parquet")
    return df.drop(columns=TIMING).sort_values(["n", "seed", "images", "sampler"]).reset_index(drop=True)


@pytest.mark.slow
def test_tiny_sweep_runs_end_to_end_and_resumes_after_a_kill(tmp_path):
    argv = ["sweep", "clocks", "--tasks", "C", "--n", "8,16", "--seeds", "0", "--workers", "1", *SMOKE]
    # reference: uninterrupted
    assert main(argv + ["--out", str(tmp_path / "ref")]) == 0
    ref = _table(tmp_path / "ref")
    assert len(ref) == 2 * 5  # 2 runs x (4 budgets + the second sampler at the last)
    assert sorted(ref["images"].unique()) == [16, 32, 48, 64] and set(ref["step"]) == {2, 4, 6, 8}
    assert (ref["step"] * 8 == ref["images"]).all()  # each evaluation records the weights' step and images
    # killed (SIGKILL to the whole process group) right after its first evaluation, then resumed
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "dmrules", *argv, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not list(out.glob("runs/*/evals/*/eval.json")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    n_done = len(list(out.glob("runs/*/evals/*/eval.json")))
    assert 1 <= n_done < 10, "the kill should land mid-sweep"
    assert main(argv + ["--out", str(out)]) == 0
    got = _table(out)
    import pandas as pd

    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-9)
    np.testing.assert_array_equal(np.load(clocks.eval_dir(out / "runs" / "C-n16-s0", 64, "ddim4-eta0") / "samples.npy"),
                                  np.load(clocks.eval_dir(tmp_path / "ref" / "runs" / "C-n16-s0", 64, "ddim4-eta0")
                                          / "samples.npy"))
    cov = R.read_table(out / "clocks.parquet").attrs["provenance"]["coverage"]
    assert cov["runs_finished"] == cov["runs_planned"] == 2 and cov["evaluations_present"] == 10


def test_submitit_debug_launcher_pairs_disjoint_seeds(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "s"
    argv = ["sweep", "clocks", "--tasks", "C", "--n", "8", "--seeds", "0,1", "--launcher", "submitit-debug",
            "--preset", "smoke", "--samples", "6", "--kimg", "0.016", "--second-sampler", "none", "--out", str(out)]
    assert main(argv) == 0
    df = R.read_table(out / "clocks.parquet")
    assert sorted(df["seed"]) == [0, 1] and set(df["n_train"]) == {8}
    split = R.read_table(out / "clocks_split.parquet")
    assert len(split) == 1 and split.loc[0, "seed_a"] == 0 and split.loc[0, "seed_b"] == 1
    assert 0 < split.loc[0, "ratio"] < 2 and split.loc[0, "ratio_lo"] <= split.loc[0, "ratio_hi"]
    # disjoint training sets: seed s renders stream s
    d0 = np.load(out / "runs" / "C-n8-s0" / "data" / "images.npy")
    d1 = np.load(out / "runs" / "C-n8-s1" / "data" / "images.npy")
    assert not any((a == b).all() for a in d0 for b in d1)
    # a re-run has nothing to do; --plan lists both as finished
    assert main(argv) == 0


def test_a_run_held_by_another_process_is_busy_and_specs_are_checked(tmp_path, capsys):
    run = clocks.make_runs(["C"], [8], [0], "smoke", n_samples=4, second_sampler=None)[0]
    rdir = tmp_path / run.name
    with clocks._Lock(rdir):
        res = launch.execute(run.to_json(), str(rdir), {"threads": 1}, to_file=False)
    assert res["status"] == "busy"
    R.claim_dir(rdir, run, clocks.ClockRun.from_json, "clock run")
    other = clocks.make_runs(["C"], [8], [0], "smoke", n_samples=5, second_sampler=None)[0]
    with pytest.raises(ValueError, match="another config"):
        R.claim_dir(rdir, other, clocks.ClockRun.from_json, "clock run")
    assert aggregate.coverage(tmp_path) == {}


def test_the_manifest_keeps_its_order_adds_new_runs_and_follows_a_changed_spec(tmp_path):
    a, c = clocks.make_runs(["A", "C"], [64], [0], "cpu")
    launch.write_manifest(tmp_path, [a, c], {"first": 1})
    longer = clocks.make_runs(["C"], [64], [0], "cpu", kimg=[20, 80, 160])[0]  # after C's folder was moved away
    new = clocks.make_runs(["C"], [256], [0], "cpu")[0]
    launch.write_manifest(tmp_path, [new, longer], {"second": 1})
    runs = json.loads((tmp_path / "manifest.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["A-n64-s0", "C-n64-s0", "C-n256-s0"]
    assert [clocks.ClockRun.from_json(r["spec"]) for r in runs] == [a, longer, new]


def test_band_sweep_with_closed_form_baselines(tmp_path):
    from fullscale.experiments import band_baselines

    assert band_baselines.parse_denoisers("empirical,local:9") == [("empirical", None), ("local", 9)]
    for bad in ("local", "empirical:3", "local:x", "local:40", "wiener", ""):
        with pytest.raises(ValueError):
            band_baselines.parse_denoisers(bad)
    out = tmp_path / "band"
    argv = ["sweep", "clocks", "--tasks", "C", "--n", "24", "--seeds", "0", "--workers", "1", "--preset", "smoke",
            "--samples", "6", "--kimg", "0.016", "--second-sampler", "none", "--holdout", "r1:0.09:0.11",
            "--out", str(out)]
    assert main(argv) == 0
    rdir = out / "runs" / "C-n24-s0-hold-r1-0.09-0.11"
    imgs, feats, meta = __import__("fullscale.tasks", fromlist=["load_dataset"]).load_dataset(rdir / "data")
    assert meta["holdout_info"]["n_dropped"] > 0 and not ((feats.r1 >= 0.09) & (feats.r1 < 0.11)).any()
    df = R.read_table(out / "clocks.parquet")
    assert df.loc[0, "band_name"] == "r1" and df.loc[0, "train_band_frac"] < 0.1 and df.loc[0, "fresh_band_frac"] > 0
    pts = R.read_table(out / "clocks_points.parquet")
    assert set(pts["source"]) == {"train", "fresh", "generated"}
    pytest.importorskip("fullscale.ladder")  # `dmrules baseline` (the locality ladder, issue 14 Sec. 2)
    assert main(["sweep", "baselines", str(out), "--denoisers", "empirical"]) == 0
    assert main(["sweep", "aggregate", str(out)]) == 0
    base = R.read_table(out / "clocks_baselines.parquet")
    # the empirical denoiser reproduces training images: every sample a copy, none in the band
    assert base.loc[0, "denoiser"] == "empirical" and base.loc[0, "copy_rate"] == 1.0
    assert base.loc[0, "band_frac"] in (0.0, None) or np.isnan(base.loc[0, "band_frac"])
