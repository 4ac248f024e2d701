"""Sampling images from a trained run with per-sample seeds, in resumable chunks.

Sample k of a call with ``seed=S`` uses seed S + k (edm's ``--seeds``): its initial noise and every
ancestral noise draw are functions of that seed only (fullscale.rng), so an image is the same
whatever the batch size, the chunking, or whether the call was interrupted and resumed.

Output directory: ``images.npy`` (uint8 [N, H, W, 3]), ``meta.json`` (run, sampler, steps, seeds,
weights, wall time, provenance), ``png/<seed>.png`` when asked. While running, finished batches are
kept under ``parts-<hash>/``; a re-run picks them up and only samples what is missing.

A sample set records the identity of the weights it came from (``request["checkpoint"]``: the run's
config fingerprint and the checkpoint's step and images seen). A re-run never resumes or skips across
a change of them (issue 12): parts of other weights are discarded, and a finished set of other
weights is refused (one line: use a new --out, or delete OUT to re-sample).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from dmrules.core import results as R
from fullscale import diffusion, names, objectives, samplers
from fullscale.models import build
from fullscale.presets import RunConfig
from fullscale.runtime import Runtime, inference_fn, prepare
from fullscale.train import CHECKPOINT, identity_diff, load_checkpoint


def load_run(run_dir) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise ValueError(f"{run_dir} is not a training run (no such directory); give a run made by `dmrules train`")
    if not path.exists():
        raise ValueError(f"{run_dir} is not a training run (no config.json); train one with `dmrules train`")
    data = R.read_json(path, "run config")
    try:
        return RunConfig.from_json(data["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a dmrules run config ({type(exc).__name__}: {exc}); restore it, or "
                         "train a new run") from None


def weights_id(cfg: RunConfig, ckpt: dict) -> dict:
    """The identity of a checkpoint's weights: the run's config fingerprint, step and images seen."""
    return {"config": R.config_hash(cfg.identity()), "step": int(ckpt["step"]), "images": int(ckpt["images"])}


def load_denoiser(run_dir, rt: Runtime, weights: str = "ema"):
    """(net, config) from RUN/checkpoint.pt: the EMA weights (default) or the raw ones."""
    cfg = load_run(run_dir)
    ckpt = load_checkpoint(run_dir)
    if ckpt is None:
        raise ValueError(f"{run_dir} has no checkpoint yet; run `dmrules train` first")
    if weights not in names.WEIGHTS:
        raise ValueError(f"weights must be {' or '.join(names.WEIGHTS)}, got {weights!r}")
    if ckpt["identity"] != json.dumps(cfg.identity(), sort_keys=True):
        # issue 12: a checkpoint copied from another run (another task, --lr, architecture) is refused
        raise ValueError(f"{Path(run_dir) / CHECKPOINT} was trained with another config than {Path(run_dir) / 'config.json'} "
                         f"({identity_diff(ckpt['identity'], cfg)}); sample from the run that made it")
    net = build(cfg.model, cfg.image_size)
    try:
        net.load_state_dict(ckpt["ema" if weights == "ema" else "model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"{Path(run_dir) / CHECKPOINT} does not hold {cfg.model} weights "
                         f"({type(exc).__name__}); it was left in place") from None
    done = int(ckpt["images"]) >= cfg.total_images
    return prepare(net, rt), cfg, {"images": int(ckpt["images"]), "finished": done, "offset": ckpt.get("offset"),
                                   "id": weights_id(cfg, ckpt)}


def sample_images(net_fn, n: int, image_size: int, rt: Runtime, *, seed: int = 0, sampler: str = "ddpm",
                  steps: int = 50, eta: float = 0.0, batch: int = 256, parts_dir=None, guide=None, weight=1.0,
                  variance: str = "beta", offset=None, log=print, objective: str = "eps",
                  spacing: str = "even") -> np.ndarray:
    """uint8 [n, H, W, 3] samples; seeds seed..seed+n-1; batches padded to ``batch`` (one compiled shape).

    ``sampler``: a name of :mod:`fullscale.samplers` (refused with one sentence when it does not fit
    the ``objective`` the model was trained with); ``steps``: its step count (ddpm: always T-1)."""
    from tqdm import tqdm

    samplers.check_pair(sampler, objective)
    obj = objectives.get(objective)
    process = obj.process
    n_steps = samplers.network_calls(sampler, steps, getattr(process, "T", None))
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
    ticks = n_steps if sampler == "ddpm" else int(steps)  # progress() is called once per sampler step
    bar = tqdm(total=sum(e - s for s, e, _ in todo) * ticks, unit="img-step", unit_scale=True, disable=None,
               desc=f"sample {sampler} x{n_steps}", dynamic_ncols=True)
    t0, done, total = time.perf_counter(), 0, sum(e - s for s, e, _ in todo)
    for start, end, part in todo:
        seeds = torch.arange(seed + start, seed + start + batch, dtype=torch.int64, device=rt.device)  # padded
        x = samplers.initial_noise(seeds, shape).to(rt.device)
        progress = lambda i: bar.update(end - start)  # noqa: E731  (one tick per sampler step)
        kw = dict(objective=obj, guide=guide, weight=weight, progress=progress, offset=offset)
        if sampler == "ddpm":  # the old entry points (fullscale.diffusion) for the two old samplers
            x0 = diffusion.ddpm_sample(net_fn, x, seeds, variance=variance, schedule=process.schedule, **kw)
        elif sampler == "ddim":
            x0 = diffusion.ddim_sample(net_fn, x, seeds, steps=int(steps), eta=eta, spacing=spacing,
                                       schedule=process.schedule, **kw)
        else:
            kw["steps"] = int(steps)
            if sampler == "dpm++2m":
                kw["spacing"] = spacing
            x0 = samplers.SAMPLERS[sampler](net_fn, x, process, seeds, **kw)
        if not bool(torch.isfinite(x0[: end - start]).all()):  # never write garbage pixels (issue 12)
            bar.close()
            raise ValueError(f"the model gave non-finite values while sampling seeds {seed + start}..{seed + end - 1} "
                             f"({sampler}); its weights are broken (a diverged run?): nothing written for them")
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


def _check_request(n, seed, sampler, steps, eta, batch, objective="eps", spacing="even") -> None:
    """ValueError (one sentence) on values that cannot be sampled (issue 12: eta nan|5|-1 gave garbage)."""
    import math

    for name, v in (("n", n), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    samplers.check_pair(sampler, objective)
    process = objectives.get(objective).process
    if sampler != "ddpm":
        hi = getattr(process, "t_max", 100_000)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= hi:
            raise ValueError(f"{sampler} steps must be an integer in 1..{hi}, got {steps!r}")
    if spacing != "even" and sampler not in ("ddim", "dpm++2m"):
        raise ValueError(f"--spacing is for ddim and dpm++2m; the {sampler} sampler has one grid")
    if spacing not in names.SPACINGS:
        raise ValueError(f"unknown timestep spacing {spacing!r}")
    if sampler == "ddim":
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and 0.0 <= eta <= 1.0):
            raise ValueError(f"DDIM eta must be a number in [0, 1], got {eta!r}")


def _same_but_weights(old: dict, new: dict) -> bool:
    strip = lambda r: {k: v for k, v in r.items() if k != "checkpoint"}  # noqa: E731
    return strip(old) == strip(new)


def _weights_text(w: dict | None) -> str:
    return "unknown weights" if not w else f"step {w['step']} ({w['images']:,} images, config {w['config']})"


def _discard_other_parts(out_dir: Path, keep: Path, log) -> None:
    """Remove ``parts-*`` folders of other requests or other weights (ours: only part-*.npy inside)."""
    for d in sorted(out_dir.glob("parts-*")):
        if d == keep or not d.is_dir():
            continue
        files = list(d.iterdir())
        if all(f.name.startswith("part-") and f.suffix == ".npy" for f in files):
            log(f"[sample] discarding {len(files)} unfinished part(s) in {d} (another request or checkpoint)")
            for f in files:
                f.unlink()
            d.rmdir()


def _objective_of(run_dir) -> str:
    """The run's training objective (eps when its config cannot be read: load_run names that later)."""
    try:
        return load_run(run_dir).objective
    except ValueError:
        return objectives.DEFAULT


