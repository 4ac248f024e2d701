"""The locality ladder (issue 14, section 2): sample closed-form denoisers into ``dmrules sample``'s
format, and run the ladder beside trained U-Nets with the precise evaluator.

``sample_baseline`` writes OUT/images.npy (uint8 [N, H, W, 3]) and OUT/meta.json (request, task,
wall time, provenance), exactly the files ``dmrules evaluate`` and ``dmrules sample`` use; the noise
process, the per-sample seeds (sample k uses seed S + k) and the samplers are those of
:mod:`fullscale.diffusion` (the denoiser enters as the eps-prediction, :func:`fullscale.baselines.net_fn`).
Like the cpu preset, the denoisers work on centred images (training-set mean image subtracted, added
back after sampling) unless ``center=False``. A killed call resumes from OUT/parts-<hash>/.

``run_ladder`` evaluates every rung (empirical, local P, gaussian) and, where its run folder exists,
the trained U-Net at the same (task, n) on the same per-sample seeds, and writes one tidy row per
(task, n, rung): precise-protocol metrics with binomial standard errors and a bootstrap CI of R^2,
and novelty against fresh renders at the same n (:mod:`fullscale.evaluate.novelty`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dmrules.core import results as R

FRESH_SEED = 10_000  # fresh renders: stream FRESH_SEED + data seed (the clocks sweep's convention)
UNET_PARTIAL = "ladder-samples"  # U-Net samples from an unfinished run's checkpoint (docs/baselines.md)
DEFAULT_RUNGS = (("empirical", None), ("local", 3), ("local", 5), ("local", 9), ("local", 15), ("local", 32),
                 ("gaussian", None))


def rung_name(denoiser: str, patch: int | None, equivariant: bool = False) -> str:
    if denoiser != "local":
        return denoiser
    return f"{'els' if equivariant else 'local'}-P{patch}"


def training_images(task: str, n: int, data_seed: int = 0, train_dir=None) -> np.ndarray:
    """uint8 [n, 32, 32, 3]: the training set of ``dmrules run --n-train n`` (same renderer and seed),
    or the data set at ``train_dir`` (all of it; ``n`` must match)."""
    from fullscale import tasks

    if train_dir is None:
        return tasks.render(task, n, size=32, seed=data_seed)[0]
    images, _, meta = tasks.load_dataset(train_dir)
    if meta.get("task") not in (None, task):
        raise ValueError(f"{train_dir} holds Task {meta.get('task')} images, not Task {task}")
    if len(images) != n:
        raise ValueError(f"{train_dir} holds {len(images)} training images, but --n is {n}")
    return images


def sample_baseline(task: str, n_train: int, denoiser: str, out_dir, rt, *, patch: int | None = None,
                    equivariant: bool = False, n: int = 256, seed: int = 0, sampler: str = "ddim", steps: int = 100,
                    eta: float = 1.0, batch: int = 64, center: bool = True, data_seed: int = 0, train_dir=None,
                    chunk: int | None = None, png: bool = False, log=print) -> dict:
    """Sample ``n`` images with a closed-form denoiser of the (task, n_train) training set into OUT."""
    import torch

    from fullscale import baselines, generate
    from fullscale.diffusion import T_MAX, from_uint8
    from fullscale.train import data_mean

    train_u8 = training_images(task, n_train, data_seed, train_dir)
    request = {"baseline": denoiser, "patch": patch, "equivariant": bool(equivariant), "task": task,
               "n_train": int(n_train), "data_seed": int(data_seed),
               "train": None if train_dir is None else str(Path(train_dir).resolve()),
               "center": bool(center), "n": int(n), "seed": int(seed), "sampler": sampler,
               "steps": T_MAX if sampler == "ddpm" else int(steps), "eta": float(eta) if sampler == "ddim" else None}
    out_dir = Path(out_dir)
    with R.lock(out_dir, what="--out"):
        R.clean_temps(out_dir, log=log)
        meta_path, array = out_dir / "meta.json", out_dir / "images.npy"
        if meta_path.exists():
            old = R.read_json(meta_path, "sample set record")  # a damaged file: one line naming it
            if old.get("request") != request:
                raise ValueError(f"{out_dir} holds samples of another request; use a new --out")
            if array.exists():
                log(f"[baseline] {array} already holds these {n} samples: skipped")
                return old
        elif array.exists() and not any(out_dir.glob("parts-*")):
            raise ValueError(f"{array} exists but was not written by `dmrules baseline`; use a new --out")
        x0 = from_uint8(torch.from_numpy(train_u8))
        offset = data_mean(train_u8) if center else None
        train = x0 - offset if center else x0
        t0 = time.perf_counter()
        den = baselines.build(denoiser, train.to(rt.device), patch=patch, equivariant=equivariant, chunk=chunk)
        log(f"[baseline] {rung_name(denoiser, patch, equivariant)} on Task {task}, n = {n_train}: {n} samples, "
            f"{sampler} {request['steps']} steps{f' eta {eta:g}' if sampler == 'ddim' else ''}, seeds {seed}..{seed + n - 1}, "
            f"batch {batch} on {rt.describe()}")
        parts = out_dir / f"parts-{R.config_hash(request, 8)}"
        images = generate.sample_images(baselines.net_fn(den), n, train.shape[-1], rt, seed=seed, sampler=sampler,
                                        steps=steps, eta=eta, batch=batch, parts_dir=parts, offset=offset, log=log)
        wall = time.perf_counter() - t0
        meta = generate.finish_sample_set(out_dir, images, request, parts, wall, seed=seed, png=png,
                                          model=rung_name(denoiser, patch, equivariant), task=task)
        log(f"[baseline] wrote {array} in {wall:.1f} s ({n / wall:.2f} img/s)")
        return meta


# ---- the ladder experiment --------------------------------------------------------------------------
def _se(p, k):
    return None if p is None or not k else float(np.sqrt(max(p * (1 - p), 0.0) / k))


def metrics_row(task: str, images: np.ndarray, ref: dict) -> dict:
    """Precise-protocol metrics (with binomial SEs, a bootstrap 95 % CI of R^2) and novelty of a sample set."""
    from fullscale.evaluate import extract, novelty, summarize
    from fullscale.experiments.clock_eval import r2_ci

    table = extract(task, images)
    s = summarize(task, table)
    nov = novelty.novelty(task, images, table, ref["train_images"], ref["train_table"], ref)
    parsed = table[table["parsed"].to_numpy(dtype=bool)]
    lo, hi = r2_ci(parsed["rule_x"].to_numpy(float), parsed["rule_y"].to_numpy(float))
    n, k = int(s["n"]), int(s["parsed"])
    cv = s.get("coarse_violation_rate")
    cp = s.get("conform_pct")
    row = {"n_samples": n, "parsed": k, "parse_rate": k / n if n else None, "coarse_violation_rate": cv,
           "coarse_violation_rate_se": _se(cv, k), "r2": s.get("r2"), "r2_lo": lo, "r2_hi": hi,
           "slope": s.get("slope"), "intercept": s.get("intercept"), "residual_std": s.get("variance_error"),
           "conform_pct": cp, "conform_pct_se": None if cp is None else 100 * _se(cp / 100, k)}
    row.update({key: v for key, v in nov.items() if not isinstance(v, np.ndarray)})
    return row


def reference(task: str, n_train: int, n_fresh: int, data_seed: int = 0) -> dict:
    """The training set, fresh renders and novelty thresholds for one (task, n)."""
    from fullscale import tasks
    from fullscale.evaluate import extract, novelty

    train = training_images(task, n_train, data_seed)
    fresh, _ = tasks.render(task, n_fresh, size=32, seed=FRESH_SEED + data_seed)
    train_table, fresh_table = extract(task, train), extract(task, fresh)
    ref = novelty.reference(task, train, train_table, fresh, fresh_table)
    ref.update(train_images=train, train_table=train_table, fresh_images=fresh, fresh_table=fresh_table)
    return ref


def run_ladder(tasks, ns, work, rt, *, rungs=DEFAULT_RUNGS, unet_root=None, n_samples: int = 256, seed: int = 0,
               sampler: str = "ddim", steps: int = 100, eta: float = 1.0, batch: int = 64, sample: bool = True,
               log=print):
    """Every rung on every (task, n), plus the fresh renders (the law itself) and the U-Net where
    ``unet_root/<task>-n<n>/samples/images.npy`` exists; returns the tidy DataFrame. Each finished
    (task, n, rung) leaves WORK/<task>-n<n>/<rung>/row.json, so a re-run only does what is missing.
    ``sample=False`` samples nothing: finished rungs, fresh renders and U-Nets only (a partial table)."""
    import pandas as pd

    work = Path(work)
    rows = []
    for task in tasks:
        for n in ns:
            cell = work / f"{task}-n{n}"
            ref = None
            # a cell keeps the sample count it was started with (seeds seed..seed+k-1 for every rung)
            k_path = cell / "samples.json"
            if not sample and not k_path.exists():
                log(f"[ladder] {task} n = {n}: not started (--collect): left out")
                continue
            k = json.loads(k_path.read_text())["n_samples"] if k_path.exists() else int(n_samples)
            if not k_path.exists():
                R.write_json(k_path, {"n_samples": k, "seed": int(seed)})
            entries = [("fresh", None, None)] + [(rung_name(d, p), d, p) for d, p in rungs] + [("unet", None, None)]
            for name, den, patch in entries:
                row_path = cell / name / "row.json"
                if row_path.exists():
                    rows.append(json.loads(row_path.read_text()))
                    continue
                if not sample and name not in ("fresh", "unet"):
                    log(f"[ladder] {task} n = {n} {name}: not sampled yet (--collect): left out")
                    continue
                if name == "unet":
                    run = Path(unet_root) / f"{task}-n{n}" if unet_root else None
                    sdir = _unet_samples(run, k) if run is not None else None
                    if sdir is None:
                        log(f"[ladder] {task} n = {n}: no U-Net samples at {run} (samples/ or {UNET_PARTIAL}/): skipped")
                        continue
                ref = ref or reference(task, n, k)
                t0 = time.perf_counter()
                if name == "fresh":
                    images, extra = ref["fresh_images"], {"wall_time_s": None}
                elif name == "unet":
                    images = np.load(sdir / "images.npy")[:k]
                    cfg = json.loads((run / "config.json").read_text())["config"]
                    req = json.loads((sdir / "meta.json").read_text()).get("request", {})
                    seen = (req.get("checkpoint") or {}).get("images", cfg["epochs"] * cfg["n_train"])
                    extra = {"wall_time_s": None, "unet_model": cfg["model"], "unet_images_seen": float(seen),
                             "unet_images_planned": float(cfg["epochs"] * cfg["n_train"]), "unet_samples_dir": sdir.name,
                             "unet_sampler": f"{req.get('sampler')} {req.get('steps')} eta {req.get('eta')}"}
                    timings = run / "timings.json"
                    if timings.exists():
                        extra["unet_train_s"] = json.loads(timings.read_text()).get("train", {}).get("seconds")
                else:
                    meta = sample_baseline(task, n, den, cell / name, rt, patch=patch, n=k, seed=seed,
                                           sampler=sampler, steps=steps, eta=eta, batch=batch, log=log)
                    images, extra = np.load(cell / name / "images.npy"), {"wall_time_s": meta["wall_time_s"]}
                row = {"task": task, "n": int(n), "rung": name, "denoiser": den or name,
                       "patch": float(patch) if patch else np.nan, **metrics_row(task, images, ref), **extra,
                       "tau_copy_pix": ref["tau_copy_pix"], "tau_novel_pos": ref["tau_novel_pos"],
                       "fresh_median_pix": ref["fresh_median_pix"], "eval_s": time.perf_counter() - t0,
                       "device": R.device_name()}
                R.write_json(row_path, row)
                row = json.loads(row_path.read_text())  # the same types and order as a resumed call reads
                log(f"[ladder] {task} n = {n} {name}: coarse viol. {_pct(row['coarse_violation_rate'])}, conform "
                    f"{_num(row['conform_pct'])} %, R2 {_num(row['r2'])}, copy rate {_pct(row['copy_rate'])}")
                rows.append(row)
    return pd.DataFrame(rows)


def _unet_samples(run: Path, k: int):
    """RUN/samples (the finished run's own samples), else RUN/ladder-samples (``dmrules sample RUN`` from
    an unfinished run's latest checkpoint; its meta.json records the images seen); None when neither
    holds at least ``k`` samples drawn with seeds 0.."""
    for sub in ("samples", UNET_PARTIAL):
        d = run / sub
        if (d / "images.npy").exists() and (d / "meta.json").exists():
            req = json.loads((d / "meta.json").read_text()).get("request", {})
            if req.get("seed", 0) == 0 and req.get("n", 0) >= k:
                return d
    return None


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
