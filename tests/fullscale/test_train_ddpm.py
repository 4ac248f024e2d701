"""Training: determinism, resume after SIGKILL, NaN guard, config checks, DDP with 2 gloo processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fullscale import presets, runtime, train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(**kw):
    base = dict(n_train=32, epochs=2, batch=8, ckpt_every_kimg=0.016, log_every_kimg=0.016)
    base.update(kw)
    return presets.make_config("A", "unet-small", "smoke", **base)


def _images(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _rt():
    return runtime.setup(presets.Performance(device="cpu"), distributed=False)


def _state(run):
    return torch.load(Path(run) / "checkpoint.pt", weights_only=True)




def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, same):
    cfg, rt, images = _cfg(), _rt(), _images()
    train.train(cfg, tmp_path / "full", images, rt, log=lambda m: None)
    part = train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None, stop_after_images=32)
    assert part["images"] == 32 and _state(tmp_path / "cut")["images"] == 32
    logs = []
    rest = train.train(cfg, tmp_path / "cut", images, rt, log=logs.append)
    assert rest["resumed"] and any("resuming" in m for m in logs)
    a, b = _state(tmp_path / "full"), _state(tmp_path / "cut")
    for key in ("model", "ema", "opt", "step", "images"):
        assert same(a[key], b[key]), key
    losses = lambda run: [json.loads(ln)["loss"] for ln in (run / "stats.jsonl").read_text().splitlines()]  # noqa: E731
    assert losses(tmp_path / "full") == losses(tmp_path / "cut")
    again = train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None)
    assert again["done_already"]


def test_training_reduces_the_loss(tmp_path):
    from fullscale import tasks

    images, _ = tasks.render("A", 64, seed=3)
    cfg = _cfg(n_train=64, epochs=5, batch=8, lr=2e-3, log_every_kimg=0.08, ckpt_every_kimg=0.32)
    train.train(cfg, tmp_path, images, _rt(), log=lambda m: None)
    loss = [json.loads(ln)["loss"] for ln in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert len(loss) == 4 and loss[-1] < 0.5 * loss[0], loss


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg, rt, images = _cfg(epochs=3), _rt(), _images()  # 12 steps, checkpoint every 2
    real, calls = train.EpsilonLoss.__call__, []

    def poisoned(self, net, x0, keys):
        calls.append(1)
        out = real(self, net, x0, keys)
        return out * float("nan") if len(calls) >= 6 else out

    monkeypatch.setattr(train.EpsilonLoss, "__call__", poisoned)
    with pytest.raises(train.TrainingDiverged, match="loss became nan.*last good checkpoint"):
        train.train(cfg, tmp_path, images, rt, log=lambda m: None)
    state = _state(tmp_path)
    assert state["step"] == 4  # checkpoints at steps 2 and 4; step 6 was poisoned and not saved
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_checkpoint_of_another_config_is_refused(tmp_path):
    cfg, rt, images = _cfg(), _rt(), _images()
    train.train(cfg, tmp_path, images, rt, log=lambda m: None, stop_after_images=16)
    with pytest.raises(ValueError, match="another config"):
        train.train(_cfg(lr=5e-4), tmp_path, images, rt, log=lambda m: None)


def test_cli_refuses_a_run_made_with_another_config(tmp_path, run_cli):
    run = tmp_path / "run"
    rc, out, err = run_cli("train", "--task", "A", "--preset", "smoke", "--out", run, "--epochs", "0.25", "--device", "cpu")
    assert rc == 0, err
    rc, out, err = run_cli("train", "--task", "A", "--preset", "smoke", "--out", run, "--epochs", "0.25", "--lr", "0.5")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "another config" in err


def test_cli_one_line_errors(run_cli, tmp_path):
    for argv in (["--task", "Z"], ["--task", "A", "--model", "vit"], ["--task", "A", "--preset", "huge"],
                 ["--task", "A", "--batch", "0"], ["--task", "A", "--lr", "-1"],
                 ["--task", "A", "--sampler", "ddpm", "--sample-steps", "10"]):
        rc, out, err = run_cli("train", *argv, "--out", tmp_path / "x")
        assert rc == 2 and len(err.strip().splitlines()) == 1, (argv, err)


def test_dry_run_prints_parameters(run_cli, tmp_path):
    rc, out, err = run_cli("train", "--task", "B", "--model", "dit-s2", "--preset", "paper", "--out", tmp_path, "--dry-run")
    assert rc == 0 and "32,471,436 parameters" in out and "1,600,000 images" in out
    rc, out, err = run_cli("train", "--task", "A", "--model", "unet", "--preset", "cpu", "--out", tmp_path, "--dry-run")
    assert "resolves to unet-small-p2" in out and "160,000 images" in out


def _cmd(run, *extra):
    return [sys.executable, "-m", "dmrules", "train", "--task", "A", "--preset", "smoke", "--out", str(run),
            "--threads", "1", "--device", "cpu", *extra]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_continues(tmp_path, same):
    run, ref = tmp_path / "run", tmp_path / "ref"
    extra = ["--epochs", "12", "--ckpt-every-kimg", "0.032"]  # 48 steps of 8, a checkpoint every 4
    proc = subprocess.Popen(_cmd(run, *extra), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    deadline = time.time() + 300
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _state(run)["images"]
    assert 0 < killed_at < 384, "the run finished before it could be killed; make it longer"
    out = subprocess.run(_cmd(run, *extra), env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert f"resuming from {run / 'checkpoint.pt'} at {killed_at / 1000:.1f} kimg" in out.stdout
    assert subprocess.run(_cmd(ref, *extra), env=_env(), capture_output=True, cwd=ROOT).returncode == 0
    a, b = _state(run), _state(ref)
    for key in ("model", "ema", "opt", "images"):
        assert same(a[key], b[key]), key


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    """torchrun with 2 gloo processes (batch 4 each) against 1 process with the same global batch 8.

    Identical data and noise per global position; only the gradient reduction order differs, so
    we allow a relative parameter difference of 1e-4 after 8 Adam steps (measured: ~1e-6)."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert subprocess.run(_cmd(one), env=_env(), capture_output=True, cwd=ROOT).returncode == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "dmrules", *_cmd(two)[3:]]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = _state(one), _state(two)
    assert a["images"] == b["images"] == 64
    num = sum(float((a["model"][k] - b["model"][k]).double().norm() ** 2) for k in a["model"]) ** 0.5
    den = sum(float(a["model"][k].double().norm() ** 2) for k in a["model"]) ** 0.5
    assert num / den < 1e-4, num / den
    la = [json.loads(ln)["loss"] for ln in (one / "stats.jsonl").read_text().splitlines()]
    lb = [json.loads(ln)["loss"] for ln in (two / "stats.jsonl").read_text().splitlines()]
    assert np.allclose(la, lb, rtol=1e-4)


