"""Training on CPU (issue 13): the runtime's CPU switches, bf16 autocast's determinism and resume, and
the benchmark's ablation table (tiny sizes; no timings are asserted: speed goes to benchmarks/)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fullscale import presets, runtime, train

ROOT = Path(__file__).resolve().parents[2]


def _cfg():
    return presets.make_config("A", "unet-small", "smoke", n_train=32, epochs=2, batch=8, ckpt_every_kimg=0.016,
                               log_every_kimg=0.016)


def _images():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)




def _flat(state):
    return torch.cat([v.flatten().float() for v in state["model"].values()])


def test_cpu_defaults_and_opt_in_bf16():
    rt = runtime.setup(presets.Performance(device="cpu"), distributed=False)
    assert (rt.bf16, rt.compile, rt.channels_last, rt.tf32) == (False, False, True, False)
    assert train.ADAM_DEFAULT == "fused"
    on = runtime.setup(presets.Performance(device="cpu", bf16=True), distributed=False)
    assert on.bf16
    net = torch.nn.Conv2d(3, 4, 3)
    with on.autocast():
        assert net(torch.randn(1, 3, 8, 8)).dtype == torch.bfloat16
    with rt.autocast():
        assert net(torch.randn(1, 3, 8, 8)).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown Adam"):
        train.Trainer(_cfg(), rt, _images(), adam="lion")


def test_bf16_training_is_deterministic_and_resumes_bit_for_bit(tmp_path, same):
    """--bf16 on CPU (oneDNN autocast): same seed, same bits; a cut run resumed equals an uncut one;
    and it really trains in bf16 (its weights differ from the fp32 run's)."""
    cfg, images = _cfg(), _images()
    rt = runtime.setup(presets.Performance(device="cpu", bf16=True, threads=1), distributed=False)
    for run in ("a", "b"):
        train.train(cfg, tmp_path / run, images, rt, log=lambda m: None)
    train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None, stop_after_images=24)
    train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None)
    fp32 = runtime.setup(presets.Performance(device="cpu", threads=1), distributed=False)
    train.train(cfg, tmp_path / "fp32", images, fp32, log=lambda m: None)
    state = {run: torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("a", "b", "cut", "fp32")}
    for run in ("b", "cut"):
        for key in ("model", "ema", "opt"):
            assert same(state["a"][key], state[run][key]), (run, key)
    assert not torch.equal(_flat(state["a"]), _flat(state["fp32"]))


def test_bench_ablation_rows(tmp_path):
    from dmrules import results as R

    out = tmp_path / "bench.parquet"
    cmd = [sys.executable, "benchmarks/bench_fullscale.py", "--device", "cpu", "--threads", "1", "--seconds", "0.1",
           "--rounds", "3", "--block", "0.05", "--ref-images", "32", "--ref-workers", "0", "--sample-batch", "4",
           "--ablation", "--variants", "fp32-eager,fused-adam,bf16", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = R.read_table(out)
    train_rows = df[df.phase == "train"]
    assert list(train_rows.variant) == ["defaults", "IDDM-style", "fp32-eager", "fused-adam", "bf16"]
    assert list(train_rows.precision) == ["fp32", "fp32", "fp32", "fp32", "bf16"]
    assert (train_rows.speedup_lo <= train_rows.speedup_vs_reference).all()
    assert (train_rows.speedup_vs_reference <= train_rows.speedup_hi).all()
    assert (train_rows.rounds == 3).all() and (train_rows.threads == 1).all()
    assert df.attrs["provenance"]["config"]["variants_used"] == ["fp32-eager", "fused-adam", "bf16"]
    bad = subprocess.run(cmd[:-2] + ["--variants", "warp-drive"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown --variants" in bad.stderr and "Traceback" not in bad.stderr
