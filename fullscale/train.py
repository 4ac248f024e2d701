"""The training loop: Adam + EMA on the run's objective (``cfg.objective``; eps by default), resident data, atomic checkpoints, auto-resume, DDP.

edm-style: the loop only sees a config, a denoiser and the loss (which owns the noise law).
Progress is counted in images. Everything random is a pure function of integers, so a run is
reproducible and resumable bit for bit on CPU, and its result does not depend on how the global
batch is split over processes:

- data order: global position p = step * batch + j (j < batch) reads example perm_e[p mod N] where
  e = p div N and perm_e = randperm(N) seeded by (seed, e);
- noise of position p: t and eps from the key derive(seed, p) (fullscale.objectives: the loss owns the noise);
- process r of W takes positions j in [r B/W, (r+1) B/W); DDP averages the gradients, which is
  the gradient of the global mean loss.

Files in RUN: ``checkpoint.pt`` (model, EMA, optimiser, RNG state, step, images seen; written
atomically every ``ckpt_every_kimg``), ``stats.jsonl`` (one line per ``log_every_kimg``),
``config.json``. Re-running the same command resumes from the checkpoint; a NaN/inf loss stops the
run with a clear message before any checkpoint is overwritten.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from dmrules.core import results as R
from dmrules.core.loop import ResumableLoop
from fullscale import rng
from fullscale import objectives
from fullscale.diffusion import EpsilonLoss, from_uint8  # noqa: F401 (EpsilonLoss: the eps objective)
from fullscale.models import build, param_count
from fullscale.runtime import Runtime, prepare


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


CHECKPOINT = "checkpoint.pt"
STATS = "stats.jsonl"


class Order:
    """Dataset index of every global position: per-epoch permutations seeded by (seed, epoch).

    The permutations are drawn on the CPU (the same order on every device) and kept on ``device``;
    a batch's indices are computed there, so a training step makes no blocking host-to-device copy.
    """

    def __init__(self, n: int, seed: int, device=None):
        self.n, self.seed, self.device, self._perms = n, seed, torch.device(device or "cpu"), {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(int(rng.derive(self.seed, epoch, 7).item()) & ((1 << 62) - 1))
            perm = torch.randperm(self.n, generator=g)
            if self.device.type == "cuda":
                perm = perm.pin_memory().to(self.device, non_blocking=True)
            self._perms = {k: v for k, v in self._perms.items() if k >= epoch - 1}
            self._perms[epoch] = perm
        return self._perms[epoch]

    def indices(self, start: int, count: int) -> torch.Tensor:
        first, last = start // self.n, (start + count - 1) // self.n
        pos = torch.arange(start, start + count, device=self.device)
        if first == last:
            return self._perm(first)[pos - first * self.n]
        out = torch.empty(count, dtype=torch.int64, device=self.device)
        for e in range(first, last + 1):
            lo, hi = max(start, e * self.n), min(start + count, (e + 1) * self.n)
            out[lo - start:hi - start] = self._perm(e)[pos[lo - start:hi - start] - e * self.n]
        return out


def data_mean(images: np.ndarray) -> torch.Tensor:
    """The training set's mean image in model units ([-1, 1]), shape [1, 3, H, W] (float32)."""
    mean = torch.from_numpy(images.reshape(len(images), -1).mean(0, dtype=np.float64)).float()
    return from_uint8(mean.view(1, *images.shape[1:]))


class EMA:
    """Exponential moving average of the weights with an edm-style half-life in images."""

    def __init__(self, net: torch.nn.Module):
        self.module = copy.deepcopy(net).requires_grad_(False)
        self._src = [p for p in net.parameters()]
        self._dst = [p for p in self.module.parameters()]

    @torch.no_grad()
    def update(self, beta: float) -> None:
        torch._foreach_lerp_(self._dst, self._src, 1.0 - beta)


def ema_beta(cfg, images_seen: int) -> float:
    """edm: beta = 0.5 ** (batch / half-life), half-life = min(ema_halflife, rampup * images seen)."""
    half = cfg.ema_halflife_kimg * 1000.0
    if cfg.ema_rampup:
        half = min(half, images_seen * cfg.ema_rampup)
    return 0.5 ** (cfg.batch / max(half, 1e-8))