def test_centred_training_keeps_the_mean_image_in_the_checkpoint(tmp_path):
    images = _images()
    train.train(_cfg(center=True), tmp_path, images, _rt(), log=lambda m: None, stop_after_images=8)
    offset = _state(tmp_path)["offset"]
    assert offset.shape == (1, 3, 32, 32)
    assert torch.allclose(offset, torch.from_numpy(images).double().mean(0).permute(2, 0, 1)[None].float() / 127.5 - 1,
                          atol=1e-6)


def test_stats_cadence_through_the_loop_skeleton(tmp_path, same):
    """The trainer runs on dmrules.core.loop.ResumableLoop.run (issue 13): a stats line every log
    interval, at every checkpoint and at each stop (stop_after included), the same keys in the same
    order; a run cut at step 7 and resumed writes the lines, losses and checkpoint of an uncut one."""
    cfg, rt, images = _cfg(epochs=3, log_every_kimg=0.024, ckpt_every_kimg=0.04), _rt(), _images()  # log 3, ckpt 5
    train.train(cfg, tmp_path / "whole", images, rt, log=lambda m: None)
    train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None, stop_after_images=56)  # step 7
    assert [json.loads(ln)["step"] for ln in (tmp_path / "cut" / "stats.jsonl").read_text().splitlines()] == [3, 5, 6, 7]
    train.train(cfg, tmp_path / "cut", images, rt, log=lambda m: None)
    lines = {run: [json.loads(ln) for ln in (tmp_path / run / "stats.jsonl").read_text().splitlines()]
             for run in ("whole", "cut")}
    assert [r["step"] for r in lines["whole"]] == [3, 5, 6, 9, 10, 12]
    assert [r["step"] for r in lines["cut"]] == [3, 5, 6, 7, 9, 10, 12]
    keys = ["kimg", "step", "loss", "lr", "img_per_s", "sec_per_kimg", "elapsed_s"]
    assert all(list(r) == keys for run in lines.values() for r in run)
    # the line at 7 averages steps 6-7 only; every other line is the uncut run's
    whole = {r["step"]: r["loss"] for r in lines["whole"]}
    assert all(whole[r["step"]] == r["loss"] for r in lines["cut"] if r["step"] not in (7, 9))
    assert same(_state(tmp_path / "whole"), _state(tmp_path / "cut"))
