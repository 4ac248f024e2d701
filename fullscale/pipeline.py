"""``dmrules run``: data -> train -> sample -> evaluate in one process, skipping what is done.

RUN layout (everything written atomically):
    config.json       the resolved RunConfig + provenance (a RUN made with another config is refused)
    data/             the training set (fullscale.tasks.save_dataset: images.npy, features.parquet, meta.json)
    checkpoint.pt     training state (model, EMA, optimiser, RNG, step, images seen)
    stats.jsonl       one line per log interval (kimg, loss, img/s, sec/kimg, ...)
    samples/          images.npy (uint8 [N, 32, 32, 3]) + meta.json
    samples.png       the same samples, stored compactly (lossless PNG atlas, fullscale.evaluate.stored;
                      ~2.9 MB for 3000 32-px samples): exported, so any evaluator can be re-run without a GPU
    eval.json         fullscale.evaluate.evaluate on the samples (+ the training-set ceiling)
    points.parquet    per-sample features (rule_x, rule_y, parsed, coarse_ok, ...) for Figure 4
    grid.png          the first 64 samples (preview.npy: the same 64 as uint8)
    examples.npz      coarse-violating, worst fine-violating and rule-exact samples (fullscale.evaluate.examples)
    timings.json      wall time per phase (data, train, sample, evaluate)
    summary.parquet   one tidy row: task, model, preset, metrics, ceiling, times, device (+ provenance)

``export(RUN, DEST)`` (``dmrules run ... --export DEST``) copies the small result files (everything
above but the data, checkpoint and full sample array; the samples travel as samples.png) to DEST,
e.g. reports/results/ddpm_paper/A_unet.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dmrules.core import results as R
from fullscale.diffusion import T_MAX
from fullscale.presets import RunConfig
from fullscale.runtime import Runtime, barrier


def check_config(cfg: RunConfig, run_dir, write: bool = True) -> None:
    """Refuse a RUN made with another config (one clear sentence); record this one."""
    R.claim_dir(run_dir, cfg, RunConfig.from_json, "run", write=write)


def ensure_data(cfg: RunConfig, run_dir, rt: Runtime | None = None, log=print) -> np.ndarray:
    """The training images (rendered into RUN/data on first use; rank 0 writes, others wait)."""
    from fullscale import tasks

    data_dir = Path(run_dir) / "data"
    if (data_dir / "meta.json").exists():
        images, _, meta = tasks.load_dataset(data_dir)
        want = dict(task=cfg.task, n=cfg.n_train, size=cfg.image_size, seed=cfg.data_seed)
        have = {k: meta.get(k) for k in want}
        if have != want:
            raise ValueError(f"{data_dir} holds {have}, but the config needs {want}; use a new --out")
        if rt is None or rt.is_main:
            log(f"[data] {data_dir}: {len(images)} training images already there: skipped")
        return images
    if rt is None or rt.is_main:
        t0 = time.perf_counter()
        images, features = tasks.render(cfg.task, cfg.n_train, size=cfg.image_size, seed=cfg.data_seed)
        meta = {"task": cfg.task, "n": cfg.n_train, "size": cfg.image_size, "seed": cfg.data_seed,
                "contrastive": False, "violate": False}
        tasks.save_dataset(data_dir, images, features, meta)
        log(f"[data] rendered {cfg.n_train} Task {cfg.task} images at {cfg.image_size} px into {data_dir} "
            f"in {time.perf_counter() - t0:.1f} s")
    if rt is not None:
        barrier(rt)
    images, _, _ = tasks.load_dataset(data_dir)
    return images


class Timings:
    """RUN/timings.json: wall seconds per phase, kept across re-runs."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / "timings.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, phase: str, seconds: float, **extra) -> None:
        prev = self.data.get(phase, {})
        total = prev.get("seconds", 0.0) + seconds if extra.get("resumed") else seconds
        self.data[phase] = {"seconds": round(total, 3), **extra}
        R.write_json(self.path, self.data)