def learning_rate(cfg, images_seen: int) -> float:
    """Linear warm-up over ``warmup_kimg``, then constant (IDDM keeps the rate constant)."""
    warm = cfg.warmup_kimg * 1000.0
    return cfg.lr * (min(1.0, (images_seen + cfg.batch) / warm) if warm > 0 else 1.0)


ADAM_KW = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}
# fused everywhere (issue 13: on CPU 2-3 ms a step faster than foreach, which was the CPU default
# before; the two differ in the last bits, both deterministic; docs/ddpm.md, "Training on CPU")
ADAM_DEFAULT = "fused"


class Trainer:
    """Model, EMA, optimiser and the compiled training step (shared by the loop and the benchmark)."""

    def __init__(self, cfg, rt: Runtime, images: np.ndarray, adam: str | None = None):
        """adam: the Adam implementation, ``fused`` / ``foreach`` / ``forloop`` (the benchmark's
        ablation); default :data:`ADAM_DEFAULT` (on every device)."""
        self.cfg, self.rt = cfg, rt
        torch.manual_seed(cfg.seed)
        self.net = prepare(build(cfg.model, cfg.image_size), rt)
        self.ema = EMA(self.net)
        adam = adam or ADAM_DEFAULT
        if adam not in ADAM_KW:
            raise ValueError(f"unknown Adam implementation {adam!r} (use one of {', '.join(ADAM_KW)})")
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, **ADAM_KW[adam])
        model = self.net
        if rt.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(self.net, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
        self.model = torch.compile(model) if rt.compile else model
        self.data = torch.from_numpy(np.ascontiguousarray(images)).to(rt.device)  # resident, uint8
        # optional centring: the model sees x0 - mean image (see docs/ddpm.md, "cpu preset")
        self.offset = data_mean(images).to(rt.device) if cfg.center else None
        self.order = Order(len(images), cfg.seed, rt.device)
        self.loss_fn = objectives.get(getattr(cfg, "objective", objectives.DEFAULT))
        self.local = cfg.batch // rt.world
        self.lo = rt.rank * self.local

    def _fwd(self, x, t):
        with self.rt.autocast():
            return self.model(x, t)

    def step(self, step: int) -> torch.Tensor:
        """One optimiser step on global positions [step * batch, (step + 1) * batch); returns the loss."""
        cfg, rt = self.cfg, self.rt
        start = step * cfg.batch + self.lo
        seen = step * cfg.batch
        idx = self.order.indices(start, self.local)
        x0 = from_uint8(self.data[idx])
        if self.offset is not None:
            x0 = x0 - self.offset
        if rt.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        keys = rng.derive(cfg.seed, torch.arange(start, start + self.local, device=rt.device))
        for g in self.opt.param_groups:
            g["lr"] = learning_rate(cfg, seen)
        loss = self.loss_fn(self._fwd, x0, keys).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(ema_beta(cfg, seen + cfg.batch))
        return loss.detach()

    def state(self, step: int, images: int) -> dict:
        state = {"model": self.net.state_dict(), "ema": self.ema.module.state_dict(), "opt": self.opt.state_dict(),
                 "step": step, "images": images, "identity": json.dumps(self.cfg.identity(), sort_keys=True),
                 "torch_rng": torch.get_rng_state()}
        if self.offset is not None:
            state["offset"] = self.offset.cpu()
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.ema.module.load_state_dict(ckpt["ema"])
        self.opt.load_state_dict(ckpt["opt"])  # its keys come interned (R.torch_load): same bytes after a resume
        torch.set_rng_state(ckpt["torch_rng"])
        if "cuda_rng" in ckpt and torch.cuda.is_available() and len(ckpt["cuda_rng"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])


CHECKPOINT_KEYS = ("model", "ema", "opt", "step", "images", "identity")


def load_checkpoint(run_dir: Path, map_location="cpu") -> dict | None:
    """RUN/checkpoint.pt, or None when there is none; a zero-byte, truncated or foreign file is a
    ValueError naming it (left in place; issue 12)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None
    return R.torch_load(path, "DDPM checkpoint", CHECKPOINT_KEYS, map_location=map_location)


def identity_diff(recorded: str, cfg) -> str:
    """What differs between a checkpoint's recorded identity (JSON) and ``cfg`` ("task 'B' -> 'A', ...")."""
    try:
        old = json.loads(recorded)
    except (TypeError, ValueError):
        return "unreadable identity"
    new = cfg.identity()
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4]) or "none"


