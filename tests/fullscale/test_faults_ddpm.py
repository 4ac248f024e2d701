"""Fault injection, part 2 (issue 12): DDPM runs, sample sets and classifiers under corrupt, foreign
and stale state, kills at random points, two writers, non-finite weights. Smoke preset, tiny n."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch

from dmrules.cli import main
from fullscale import presets, runtime, train

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")
CPU = ["--device", "cpu", "--threads", "1"]
TRAIN = ["train", "--task", "A", "--model", "unet", "--preset", "smoke", *CPU]
SAMPLE = ["--n", "4", "--sampler", "ddim", "--steps", "2", "--no-png", *CPU]


def _cli(capsys, *argv):
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """A finished smoke run (Task A, unet-small, 64 images)."""
    run = tmp_path_factory.mktemp("faults") / "A"
    assert main([*TRAIN, "--out", str(run)]) == 0
    return run


def _copy(run, dest):
    shutil.copytree(run, dest)
    return dest


def _rt():
    return runtime.setup(presets.Performance(device="cpu", threads=1), distributed=False)


def _images(n=32):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


# ---- class 1: non-finite values -------------------------------------------------------------------


@pytest.mark.parametrize("flag, value", [("--ema-halflife-kimg", "nan"), ("--ema-halflife-kimg", "-1"),
                                         ("--ema-halflife-kimg", "inf"), ("--warmup-kimg", "nan"),
                                         ("--warmup-kimg", "-1"), ("--lr", "nan"), ("--sample-eta", "5")])
def test_non_finite_training_options_stop_before_any_work(flag, value, capsys, tmp_path):
    rc, _, err = _cli(capsys, *TRAIN, f"{flag}={value}", "--out", tmp_path / "R")
    assert rc == 2 and flag in _one_line(err) and not (tmp_path / "R").exists()


@pytest.mark.parametrize("eta", ["nan", "5", "-1"])
def test_sample_eta_out_of_range_is_refused(eta, run_a, capsys, tmp_path):
    rc, _, err = _cli(capsys, "sample", run_a, *SAMPLE, f"--eta={eta}", "--out", tmp_path / "S")
    assert rc == 2 and "--eta" in _one_line(err) and not (tmp_path / "S").exists()


def test_non_finite_ema_weights_stop_the_run(tmp_path, monkeypatch):
    cfg = presets.make_config("A", "unet-small", "smoke", ckpt_every_kimg=0.016)
    real = train.EMA.update

    def poisoned(self, beta):
        real(self, beta)
        with torch.no_grad():
            self._dst[0].fill_(float("nan"))

    monkeypatch.setattr(train.EMA, "update", poisoned)
    with pytest.raises(train.TrainingDiverged, match="EMA weights became non-finite"):
        train.train(cfg, tmp_path, _images(), _rt(), log=lambda m: None)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_non_finite_optimiser_state_stops_the_run(tmp_path, monkeypatch):
    cfg = presets.make_config("A", "unet-small", "smoke", ckpt_every_kimg=0.016)
    real = train.Trainer.step

    def poisoned(self, step):
        loss = real(self, step)
        next(iter(self.opt.state.values()))["exp_avg_sq"].fill_(float("inf"))
        return loss

    monkeypatch.setattr(train.Trainer, "step", poisoned)
    with pytest.raises(train.TrainingDiverged, match="optimiser state became non-finite"):
        train.train(cfg, tmp_path, _images(), _rt(), log=lambda m: None)
    assert not (tmp_path / "checkpoint.pt").exists()


# ---- class 2: sampling checks what it samples -----------------------------------------------------


@pytest.mark.parametrize("other, field", [({"task": "B"}, "task"), ({"lr": 5e-4}, "lr"),
                                         ({"model": "unet-small-p2"}, "model")])
def test_a_foreign_checkpoint_is_refused_by_sample_and_train(other, field, run_a, capsys, tmp_path):
    task, model = other.get("task", "A"), other.get("model", "unet-small")
    cfg = presets.make_config(task, model, "smoke", **{k: v for k, v in other.items() if k == "lr"})
    train.train(cfg, tmp_path / "other", _images(), _rt(), log=lambda m: None, stop_after_images=8)
    run = _copy(run_a, tmp_path / "A")
    shutil.copy(tmp_path / "other" / "checkpoint.pt", run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    rc, _, err = _cli(capsys, "sample", run, *SAMPLE, "--out", tmp_path / "S")
    line = _one_line(err)
    assert rc == 2 and "trained with another config" in line and field in line, line
    rc, _, err = _cli(capsys, *TRAIN, "--out", run)
    assert rc == 2 and "another config" in _one_line(err)
    assert (run / "checkpoint.pt").read_bytes() == before and not (tmp_path / "S").exists()


# ---- class 5: corrupt state -----------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["zero", "truncated", "garbage"])
def test_a_damaged_checkpoint_is_one_line_for_train_and_sample(damage, run_a, capsys, tmp_path):
    run = _copy(run_a, tmp_path / "A")
    good = (run / "checkpoint.pt").read_bytes()
    bad = {"zero": b"", "truncated": good[: len(good) // 3], "garbage": b"\x00junk" * 99}[damage]
    (run / "checkpoint.pt").write_bytes(bad)
    for argv in ([*TRAIN, "--out", run], ["sample", run, *SAMPLE, "--out", tmp_path / "S"]):
        rc, _, err = _cli(capsys, *argv)
        line = _one_line(err)
        assert rc == 2 and f"{run / 'checkpoint.pt'} is not a readable DDPM checkpoint" in line, line
        assert "move it away" in line and (run / "checkpoint.pt").read_bytes() == bad


def test_a_truncated_config_names_the_file(run_a, capsys, tmp_path):
    run = _copy(run_a, tmp_path / "A")
    (run / "config.json").write_text('{"config": {"task": "A", ')
    for argv in ([*TRAIN, "--out", run], ["sample", run, *SAMPLE, "--out", tmp_path / "S"]):
        rc, _, err = _cli(capsys, *argv)
        assert rc == 2 and str(run / "config.json") in _one_line(err), err
    assert (run / "config.json").read_text() == '{"config": {"task": "A", '


def test_a_truncated_classifier_checkpoint_is_one_line(capsys, tmp_path):
    c = tmp_path / "C"
    argv = ["classifier", "train", "--task", "A", "--arch", "mlp", "--noisy", "--preset", "smoke", "--steps", "2",
            "--device", "cpu", "--out", c]
    assert _cli(capsys, *argv)[0] == 0
    cut = (c / "classifier.pt").read_bytes()[:300]
    (c / "classifier.pt").write_bytes(cut)
    (c / "metrics.json").unlink()  # so that train resumes from the checkpoint
    rc, _, err = _cli(capsys, *argv)
    assert rc == 2 and f"{c / 'classifier.pt'} is not a readable classifier checkpoint" in _one_line(err)
    assert (c / "classifier.pt").read_bytes() == cut


# ---- class 3: sample sets never go stale or mix checkpoints ---------------------------------------


def test_sample_sets_never_resume_or_skip_across_a_checkpoint_change(capsys, tmp_path, monkeypatch):
    from fullscale import diffusion

    run, out = tmp_path / "R", tmp_path / "S"
    cfg = presets.make_config("A", "unet-small", "smoke")
    from fullscale import pipeline

    pipeline.check_config(cfg, run)
    train.train(cfg, run, pipeline.ensure_data(cfg, run, log=lambda m: None), _rt(), log=lambda m: None,
                stop_after_images=32)
    # a sample killed after its first part (batch 2 of 4), from the half-trained weights
    real, calls = diffusion.ddim_sample, []

    def die_after_one(*a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(diffusion, "ddim_sample", die_after_one)
    argv = ["sample", run, *SAMPLE, "--batch", "2", "--out", out]
    assert _cli(capsys, *argv)[0] == 130
    monkeypatch.undo()
    assert len(list(out.glob("parts-*/part-*.npy"))) == 1
    assert _cli(capsys, *TRAIN, "--out", run)[0] == 0  # training continues to the end
    rc, stdout, _ = _cli(capsys, *argv)
    assert rc == 0 and "resuming" not in stdout and "discarding 1 unfinished part" in stdout, stdout
    rc, stdout, _ = _cli(capsys, "sample", run, *SAMPLE, "--batch", "4", "--out", tmp_path / "fresh")
    assert np.array_equal(np.load(out / "images.npy"), np.load(tmp_path / "fresh" / "images.npy"))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["request"]["checkpoint"]["images"] == 64
    rc, stdout, _ = _cli(capsys, *argv)
    assert rc == 0 and "skipped" in stdout
    # the run's checkpoint changes under a finished set: refused, the set is kept
    before = (out / "images.npy").read_bytes()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["step"], state["images"] = 4, 32
    torch.save(state, run / "checkpoint.pt")
    rc, _, err = _cli(capsys, *argv)
    line = _one_line(err)
    assert rc == 2 and "its checkpoint is now at step 4" in line and "new --out" in line, line
    assert (out / "images.npy").read_bytes() == before


def test_sample_does_not_overwrite_a_foreign_images_npy(run_a, capsys, tmp_path):
    out = tmp_path / "S"
    out.mkdir()
    np.save(out / "images.npy", np.ones((2, 32, 32, 3), np.uint8))
    before = (out / "images.npy").read_bytes()
    rc, _, err = _cli(capsys, "sample", run_a, *SAMPLE, "--out", out)
    assert rc == 2 and "not written by `dmrules sample`" in _one_line(err)
    assert (out / "images.npy").read_bytes() == before


# ---- class 8: determinism -------------------------------------------------------------------------


def test_identical_runs_write_byte_identical_checkpoints(tmp_path):
    cfg = presets.make_config("A", "unet-small", "smoke")
    for name in ("a", "b"):
        train.train(cfg, tmp_path / name, _images(), _rt(), log=lambda m: None, stop_after_images=16)
    assert (tmp_path / "a" / "checkpoint.pt").read_bytes() == (tmp_path / "b" / "checkpoint.pt").read_bytes()


def test_a_resumed_run_writes_the_same_checkpoint_bytes(tmp_path):
    """Stopped at 16 images and resumed to 32 = straight to 32, byte for byte (R.torch_load interns the
    unpickled keys: pickle memoises by identity, and a fresh "step" string used to make the resumed file
    9 bytes longer)."""
    cfg = presets.make_config("A", "unet-small", "smoke")
    train.train(cfg, tmp_path / "a", _images(), _rt(), log=lambda m: None, stop_after_images=32)
    train.train(cfg, tmp_path / "b", _images(), _rt(), log=lambda m: None, stop_after_images=16)
    train.train(cfg, tmp_path / "b", _images(), _rt(), log=lambda m: None, stop_after_images=32)
    assert (tmp_path / "a" / "checkpoint.pt").read_bytes() == (tmp_path / "b" / "checkpoint.pt").read_bytes()


# ---- class 6 and kills: subprocesses --------------------------------------------------------------


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _dmrules(*argv):
    return [sys.executable, "-m", "dmrules", *[str(a) for a in argv]]


@pytest.mark.slow
def test_two_writers_on_one_run(tmp_path):
    run = tmp_path / "R"
    first = subprocess.Popen(_dmrules(*TRAIN, "--epochs", "40", "--out", run), env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint.pt").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first writer ended too early"
        second = subprocess.run(_dmrules(*TRAIN, "--epochs", "40", "--out", run), env=_env(), capture_output=True,
                                text=True, cwd=ROOT, timeout=120)
        line = _one_line(second.stderr)
        assert second.returncode == 2 and f"in use by another dmrules process (pid {first.pid})" in line, line
    finally:
        first.kill()
        first.wait()
    stats = [json.loads(ln) for ln in (run / "stats.jsonl").read_text().splitlines() if ln.strip()]
    kimg = [s["kimg"] for s in stats]
    assert kimg == sorted(kimg)  # one writer: no interleaved lines


@pytest.mark.slow
def test_sample_killed_at_a_random_point_resumes_bit_for_bit(run_a, tmp_path, capsys):
    ref, out = tmp_path / "ref", tmp_path / "S"
    argv = ["sample", run_a, "--n", "6", "--batch", "1", "--sampler", "ddim", "--steps", "40", "--seed", "7",
            "--no-png", *CPU]
    assert _cli(capsys, *argv, "--out", ref)[0] == 0
    delay = random.Random(os.getpid()).uniform(0.0, 1.5)  # a random point after the first part
    proc = subprocess.Popen(_dmrules(*argv, "--out", out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while not list(out.glob("parts-*/part-*.npy")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rc, stdout, _ = _cli(capsys, *argv, "--out", out)
    assert rc == 0, stdout
    assert np.load(out / "images.npy").tobytes() == np.load(ref / "images.npy").tobytes()
    assert not list(out.glob(".*.tmp")) and not list(out.glob("parts-*"))


@pytest.mark.slow
def test_sims_sweep_killed_at_a_random_point_resumes_bit_for_bit(tmp_path):
    from dmrules import results as R

    argv = ["sims", "rules", "--widths", "5,10", "--ns", "16", "--steps", "100", "--networks", "patchwise,joint",
            "--activations", "quadratic", "--seeds", "0", "--n-eval", "32"]
    ref, out = tmp_path / "ref.parquet", tmp_path / "cut.parquet"
    assert subprocess.run(_dmrules(*argv, "--out", ref), env=_env(), capture_output=True, cwd=ROOT).returncode == 0
    proc = subprocess.Popen(_dmrules(*argv, "--out", out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120  # wait for the sweep to start (its parts folder), then kill at a random point
    while not list(tmp_path.glob(".cut.parquet.parts-*")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run(_dmrules(*argv, "--out", out), env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    a, b = R.read_table(ref), R.read_table(out)
    assert a.equals(b)
    assert not list(tmp_path.glob(".cut.parquet.*"))  # no parts folder, temp or lock file left


@pytest.mark.slow
def test_train_killed_at_a_random_point_resumes_bit_for_bit(tmp_path, capsys):
    """SIGKILL anywhere (rendering, a step, a checkpoint write), then the same command: the final
    checkpoint holds the same state, bit for bit, as an uninterrupted run's, and no temporary file is left."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    argv = [*TRAIN, "--epochs", "12", "--ckpt-every-kimg", "0.032"]  # 48 steps, a checkpoint every 4
    assert _cli(capsys, *argv, "--out", ref)[0] == 0
    proc = subprocess.Popen(_dmrules(*argv, "--out", run), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while not (run / "config.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 2.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rc, _, err = _cli(capsys, *argv, "--out", run)
    assert rc == 0, err
    # every tensor bit for bit and every value equal (the file's bytes too since the optimiser keys are
    # interned on load: test_a_resumed_run_writes_the_same_checkpoint_bytes)
    _assert_same_state(torch.load(run / "checkpoint.pt", weights_only=True),
                       torch.load(ref / "checkpoint.pt", weights_only=True))
    losses = lambda r: [json.loads(ln)["loss"] for ln in (r / "stats.jsonl").read_text().splitlines()]  # noqa: E731
    assert losses(run) == losses(ref)
    assert not [p for p in run.rglob(".*") if p.name.endswith(".tmp")]


def _assert_same_state(got, want, path="checkpoint"):
    assert type(got) is type(want), path
    if torch.is_tensor(want):
        assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want), path
    elif isinstance(want, dict):
        assert list(got) == list(want), path
        for k in want:
            _assert_same_state(got[k], want[k], f"{path}/{k}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same_state(g, w, f"{path}[{i}]")
    else:
        assert got == want, path


def test_a_run_killed_before_its_first_checkpoint_starts_its_stats_afresh(tmp_path, capsys):
    """A kill after some stats lines but before the first checkpoint: the restart redoes those steps,
    so their old lines must go (they did not: the restart appended a second copy; the random-kill
    test above hit this now and then)."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    argv = [*TRAIN, "--epochs", "4"]
    assert _cli(capsys, *argv, "--out", ref)[0] == 0
    run.mkdir()
    (run / "config.json").write_bytes((ref / "config.json").read_bytes())
    lines = (ref / "stats.jsonl").read_text().splitlines()
    (run / "stats.jsonl").write_text(lines[0] + "\n" + lines[1][:10])  # one line, then a torn one; no checkpoint
    rc, _, err = _cli(capsys, *argv, "--out", run)
    assert rc == 0, err
    losses = lambda r: [json.loads(ln)["loss"] for ln in (r / "stats.jsonl").read_text().splitlines()]  # noqa: E731
    assert losses(run) == losses(ref)
