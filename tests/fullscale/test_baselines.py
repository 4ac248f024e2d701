"""Closed-form denoisers of the locality ladder (issue 14, section 2): fullscale.baselines, fullscale.ladder,
``dmrules baseline``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from fullscale import baselines as B


def _data(n=5, c=3, h=6, w=6, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=g, dtype=torch.float64),
            torch.randn(b, c, h, w, generator=g, dtype=torch.float64))


def _brute_local(train, x, ab, patch, equivariant=False):
    """Per-pixel loops straight from related-work.md (LS: one candidate per image; ELS: every patch)."""
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    n, c, h, w = train.shape
    rows, cols = B._window_starts(h, patch), B._window_starts(w, patch)
    if equivariant:
        cand = torch.stack([train[i, :, r:r + patch, q:q + patch] for i in range(n)
                            for r in range(h - patch + 1) for q in range(w - patch + 1)])
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        for y in range(h):
            for xx in range(w):
                r, q = int(rows[y]), int(cols[xx])
                win = x[b, :, r:r + patch, q:q + patch]
                pool = cand if equivariant else train[:, :, r:r + patch, q:q + patch]
                wt = torch.softmax(-((win - a * pool) ** 2).flatten(1).sum(1) / (2 * s * s), 0)
                vals = cand[:, :, y - r, xx - q] if equivariant else train[:, :, y, xx]
                out[b, :, y, xx] = (wt[:, None] * vals).sum(0)
    return out


@pytest.mark.parametrize("patch", [1, 2, 3, 5])
def test_local_matches_per_pixel_definition(patch):
    train, x = _data()
    got = B.LocalDenoiser(train, patch, chunk=2)(x, 0.3)
    assert torch.allclose(got, _brute_local(train, x, 0.3, patch), atol=1e-10)


def test_els_matches_per_pixel_definition():
    train, x = _data(n=3, b=2)
    got = B.LocalDenoiser(train, 3, equivariant=True, chunk=1)(x, 0.5)
    assert torch.allclose(got, _brute_local(train, x, 0.5, 3, equivariant=True), atol=1e-10)


@pytest.mark.parametrize("ab", [0.02, 0.5, 0.98])
def test_local_whole_image_equals_empirical(ab):
    """P covering the whole image: the general LS (and ELS) path is the empirical denoiser."""
    train, x = _data()
    emp = B.EmpiricalDenoiser(train, chunk=2)(x, ab)
    assert torch.allclose(B.LocalDenoiser(train, 6, general=True)(x, ab), emp, atol=1e-10)
    assert torch.allclose(B.LocalDenoiser(train, 6, equivariant=True, general=True)(x, ab), emp, atol=1e-10)
    assert torch.allclose(B.LocalDenoiser(train, 6)(x, ab), emp, atol=1e-12)


def test_empirical_definition_and_chunking():
    train, x = _data(n=7)
    ab = 0.4
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    d = ((x.flatten(1)[:, None] - a * train.flatten(1)[None]) ** 2).sum(-1)
    ref = (torch.softmax(-d / (2 * s * s), 1) @ train.flatten(1)).view_as(x)
    for chunk in (1, 3, 7, 100):
        assert torch.allclose(B.EmpiricalDenoiser(train, chunk=chunk)(x, ab), ref, atol=1e-12)


def test_small_noise_returns_nearest_training_image():
    train, _ = _data(n=6)
    x = math.sqrt(0.9999) * train[[2, 4]] + 0.01 * torch.randn(2, 3, 6, 6, dtype=torch.float64)
    assert torch.allclose(B.EmpiricalDenoiser(train)(x, 0.9999), train[[2, 4]], atol=1e-6)
    assert torch.allclose(B.LocalDenoiser(train, 3)(x, 0.9999), train[[2, 4]], atol=1e-6)


def test_gaussian_equals_closed_form_on_gaussian_data():
    g = torch.Generator().manual_seed(1)
    d, n = 12, 4000
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    train = (mu + torch.randn(n, d, generator=g, dtype=torch.float64) @ mix.T).view(n, 3, 2, 2)
    x = torch.randn(5, 3, 2, 2, generator=g, dtype=torch.float64)
    ab = 0.3
    a, s = math.sqrt(ab), math.sqrt(1 - ab)
    got = B.GaussianDenoiser(train)(x, ab).flatten(1)
    flat = train.flatten(1)
    m_hat = flat.mean(0)
    sig_hat = (flat - m_hat).T @ (flat - m_hat) / n
    eye = torch.eye(d, dtype=torch.float64)
    closed = m_hat + (a * sig_hat @ torch.linalg.solve(a * a * sig_hat + s * s * eye, (x.flatten(1) - a * m_hat).T)).T
    assert torch.allclose(got, closed, atol=1e-10)
    # and, with n = 4000 draws, close to the true law's posterior mean E[x0 | xt]
    sig = mix @ mix.T
    true = mu + (a * sig @ torch.linalg.solve(a * a * sig + s * s * eye, (x.flatten(1) - a * mu).T)).T
    assert (got - true).abs().max() < 0.15


def test_net_fn_is_tweedie():
    from theory import ddpm_schedule

    train, x = _data()
    den = B.EmpiricalDenoiser(train)
    f = B.net_fn(den)
    t = torch.full((x.shape[0],), 500)
    ab = float(ddpm_schedule().alpha_bar[500])
    eps = f(x.float(), t)
    x0 = (x.float() - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    assert torch.allclose(x0.double(), den(x, ab), atol=1e-4)
    with pytest.raises(ValueError):
        f(x.float(), torch.tensor([1, 2, 3, 4]))


def test_bad_arguments_raise():
    train, _ = _data()
    with pytest.raises(ValueError):
        B.LocalDenoiser(train, 7)  # larger than the 6 px image
    with pytest.raises(ValueError):
        B.LocalDenoiser(train, 0)
    with pytest.raises(ValueError):
        B.build("local", train)  # no patch
    with pytest.raises(ValueError):
        B.build("gaussian", train, patch=3)
    with pytest.raises(ValueError):
        B.build("nearest", train)
    with pytest.raises(ValueError):
        B.EmpiricalDenoiser(train)(train, 1.0)
    with pytest.raises(ValueError):
        B.EmpiricalDenoiser(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))


# ---- sampling with the existing samplers ---------------------------------------------------------
def _rt():
    from fullscale import runtime
    from fullscale.presets import Performance

    return runtime.setup(Performance(device="cpu", bf16=False, compile=False), distributed=False)


def test_empirical_sampling_reproduces_training_images(tmp_path):
    """Issue 14 test: pixel NN distance ~ 0 for >= 95 % of samples at small n."""
    from fullscale import ladder
    from fullscale.evaluate.novelty import pixel_nn

    ladder.sample_baseline("A", 8, "empirical", tmp_path / "e", _rt(), n=24, steps=20, batch=12, log=lambda m: None)
    samples = np.load(tmp_path / "e" / "images.npy")
    assert samples.shape == (24, 32, 32, 3) and samples.dtype == np.uint8
    d = pixel_nn(samples, ladder.training_images("A", 8))
    assert np.mean(d < 2 / 255) >= 0.95, d


def test_baseline_samples_do_not_depend_on_batch_and_resume(tmp_path):
    from fullscale import ladder

    logs = []
    kw = dict(patch=3, n=4, steps=3, log=logs.append)
    ladder.sample_baseline("C", 6, "local", tmp_path / "a", _rt(), batch=4, **kw)
    ladder.sample_baseline("C", 6, "local", tmp_path / "b", _rt(), batch=1, **kw)
    a, b = np.load(tmp_path / "a" / "images.npy"), np.load(tmp_path / "b" / "images.npy")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float summation order only
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["request"]["baseline"] == "local" and meta["request"]["patch"] == 3 and "provenance" in meta
    ladder.sample_baseline("C", 6, "local", tmp_path / "a", _rt(), batch=4, **kw)
    assert "skipped" in logs[-1]
    with pytest.raises(ValueError, match="another request"):
        ladder.sample_baseline("C", 6, "gaussian", tmp_path / "a", _rt(), n=4, steps=3, log=logs.append)


def test_ladder_rows_and_resume(tmp_path):
    import pandas as pd

    from fullscale import ladder

    logs = []
    kw = dict(rungs=(("empirical", None), ("local", 32), ("gaussian", None)), n_samples=6, steps=4, log=logs.append)
    df = ladder.run_ladder(["A"], [4], tmp_path, _rt(), **kw)
    assert list(df.rung) == ["fresh", "empirical", "local-P32", "gaussian"]
    for col in ("coarse_violation_rate", "conform_pct", "r2", "copy_rate", "novel_frac", "parse_rate"):
        assert col in df
    emp, p32 = df.set_index("rung").loc["empirical"], df.set_index("rung").loc["local-P32"]
    assert emp.copy_rate == p32.copy_rate  # P = 32 is the whole image: the empirical denoiser
    n_logs = len(logs)
    df2 = ladder.run_ladder(["A"], [4], tmp_path, _rt(), **kw)
    assert len(logs) == n_logs + 1 and "no U-Net samples" in logs[-1]  # nothing re-sampled
    pd.testing.assert_frame_equal(df2, df)
    # a U-Net run folder (here faked with training images as its "samples") adds its row on a re-run
    run = tmp_path / "unet" / "A-n4"
    (run / "samples").mkdir(parents=True)
    np.save(run / "samples" / "images.npy", np.repeat(ladder.training_images("A", 4), 2, axis=0))
    (run / "samples" / "meta.json").write_text(json.dumps({"request": {"n": 8, "seed": 0, "sampler": "ddim",
                                                                        "steps": 100, "eta": 1.0}}))
    (run / "config.json").write_text(json.dumps({"config": {"model": "unet-small-p2", "epochs": 10, "n_train": 4}}))
    df3 = ladder.run_ladder(["A"], [4], tmp_path, _rt(), unet_root=tmp_path / "unet", **kw)
    unet = df3.set_index("rung").loc["unet"]
    assert unet.copy_rate == 1.0 and unet.n_samples == 6 and unet.unet_images_seen == 40
    # --collect: finished rows only, nothing sampled (a new rung and a new cell are left out)
    more = dict(kw, rungs=kw["rungs"] + (("local", 3),))
    df4 = ladder.run_ladder(["A", "C"], [4], tmp_path, _rt(), unet_root=tmp_path / "unet", sample=False, **more)
    pd.testing.assert_frame_equal(df4, df3)
    assert not (tmp_path / "A-n4" / "local-P3").exists() and not (tmp_path / "C-n4").exists()


# ---- CLI -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["baseline", "--denoiser", "local", "--task", "A", "--n", "8"],  # no --patch
    ["baseline", "--denoiser", "gaussian", "--patch", "3", "--task", "A", "--n", "8"],
    ["baseline", "--denoiser", "local", "--patch", "33", "--task", "A", "--n", "8"],
    ["baseline", "--denoiser", "local", "--patch", "0", "--task", "A", "--n", "8"],
    ["baseline", "--denoiser", "empirical", "--task", "E", "--n", "8"],
    ["baseline", "--denoiser", "empirical", "--task", "A", "--n", "-1"],
    ["baseline", "--denoiser", "empirical", "--task", "A", "--n", "8", "--eta", "nan"],
    ["baseline", "--denoiser", "copy", "--task", "A", "--n", "8"],
    ["ladder", "--tasks", "A", "--n", "8", "--patch", "40"],
    ["ladder", "--tasks", "Z", "--n", "8"],
])
def test_bad_arguments_exit_2(argv, tmp_path, capsys):
    from dmrules.cli import main

    out = ["--work", str(tmp_path / "w"), "--out", str(tmp_path / "t.parquet")] if argv[0] == "ladder" else \
        ["--out", str(tmp_path / "o")]
    try:
        rc = main(argv + out)
    except SystemExit as exc:  # argparse's own errors exit from inside main
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0] and "Traceback" not in err[0]


def test_cli_baseline_writes_sample_format(tmp_path, capsys):
    from dmrules.cli import main

    out = tmp_path / "g"
    argv = ["baseline", "--denoiser", "gaussian", "--task", "B", "--n", "16", "--samples", "3", "--steps", "5",
            "--out", str(out)]
    assert main(argv) == 0
    assert np.load(out / "images.npy").shape == (3, 32, 32, 3)
    assert main(["evaluate", "--task", "B", str(out / "images.npy"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 3