def _loop(run_dir: Path) -> ResumableLoop:
    """The ground floor's loop skeleton for RUN (issue 13): progress in images, stats keyed by kimg."""
    return ResumableLoop(run_dir, checkpoint=CHECKPOINT, stats=STATS, progress_key="kimg", scale=1000)


def _trim_stats(run_dir: Path, images: int) -> None:
    """Drop stats lines written after the checkpoint we resume from (they will be redone; a line cut
    by a kill mid-append too): the ground floor's loop skeleton does it (issue 13)."""
    _loop(run_dir).trim_stats(images)


def _tensors(module: torch.nn.Module) -> list:
    """A module's parameters and floating-point buffers (everything of it a checkpoint saves)."""
    return list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]


def _all_finite(tensors) -> bool:
    return bool(torch.stack([n.float() for n in torch._foreach_norm(tensors)]).isfinite().all())


def train(cfg, run_dir, images: np.ndarray, rt: Runtime, log=print, stop_after_images: int | None = None) -> dict:
    """Train (or resume) until ``cfg.total_images`` images have been seen; returns a summary dict.

    images: uint8 [N, H, W, 3] (the whole training set; kept resident on the device).
    stop_after_images: stop early (tests) after this many images, writing a checkpoint.
    The main process holds RUN's lock (:func:`dmrules.results.lock`: one writer per run) and first
    removes temporary files an interrupted write left behind.
    """
    import contextlib

    ctx = R.lock(run_dir, what="--out") if rt.is_main else contextlib.nullcontext()
    with ctx:
        if rt.is_main:
            R.clean_temps(run_dir, also=("data",), log=log)
        return _train(cfg, run_dir, images, rt, log, stop_after_images)