def _evaluate(cfg: RunConfig, run_dir: Path, samples: np.ndarray, train_images: np.ndarray, log=print) -> dict:
    """fullscale.evaluate on the samples, with the evaluator's ceiling (the same metrics on the
    training images, key ``train``) and memorisation; per-sample features to points.parquet."""
    from fullscale import evaluate as ev
    from fullscale.evaluate import examples

    t0 = time.perf_counter()
    result = ev.evaluate(cfg.task, samples, train_images=train_images)
    points = ev.extract(cfg.task, samples)
    R.write_table(points.reset_index(drop=True), run_dir / "points.parquet",
                  R.provenance(config=cfg.identity(), what="per-sample features of the generated images"))
    R.write_json(run_dir / "eval.json", result)
    # violation examples (rules paper Figs. 9/10) travel with the exported result files
    examples.save_examples(run_dir / "examples.npz", cfg.task, points.reset_index(drop=True), samples)
    ceiling = result.get("train") or {}
    log(f"[eval] {cfg.task}/{cfg.model}: parsed {result.get('parsed')}/{result.get('n')}, coarse violations "
        f"{_f(result.get('coarse_violation_rate'))}, fit y = {_f(result.get('slope'))} x + {_f(result.get('intercept'))}, "
        f"R2 {_f(result.get('r2'))} (evaluator ceiling on training images: R2 {_f(ceiling.get('r2'))}) "
        f"in {time.perf_counter() - t0:.1f} s")
    return result


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def summary_row(cfg: RunConfig, result: dict, timings: dict, rt: Runtime) -> dict:
    row = {"task": cfg.task, "model": cfg.model, "preset": cfg.preset, "n_samples": cfg.n_samples,
           "sampler": cfg.sampler, "sample_steps": T_MAX if cfg.sampler == "ddpm" else cfg.sample_steps,
           "sample_eta": cfg.sample_eta if cfg.sampler == "ddim" else np.nan, "center": cfg.center,
           "weights": cfg.sample_weights, "train_images": cfg.total_images, "batch": cfg.batch, "lr": cfg.lr}
    for k in ("n", "parsed", "parse_failure_rate", "coarse_violation_rate", "slope", "intercept", "r2",
              "conform_pct", "bias_error", "variance_error", "rule_slope"):
        v = result.get(k)
        row[k] = float(v) if isinstance(v, (int, float, np.floating, np.integer)) and v is not None else np.nan
    for k, v in (result.get("train") or {}).items():
        row[f"train_{k}"] = float(v) if isinstance(v, (int, float)) else np.nan
    for phase in ("data", "train", "sample", "evaluate"):
        row[f"{phase}_s"] = float(timings.get(phase, {}).get("seconds", np.nan))
    row["device"] = R.device_name()
    return row