def sample_run(run_dir, out_dir, rt: Runtime, *, n: int, seed: int = 0, sampler: str = "ddpm", steps: int = 50,
               eta: float = 0.0, batch: int = 256, weights: str = "ema", png: bool = True, guide=None, weight=1.0,
               variance: str = "beta", extra_meta: dict | None = None, log=print, spacing: str = "even") -> dict:
    """Sample ``n`` images from RUN into OUT (skips if OUT already holds the same request from the same
    weights; refuses OUT when it holds samples of another request or of other weights). A sampler that
    does not fit the run's objective is refused (one sentence)."""
    _check_request(n, seed, sampler, steps, eta, batch, _objective_of(run_dir), spacing)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(run_dir).resolve():
        raise ValueError(f"--out {out_dir} is the run itself; give the samples their own folder (such as "
                         f"{Path(run_dir) / 'samples-extra'})")
    with R.lock(out_dir, what="--out"):
        R.clean_temps(out_dir, also=("png", *(p.name for p in out_dir.glob("parts-*"))), log=log)
        return _sample_run(run_dir, out_dir, rt, n=n, seed=seed, sampler=sampler, steps=steps, eta=eta, batch=batch,
                           weights=weights, png=png, guide=guide, weight=weight, variance=variance,
                           extra_meta=extra_meta, log=log, spacing=spacing)