def _train(cfg, run_dir, images, rt: Runtime, log, stop_after_images) -> dict:
    from tqdm import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.batch % rt.world:
        raise ValueError(f"batch {cfg.batch} is not divisible by the {rt.world} processes")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"training images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    if images.shape[1] != cfg.image_size:
        raise ValueError(f"training images are {images.shape[1]} px but the config says {cfg.image_size}")
    total = cfg.total_images
    ckpt = load_checkpoint(run_dir)
    if ckpt is not None and ckpt["identity"] != json.dumps(cfg.identity(), sort_keys=True):
        raise ValueError(f"{run_dir / CHECKPOINT} is a checkpoint of another config "
                         f"({identity_diff(ckpt['identity'], cfg)}); use a new --out")
    step, seen = (int(ckpt["step"]), int(ckpt["images"])) if ckpt is not None else (0, 0)
    end = total if stop_after_images is None else min(total, stop_after_images)
    if seen >= end:
        return {"images": seen, "steps": step, "train_s": 0.0, "resumed": True, "done_already": True}
    tr = Trainer(cfg, rt, images)
    if rt.is_main:  # also with no checkpoint: a run killed before its first one left lines of a start redone now
        _trim_stats(run_dir, seen)
    if ckpt is not None:
        tr.load(ckpt)
        if rt.is_main:
            log(f"[train] resuming from {run_dir / CHECKPOINT} at {seen / 1000:.1f} kimg (step {step})")
    elif rt.is_main:
        log(f"[train] {cfg.model}: {param_count(tr.net):,} parameters; {total:,} images "
            f"({cfg.epochs:g} epochs x {cfg.n_train}), batch {cfg.batch}, {cfg.total_steps:,} steps, lr {cfg.lr:.3g}")
    log_every = max(1, round(cfg.log_every_kimg * 1000 / cfg.batch))
    ckpt_every = max(1, round(cfg.ckpt_every_kimg * 1000 / cfg.batch))
    acc = torch.zeros((), device=rt.device)  # summed on the device: no host sync between log lines
    since = {"n": 0, "t": time.perf_counter(), "img": seen}
    t_start = time.perf_counter()
    bar = tqdm(total=end, initial=seen, unit="img", unit_scale=True, disable=None if rt.is_main else True,
               desc=f"train {cfg.task}/{cfg.model}", dynamic_ncols=True)

    def one_step(i: int) -> int:
        acc.add_(tr.step(i))
        since["n"] += 1
        bar.update(cfg.batch)
        return cfg.batch

    def record(i: int, images_seen: int) -> dict:
        mean = acc.item() / since["n"]
        if rt.distributed:
            import torch.distributed as dist

            m = torch.tensor([mean], device=rt.device)
            dist.all_reduce(m)
            mean = m.item() / rt.world
        if not math.isfinite(mean):
            kept = (f"the last good checkpoint ({run_dir / CHECKPOINT}) is kept"
                    if (run_dir / CHECKPOINT).exists() else "no checkpoint was written")
            raise TrainingDiverged(f"loss became {mean} at step {i} ({images_seen / 1000:.1f} kimg); {kept}; "
                                   f"try a lower --lr")
        now = time.perf_counter()
        ips = (images_seen - since["img"]) / max(now - since["t"], 1e-9)
        rec = {"kimg": images_seen / 1000, "step": i, "loss": mean, "lr": learning_rate(cfg, images_seen - cfg.batch),
               "img_per_s": ips, "sec_per_kimg": 1000 / max(ips, 1e-9), "elapsed_s": now - t_start}
        if rt.device.type == "cuda":
            rec["gpu_mem_gb"] = torch.cuda.max_memory_allocated(rt.device) / 2**30
        if rt.is_main:
            bar.set_postfix(loss=f"{mean:.4f}", img_s=f"{ips:.0f}")
            if bar.disable:
                eta = (end - images_seen) / max(ips, 1e-9)
                log(f"[train] kimg {images_seen / 1000:8.1f}/{end / 1000:.1f}  loss {mean:.4f}  "
                    f"img/s {ips:7.0f}  sec/kimg {1000 / max(ips, 1e-9):6.3f}  eta {eta / 60:5.1f} min")
        acc.zero_()
        since.update(n=0, t=now, img=images_seen)
        return rec

    def save(path: Path, i: int, images_seen: int) -> None:
        # every saved tensor must be finite, the EMA's included (issue 12: a NaN half-life gave an
        # all-NaN EMA next to finite raw weights, and black samples)
        opt_state = [v for st in tr.opt.state.values() for v in st.values()
                     if torch.is_tensor(v) and v.is_floating_point() and v.dim() > 0]
        for what, tensors in (("weights", _tensors(tr.net)), ("EMA weights", _tensors(tr.ema.module)),
                              ("optimiser state", opt_state)):
            if tensors and not _all_finite(tensors):
                raise TrainingDiverged(f"the {what} became non-finite at step {i}; the last good checkpoint "
                                       "is kept; try a lower --lr")
        if rt.is_main:
            R.torch_save(tr.state(i, images_seen), path)

    tr.model.train()
    # the ground floor's loop skeleton (issue 13): a stats line every log interval, at every checkpoint
    # and at this call's end (``end`` includes stop_after), a checkpoint every interval and at the end
    try:
        out = _loop(run_dir).run(one_step, start_step=step, start_progress=seen, end=end, every_log=log_every,
                                 every_ckpt=ckpt_every, record=record, save=save, log_with_checkpoint=True,
                                 write_stats=rt.is_main)
    finally:
        bar.close()
    wall = time.perf_counter() - t_start
    return {"images": out["progress"], "steps": out["step"], "train_s": wall, "resumed": ckpt is not None,
            "done_already": False}
