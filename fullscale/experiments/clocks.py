"""One rule-clock run (issue 14, Sec. 1): train once, evaluate the EMA weights at fixed image budgets.

A run is (task, n, seed[, held-out band]) at a preset. Its training set is ``render(task, n,
seed=seed)`` (minus the band): render streams are seeded by the seed, so the two seeds of a cell
train on *disjoint* sets (independent draws of a continuous law share no image). It trains ONE
``RunConfig`` whose total is the largest budget (``epochs = max budget / n``), stopping at each
budget (``train(..., stop_after_images=b)`` writes the checkpoint there) to sample the EMA weights
with a fixed set of per-sample seeds (sample k: seed ``sample_seed + k``, the same for every run,
so paired seeds of a cell share every noise draw) and evaluate them; only then does it train on. So
budgets are counted in images seen and are the same for every n, a longer budget resumes the same
run, and each evaluation records the checkpoint's step and images (it refuses weights that are not
exactly at its budget). The final budget is sampled a second time with ``second_sampler``.

RUN layout (all atomic; a killed run resumes at the first missing evaluation):
    config.json                    this ClockRun (a RUN of another spec is refused)
    data/                          the training set (+ meta.json with the band's drop count)
    model/                         the training run (config.json, checkpoint.pt, stats.jsonl)
    ref/points.parquet             measured features of the training set and the fresh renders
    evals/<kimg>-<sampler>/        samples.npy, points.parquet (per sample), eval.json (one row)
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmrules.core import results as R

SAMPLER_RE = re.compile(r"^(?:ddpm|ddim(\d+)-eta([0-9]*\.?[0-9]+))$")
DEFAULT_KIMG = {"cpu": (5, 10, 20, 40, 80, 160), "paper": (50, 100, 200, 400, 800, 1600), "smoke": (0.016, 0.032)}
DEFAULT_SAMPLERS = {"cpu": ("ddim100-eta1", "ddim100-eta0"), "paper": ("ddpm", "ddim100-eta0"),
                    "smoke": ("ddim4-eta1", "ddim4-eta0")}
FRESH_SEED = 10_000  # fresh renders: render stream FRESH_SEED + seed, independent of every training set


def parse_sampler(name: str) -> dict:
    """``ddpm`` (ancestral, T-1 = 999 steps) or ``ddim<steps>-eta<eta>`` -> sampler, steps, eta."""
    from fullscale.diffusion import T_MAX  # the DDPM process's T - 1 (999 at T = 1000)

    m = SAMPLER_RE.match(str(name))
    if not m:
        raise ValueError(f"unknown sampler {name!r}: use ddpm (ancestral {T_MAX} steps) or ddimSTEPS-etaETA, "
                         "e.g. ddim100-eta1")
    if name == "ddpm":
        return {"sampler": "ddpm", "steps": T_MAX, "eta": 0.0}
    steps, eta = int(m.group(1)), float(m.group(2))
    if not 1 <= steps <= T_MAX or not 0 <= eta <= 1:
        raise ValueError(f"sampler {name!r}: steps must be in [1, {T_MAX}] and eta in [0, 1]")
    return {"sampler": "ddim", "steps": steps, "eta": eta}


@dataclass(frozen=True)
class ClockRun:
    task: str
    n: int
    seed: int
    budgets: tuple  # images seen at each evaluation, ascending, multiples of the batch
    preset: str = "cpu"
    model: str = "unet"
    n_samples: int = 256
    sample_seed: int = 0
    sampler: str = "ddim100-eta1"
    second_sampler: str | None = "ddim100-eta0"
    holdout: str | None = None  # NAME:LO:HI (fullscale.tasks.holdout)

    @property
    def name(self) -> str:
        base = f"{self.task}-n{self.n}-s{self.seed}"
        return base if not self.holdout else base + "-hold-" + self.holdout.replace(":", "-")

    def identity(self) -> dict:
        return self.to_json()

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["budgets"] = list(self.budgets)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ClockRun":
        d = dict(d)
        d["budgets"] = tuple(int(b) for b in d["budgets"])
        return cls(**d)

    def band(self):
        from fullscale.tasks import holdout

        return holdout.parse_band(self.holdout, self.task) if self.holdout else None

    def config(self, n_train: int, perf=None):
        """The one RunConfig of this run: the preset, n_train images, total = the largest budget."""
        from fullscale.presets import make_config

        sp = parse_sampler(self.sampler)
        return make_config(self.task, self.model, self.preset, perf=perf, n_train=n_train, seed=self.seed,
                           data_seed=self.seed, epochs=self.budgets[-1] / n_train, n_samples=self.n_samples,
                           sampler=sp["sampler"], sample_steps=sp["steps"], sample_eta=sp["eta"])

    def evaluations(self) -> list[tuple[int, str]]:
        """(images, sampler) in the order they are made."""
        out = [(b, self.sampler) for b in self.budgets]
        if self.second_sampler:
            out.append((self.budgets[-1], self.second_sampler))
        return out


def make_runs(tasks, ns, seeds, preset: str, kimg=None, *, n_samples: int = 256, sampler=None, second_sampler="default",
              holdout: str | None = None, model: str = "unet") -> list[ClockRun]:
    """The sweep's runs in launch order (tasks, then n as given, then seeds); budgets rounded up
    to multiples of the preset's batch (the evaluation records the exact count)."""
    from fullscale.presets import PRESETS, make_config
    from fullscale.tasks import check_task, holdout as H

    kimg = tuple(DEFAULT_KIMG[preset] if kimg is None else kimg)
    if not kimg or any(not (k > 0) for k in kimg) or list(kimg) != sorted(set(kimg)):
        raise ValueError(f"budgets must be positive and strictly increasing, got {list(kimg)}")
    sampler = sampler or DEFAULT_SAMPLERS[preset][0]
    second = DEFAULT_SAMPLERS[preset][1] if second_sampler == "default" else second_sampler
    for s in (sampler, second):
        if s:
            parse_sampler(s)
    if second == sampler:
        raise ValueError("the second sampler must differ from the first (or be none)")
    if n_samples < 2:
        raise ValueError(f"need at least 2 samples per evaluation, got {n_samples}")
    runs = []
    for task in tasks:
        task = check_task(task)
        label = H.parse_band(holdout, task).label() if holdout else None
        batch = PRESETS[preset](task, model)["batch"]
        budgets = tuple(int(-(-round(k * 1000) // batch) * batch) for k in kimg)
        if len(set(budgets)) != len(budgets):
            raise ValueError(f"budgets {list(kimg)} kimg collide after rounding to the batch ({batch})")
        for n in ns:
            if n < 2:
                raise ValueError(f"training sets need at least 2 images, got n = {n}")
            for seed in seeds:
                if seed < 0:
                    raise ValueError(f"seeds must be non-negative, got {seed}")
                run = ClockRun(task, int(n), int(seed), budgets, preset, model, n_samples, 0, sampler, second, label)
                make_config(task, model, preset, n_train=n, epochs=budgets[-1] / n)  # validates the preset values
                runs.append(run)
    return runs


def eval_dir(run_dir, images: int, sampler: str) -> Path:
    return Path(run_dir) / "evals" / f"{images / 1000:010.3f}-{sampler}"


def is_done(run: ClockRun, run_dir) -> bool:
    return all((eval_dir(run_dir, b, s) / "eval.json").exists() for b, s in run.evaluations())


def ensure_data(run: ClockRun, run_dir, log=print):
    """The run's training images (rendered, minus the band, into RUN/data on first use)."""
    from fullscale import tasks
    from fullscale.tasks import holdout

    data_dir = Path(run_dir) / "data"
    want = {"task": run.task, "n": run.n, "size": 32, "seed": run.seed, "holdout": run.holdout}
    if (data_dir / "meta.json").exists():
        images, _, meta = tasks.load_dataset(data_dir)
        if {k: meta.get(k) for k in want} != want:
            raise ValueError(f"{data_dir} holds another data set; use a new --out")
        return images
    images, feats = tasks.render(run.task, run.n, seed=run.seed)
    meta = dict(want, contrastive=False, violate=False)
    band = run.band()
    if band is not None:
        images, feats, info = holdout.apply(images, feats, band)
        meta["holdout_info"] = info
        log(f"[data] {run.name}: held out {band.label()}: dropped {info['n_dropped']} of {run.n}, kept {info['n_kept']}")
    tasks.save_dataset(data_dir, images, feats, meta)
    return images


class RunBusy(RuntimeError):
    """Another process holds this run's lock."""


class _Lock:
    """An exclusive, non-blocking lock on RUN/.lock (released when the process ends, even if killed)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise RunBusy(f"{self.path.parent} is being run by another process") from None
        return self

    def __exit__(self, *exc):
        self.fh.close()


def _sample(run, model_dir, out_dir, images_expected: int, sampler: str, rt, log):
    """EMA samples of the checkpoint, refusing weights that are not at ``images_expected``."""
    from fullscale import generate
    from fullscale.runtime import inference_fn

    net, cfg, ck = generate.load_denoiser(model_dir, rt, "ema")
    if ck["images"] != images_expected:
        raise RuntimeError(f"{model_dir} holds weights at {ck['images']} images, not the budget {images_expected}")
    sp = parse_sampler(sampler)
    t0 = time.perf_counter()
    samples = generate.sample_images(inference_fn(net, rt), run.n_samples, cfg.image_size, rt, seed=run.sample_seed,
                                     sampler=sp["sampler"], steps=sp["steps"], eta=sp["eta"],
                                     batch=min(128, run.n_samples), parts_dir=out_dir / "parts", offset=ck["offset"],
                                     log=log)
    return samples, time.perf_counter() - t0


def _steps_at(model_dir) -> int:
    from fullscale.train import load_checkpoint

    ck = load_checkpoint(model_dir)
    return int(ck["step"]) if ck is not None else 0


def run_one(run: ClockRun, run_dir, perf=None, log=print) -> dict:
    """Train and evaluate one run, skipping finished evaluations; returns {'status', 'evaluated', ...}."""
    from fullscale import pipeline, runtime, tasks
    from fullscale.presets import Performance
    from fullscale.train import train

    from . import clock_eval

    run_dir = Path(run_dir)
    with _Lock(run_dir):
        R.claim_dir(run_dir, run, ClockRun.from_json, "clock run")
        if is_done(run, run_dir):
            log(f"[clocks] {run.name}: all {len(run.evaluations())} evaluations already there: skipped")
            return {"status": "done already", "evaluated": 0}
        rt = runtime.setup(perf or Performance(device="cpu", threads=1))
        t_run = time.perf_counter()
        images = ensure_data(run, run_dir, log)
        cfg = run.config(len(images), perf)
        model_dir = run_dir / "model"
        pipeline.check_config(cfg, model_dir, write=rt.is_main)
        ref = None
        done = 0
        for images_at, sampler in run.evaluations():
            out = eval_dir(run_dir, images_at, sampler)
            if (out / "eval.json").exists():
                continue
            info = train(cfg, model_dir, images, rt, log=log, stop_after_images=images_at)
            runtime.barrier(rt)
            if not rt.is_main:
                continue
            if ref is None:  # measured once per process: training set, fresh renders, thresholds
                fresh, _ = tasks.render(run.task, run.n_samples, seed=FRESH_SEED + run.seed)
                ref = clock_eval.reference(run, images, fresh)
                R.write_table(clock_eval.reference_points(run, ref), run_dir / "ref" / "points.parquet",
                              R.provenance(config=run.identity(), what="training set and fresh renders, measured"))
            samples, sample_s = _sample(run, model_dir, out, images_at, sampler, rt, log)
            t0 = time.perf_counter()
            row, points = clock_eval.measure(run, samples, images, ref)
            sp = parse_sampler(sampler)
            row = {"task": run.task, "n": run.n, "n_train": len(images), "seed": run.seed, "data_seed": run.seed,
                   "holdout": run.holdout or "", "preset": run.preset, "model": cfg.model,
                   "kimg": images_at / 1000, "images": images_at, "step": _steps_at(model_dir),
                   "sampler": sampler, "sampler_kind": sp["sampler"], "sample_steps": sp["steps"], "eta": sp["eta"],
                   "final": images_at == run.budgets[-1], **row,
                   "train_s": info["train_s"], "sample_s": sample_s, "eval_s": time.perf_counter() - t0,
                   "device": R.device_name(), "run": run.name}
            from fullscale import generate

            generate.save_array(out / "samples.npy", samples)
            R.write_table(points, out / "points.parquet", R.provenance(config=run.identity(), what="per-sample"))
            R.write_json(out / "eval.json", {"row": row, "provenance": R.provenance(config=run.identity())})
            for p in sorted((out / "parts").glob("part-*.npy")):
                p.unlink()
            if (out / "parts").exists():
                (out / "parts").rmdir()
            done += 1
            log(f"[clocks] {run.name} @ {images_at / 1000:g} kimg, {sampler}: parsed {row['parsed']}/{row['n_samples']}, "
                f"coarse viol. {_pct(row['coarse_violation_rate'])}, R2 {_num(row['r2'])}, conform {_num(row['conform_pct'])} %, "
                f"copy {_pct(row['copy_rate'])}, novel {_pct(row['novel_frac'])} (conform {_num(row['novel_conform_pct'])} %)")
        runtime.barrier(rt)
        return {"status": "finished", "evaluated": done, "wall_s": time.perf_counter() - t_run}


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