def _sample_run(run_dir, out_dir: Path, rt: Runtime, *, n, seed, sampler, steps, eta, batch, weights, png, guide,
                weight, variance, extra_meta, log, spacing="even") -> dict:
    net, cfg, ck = load_denoiser(run_dir, rt, weights)
    calls = samplers.network_calls(sampler, steps, getattr(objectives.get(cfg.objective).process, "T", None))
    request = {"run": str(Path(run_dir).resolve()), "n": n, "seed": seed, "sampler": sampler,
               "steps": calls if sampler == "ddpm" else steps, "eta": eta if sampler == "ddim" else None,
               "weights": weights, "variance": variance,
               **(extra_meta or {})}
    # fields added with issue 13 enter the request only when not their old default (old sets keep their hash)
    if spacing != "even":
        request["spacing"] = spacing
    if cfg.objective != objectives.DEFAULT:
        request["objective"] = cfg.objective
    request["checkpoint"] = ck["id"]  # the weights' identity: never resume or skip across a change of it
    meta_path, array = out_dir / "meta.json", out_dir / "images.npy"
    parts = out_dir / f"parts-{R.config_hash(request, 8)}"
    if meta_path.exists():
        old = R.read_json(meta_path, "sample set record")
        old_req = old.get("request") if isinstance(old, dict) else None
        if not isinstance(old_req, dict) or not _same_but_weights(old_req, request):
            raise ValueError(f"{out_dir} holds samples of another request; use a new --out")
        if array.exists() and old_req.get("checkpoint") == request["checkpoint"]:
            log(f"[sample] {array} already holds these {n} samples: skipped")
            return old
        if array.exists() and "checkpoint" not in old_req:  # made before sample sets recorded their weights
            log(f"[sample] {array} already holds these {n} samples: skipped (made before sample sets recorded "
                f"their checkpoint; not verified against {_weights_text(request['checkpoint'])})")
            return old
        if array.exists():
            raise ValueError(f"{out_dir} holds samples of {run_dir} at {_weights_text(old_req.get('checkpoint'))}, but "
                             f"its checkpoint is now at {_weights_text(request['checkpoint'])}; use a new --out (or "
                             f"delete {out_dir} to re-sample)")
    elif array.exists() and not any(out_dir.glob("parts-*")):  # ours would be meta.json or parts-* beside it
        raise ValueError(f"{array} exists but was not written by `dmrules sample` (no meta.json); use a new --out")
    if out_dir.is_dir():
        _discard_other_parts(out_dir, parts, log)
    if not ck["finished"]:
        log(f"[sample] warning: the run has seen {ck['images']:,} of {cfg.total_images:,} images (unfinished)")
    log(f"[sample] {n} images from {run_dir} ({cfg.model}, {weights} weights at {_weights_text(ck['id'])}), {sampler} "
        f"{request['steps']} steps{f' eta {eta:g}' if sampler == 'ddim' else ''}, seeds {seed}..{seed + n - 1}, batch {batch} on {rt.describe()}")
    t0 = time.perf_counter()
    images = sample_images(inference_fn(net, rt), n, cfg.image_size, rt, seed=seed, sampler=sampler, steps=steps,
                           eta=eta, batch=batch, parts_dir=parts, guide=guide, weight=weight, variance=variance,
                           offset=ck["offset"], log=log, objective=cfg.objective, spacing=spacing)
    wall = time.perf_counter() - t0
    meta = finish_sample_set(out_dir, images, request, parts, wall, seed=seed, png=png,
                             model=cfg.model, task=cfg.task, network_calls=calls)
    log(f"[sample] wrote {array} in {wall:.1f} s ({n / wall:.1f} img/s)")
    return meta


def finish_sample_set(out_dir, images: np.ndarray, request: dict, parts, wall: float, *, seed: int, png: bool,
                      **fields) -> dict:
    """Write a finished sample set (PNGs if asked, images.npy, then meta.json last, so a set with a
    meta.json is whole) and remove its resumable parts; ``fields`` go into meta.json (model, task, ...).
    Shared by ``dmrules sample`` and ``dmrules baseline``, whose sets are read alike."""
    out_dir, parts, n = Path(out_dir), Path(parts), len(images)
    if png:
        write_pngs(images, out_dir / "png", range(seed, seed + n))
    save_array(out_dir / "images.npy", images)
    meta = {"request": request, **fields, "wall_time_s": wall, "img_per_s": n / wall,
            "provenance": R.provenance(config=request, wall_time_s=wall)}
    R.write_json(out_dir / "meta.json", meta)
    for p in sorted(parts.glob("part-*.npy")):
        p.unlink()
    if parts.exists():
        parts.rmdir()
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