def run(cfg: RunConfig, run_dir, rt: Runtime, log=print) -> dict:
    """data -> train -> sample -> evaluate; each phase is skipped (and says so) when already done."""
    from fullscale import generate
    from fullscale.train import train

    run_dir = Path(run_dir)
    check_config(cfg, run_dir, write=rt.is_main)
    timings = Timings(run_dir)
    log(f"[run] Task {cfg.task}, model {cfg.model}, preset {cfg.preset} -> {run_dir} on {rt.describe()}")

    t0 = time.perf_counter()
    had_data = (run_dir / "data" / "meta.json").exists()
    train_images = ensure_data(cfg, run_dir, rt, log)
    if rt.is_main and not had_data:
        timings.record("data", time.perf_counter() - t0)

    info = train(cfg, run_dir, train_images, rt, log=log)
    if info["done_already"]:
        log(f"[train] {run_dir / 'checkpoint.pt'} has seen all {cfg.total_images:,} images: skipped")
    elif rt.is_main:
        timings.record("train", info["train_s"], resumed=info["resumed"], images=info["images"],
                       img_per_s=(info["images"] / info["train_s"]) if info["train_s"] else None)
        log(f"[train] done in {info['train_s']:.1f} s")
    if not rt.is_main:
        return {}

    samples_dir = run_dir / "samples"
    t0 = time.perf_counter()
    had = (samples_dir / "images.npy").exists()
    meta = generate.sample_run(run_dir, samples_dir, rt, n=cfg.n_samples, seed=cfg.sample_seed, sampler=cfg.sampler,
                               steps=cfg.sample_steps, eta=cfg.sample_eta, batch=cfg.sample_batch, weights=cfg.sample_weights,
                               png=False, log=log)
    if not had:
        timings.record("sample", time.perf_counter() - t0, img_per_s=meta.get("img_per_s"))
    samples = np.load(samples_dir / "images.npy")
    generate.save_grid(samples, run_dir / "grid.png")
    generate.save_array(run_dir / "preview.npy", samples[:64])
    store_samples(run_dir, samples, log)

    if (run_dir / "eval.json").exists() and (run_dir / "summary.parquet").exists() and had:
        log(f"[eval] {run_dir / 'eval.json'} already there: skipped")
        return json.loads((run_dir / "eval.json").read_text())
    t0 = time.perf_counter()
    result = _evaluate(cfg, run_dir, samples, train_images, log)
    timings.record("evaluate", time.perf_counter() - t0)
    row = summary_row(cfg, result, timings.data, rt)
    row["parsed_frac"] = row["parsed"] / row["n"] if row["n"] else np.nan
    import pandas as pd

    R.write_table(pd.DataFrame([row]), run_dir / "summary.parquet",
                  R.provenance(config=cfg.identity(), wall_time_s=sum(v["seconds"] for v in timings.data.values())))
    log("[run] phases: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in timings.data.items()))
    return result


def store_samples(run_dir, samples: np.ndarray | None = None, log=print) -> Path | None:
    """RUN/samples.png: every generated image, stored compactly (issue 11). Written when missing or when
    it holds another number of images than RUN/samples/images.npy; returns its path (None: no samples)."""
    from fullscale.evaluate import stored

    run_dir = Path(run_dir)
    path = run_dir / "samples.png"
    if samples is None:
        if not (run_dir / "samples" / "images.npy").exists():
            return None
        samples = np.load(run_dir / "samples" / "images.npy")
    if path.exists():
        try:
            if len(stored.load_atlas(path)) == len(samples):
                return path
        except ValueError:
            pass
    stored.save_atlas(path, samples)
    log(f"[store] {len(samples)} samples -> {path} ({path.stat().st_size / 1e6:.2f} MB, lossless PNG atlas)")
    return path


EXPORT_FILES = ("config.json", "stats.jsonl", "timings.json", "eval.json", "points.parquet", "summary.parquet",
                "grid.png", "preview.npy", "examples.npz", "samples.png")


def export(run_dir, dest, log=print) -> Path:
    """Copy the small result files of a finished RUN to DEST (atomically, file by file)."""
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / "examples.npz").exists() and (run_dir / "points.parquet").exists() \
            and (run_dir / "samples" / "images.npy").exists():  # a run evaluated before examples.npz existed
        import pandas as pd

        from fullscale.evaluate import examples

        examples.save_examples(run_dir / "examples.npz", json.loads((run_dir / "config.json").read_text())["config"]["task"],
                               pd.read_parquet(run_dir / "points.parquet"), np.load(run_dir / "samples" / "images.npy"))
    if not (run_dir / "samples.png").exists():  # a run sampled before samples were stored
        store_samples(run_dir, log=log)
    missing = [f for f in EXPORT_FILES if not (run_dir / f).exists()]
    if missing:
        raise ValueError(f"{run_dir} is not finished (missing {', '.join(missing)})")
    for name in EXPORT_FILES:
        R.write_bytes(dest / name, (run_dir / name).read_bytes())
    log(f"[export] {len(EXPORT_FILES)} result files of {run_dir} -> {dest}")
    return dest
