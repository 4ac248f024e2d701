"""Sampling images from a trained run with per-sample seeds, in resumable chunks.

Sample k of a call with ``seed=S`` uses seed S + k (edm's ``--seeds``): its initial noise and every
ancestral noise draw are functions of that seed only (fullscale.rng), so an image is the same
whatever the batch size, the chunking, or whether the call was interrupted and resumed.

Output directory: ``images.npy`` (uint8 [N, H, W, 3]), ``meta.json`` (run, sampler, steps, seeds,
weights, wall time, provenance), ``png/<seed>.png`` when asked. While running, finished batches are
kept under ``parts-<hash>/``; a re-run picks them up and only samples what is missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from dmrules import results as R
from fullscale import diffusion
from fullscale.models import build
from fullscale.presets import RunConfig
from fullscale.runtime import Runtime, inference_fn, prepare
from fullscale.train import load_checkpoint


def load_run(run_dir) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"{run_dir} is not a training run (no config.json); train one with `dmrules train`")
    return RunConfig.from_json(json.loads(path.read_text())["config"])


def load_denoiser(run_dir, rt: Runtime, weights: str = "ema"):
    """(net, config) from RUN/checkpoint.pt: the EMA weights (default) or the raw ones."""
    cfg = load_run(run_dir)
    ckpt = load_checkpoint(run_dir)
    if ckpt is None:
        raise ValueError(f"{run_dir} has no checkpoint yet; run `dmrules train` first")
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be ema or raw, got {weights!r}")
    net = build(cfg.model, cfg.image_size)
    net.load_state_dict(ckpt["ema" if weights == "ema" else "model"])
    done = int(ckpt["images"]) >= cfg.total_images
    return prepare(net, rt), cfg, {"images": int(ckpt["images"]), "finished": done, "offset": ckpt.get("offset")}


def sample_images(net_fn, n: int, image_size: int, rt: Runtime, *, seed: int = 0, sampler: str = "ddpm",
                  steps: int = 999, eta: float = 0.0, batch: int = 256, parts_dir=None, guide=None, weight=1.0,
                  variance: str = "beta", offset=None, log=print) -> np.ndarray:
    """uint8 [n, H, W, 3] samples; seeds seed..seed+n-1; batches padded to ``batch`` (one compiled shape)."""
    from tqdm import tqdm

    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be ddpm or ddim, got {sampler!r}")
    n_steps = 999 if sampler == "ddpm" else int(steps)
    batch = max(1, min(int(batch), n))
    shape = (3, image_size, image_size)
    parts_dir = Path(parts_dir) if parts_dir else None
    out = np.zeros((n, image_size, image_size, 3), dtype=np.uint8)
    todo = []
    for start in range(0, n, batch):
        end = min(start + batch, n)
        part = parts_dir / f"part-{start:07d}-{end:07d}.npy" if parts_dir else None
        if part is not None and part.exists():
            out[start:end] = np.load(part)
        else:
            todo.append((start, end, part))
    if parts_dir and len(todo) < -(-n // batch):
        log(f"[sample] resuming: {n - sum(e - s for s, e, _ in todo)} of {n} samples already done")
    bar = tqdm(total=sum(e - s for s, e, _ in todo) * n_steps, unit="img-step", unit_scale=True, disable=None,
               desc=f"sample {sampler} x{n_steps}", dynamic_ncols=True)
    t0, done, total = time.perf_counter(), 0, sum(e - s for s, e, _ in todo)
    for start, end, part in todo:
        seeds = torch.arange(seed + start, seed + start + batch, dtype=torch.int64, device=rt.device)  # padded
        x = diffusion.initial_noise(seeds, shape).to(rt.device)
        progress = lambda i: bar.update(end - start)  # noqa: E731
        if sampler == "ddpm":
            x0 = diffusion.ddpm_sample(net_fn, x, seeds, variance=variance, guide=guide, weight=weight,
                                       progress=progress, offset=offset)
        else:
            x0 = diffusion.ddim_sample(net_fn, x, seeds, steps=n_steps, eta=eta, guide=guide, weight=weight,
                                       progress=progress, offset=offset)
        imgs = diffusion.to_uint8(x0[: end - start]).cpu().numpy()
        out[start:end] = imgs
        if part is not None:
            with R.atomic_path(part) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, imgs)
        done += end - start
        if bar.disable:  # no terminal: one status line per batch
            el = time.perf_counter() - t0
            log(f"[sample] {done}/{total} images ({done * n_steps / el:.0f} img-steps/s, {el:.0f} s)")
    bar.close()
    return out


def write_pngs(images: np.ndarray, folder, seeds) -> None:
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for img, s in zip(images, seeds):
        with R.atomic_path(folder / f"{int(s):06d}.png") as tmp:
            Image.fromarray(img).save(tmp, format="PNG")


def save_array(path, images: np.ndarray) -> None:
    with R.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, images)


def sample_run(run_dir, out_dir, rt: Runtime, *, n: int, seed: int = 0, sampler: str = "ddpm", steps: int = 999,
               eta: float = 0.0, batch: int = 256, weights: str = "ema", png: bool = True, guide=None, weight=1.0,
               variance: str = "beta", extra_meta: dict | None = None, log=print) -> dict:
    """Sample ``n`` images from RUN into OUT (skips if OUT already holds the same request)."""
    out_dir = Path(out_dir)
    request = {"run": str(Path(run_dir).resolve()), "n": n, "seed": seed, "sampler": sampler,
               "steps": 999 if sampler == "ddpm" else steps, "eta": eta if sampler == "ddim" else None,
               "weights": weights, "variance": variance,
               **(extra_meta or {})}
    meta_path = out_dir / "meta.json"
    if (out_dir / "images.npy").exists() and meta_path.exists():
        if json.loads(meta_path.read_text()).get("request") == request:
            log(f"[sample] {out_dir / 'images.npy'} already holds these {n} samples: skipped")
            return json.loads(meta_path.read_text())
        raise ValueError(f"{out_dir} holds samples of another request; use a new --out")
    net, cfg, ck = load_denoiser(run_dir, rt, weights)
    if not ck["finished"]:
        log(f"[sample] warning: the run has seen {ck['images']:,} of {cfg.total_images:,} images (unfinished)")
    log(f"[sample] {n} images from {run_dir} ({cfg.model}, {weights} weights), {sampler} "
        f"{request['steps']} steps{f' eta {eta:g}' if sampler == 'ddim' else ''}, seeds {seed}..{seed + n - 1}, batch {batch} on {rt.describe()}")
    t0 = time.perf_counter()
    parts = out_dir / f"parts-{R.config_hash(request, 8)}"
    images = sample_images(inference_fn(net, rt), n, cfg.image_size, rt, seed=seed, sampler=sampler, steps=steps,
                           eta=eta, batch=batch, parts_dir=parts, guide=guide, weight=weight, variance=variance,
                           offset=ck["offset"], log=log)
    wall = time.perf_counter() - t0
    if png:
        write_pngs(images, out_dir / "png", range(seed, seed + n))
    save_array(out_dir / "images.npy", images)
    meta = {"request": request, "model": cfg.model, "task": cfg.task, "wall_time_s": wall,
            "img_per_s": n / wall, "provenance": R.provenance(config=request, wall_time_s=wall)}
    R.write_json(meta_path, meta)
    for p in sorted(parts.glob("part-*.npy")):
        p.unlink()
    if parts.exists():
        parts.rmdir()
    log(f"[sample] wrote {out_dir / 'images.npy'} in {wall:.1f} s ({n / wall:.1f} img/s)")
    return meta


def save_grid(images: np.ndarray, path, ncol: int = 8, scale: int = 3, n: int = 64) -> Path:
    """A PNG grid of the first ``n`` images, upscaled ``scale`` x (nearest) with 2 px white gaps."""
    from PIL import Image

    imgs = images[:n]
    k = len(imgs)
    if k == 0:
        raise ValueError("no images to put in a grid")
    ncol = min(ncol, k)
    nrow = -(-k // ncol)
    h, w = imgs.shape[1:3]
    gap = 2
    canvas = np.full((nrow * (h * scale + gap) + gap, ncol * (w * scale + gap) + gap, 3), 255, np.uint8)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncol)
        big = img.repeat(scale, 0).repeat(scale, 1)
        y, x = gap + r * (h * scale + gap), gap + c * (w * scale + gap)
        canvas[y:y + h * scale, x:x + w * scale] = big
    with R.atomic_path(path) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    return Path(path)
