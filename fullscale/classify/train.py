"""Training rule classifiers on the contrastive ternary data (protocol Sec. 1.5, 6.1, 6.3).

Loss: cross-entropy, optionally + 0.5 NT-Xent (temperature 0.5) on the network's features:
    L2-normalise F; S = F F^T / tau; positives = same label (self included);
    L_NT = -mean_i log( sum_{j pos} exp S_ij / sum_j exp S_ij )          (protocol Sec. 6.1).
Noisy classifiers see x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps with t ~ U{0..T-1} (guided-diffusion
``classifier_train.py``; the DDPM process's training times plus index 0: ``PROCESS.train_time(u, t_min=0)``); clean ones see x_t at t = ``clean_t`` (0: the authors' beta_1 = 1e-4 noise).

Everything random is a pure function of integers (fullscale.rng): training position p reads example
``Order(n, seed)`` (the DDPM loop's per-epoch permutations) and draws its t and eps from the key
derive(seed, p); held-out images get fixed keys, so every evaluation uses the same noise. Same seed,
same classifier on CPU; a killed run resumes from ``C/classifier.pt`` bit for bit.

C (the output directory): ``classifier.pt`` (weights, optimiser, step, ``meta``: task, image size,
arch, noisy/clean, widths; load with weights_only=True), ``config.json``, ``stats.jsonl`` (held-out
accuracy during training), ``metrics.json`` and ``accuracy.parquet`` (final held-out accuracy;
noisy classifiers per noise level t).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dmrules.core import results as R
from dmrules.core.loop import ResumableLoop
from fullscale import rng
from fullscale.classify import nets
from fullscale.classify.config import ClassifierConfig
from theory.schedules import VPProcess

CHECKPOINT = "classifier.pt"
PROCESS = VPProcess()  # the DDPM noise process (issue 13: the classifier takes it; no second forward-noising)
EVAL_TS = (0, 50, 100, 200, 300, 500, 700, PROCESS.t_max)  # noise levels of the held-out accuracy table
_PURPOSE_T, _PURPOSE_EPS = 11, 12
_EVAL_SEED = 987_654_321  # held-out noise keys: derive(_EVAL_SEED, t or -1, index)


# ----------------------------------------------------------------------------
# Loss pieces


def nt_xent(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Supervised NT-Xent (protocol Sec. 6.1): positives are the same-label examples, self included."""
    f = F.normalize(features.float(), dim=1)
    s = f @ f.T / temperature
    pos = labels[:, None] == labels[None, :]
    return (torch.logsumexp(s, dim=1) - torch.logsumexp(s.masked_fill(~pos, float("-inf")), dim=1)).mean()


def q_sample(x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, process=PROCESS) -> torch.Tensor:
    """x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps (Ho et al. 2020, Eq. 4): the process's forward noising."""
    return process.noise(x0, eps, t.to(x0.device))


def draw_noise(cfg: ClassifierConfig, keys: torch.Tensor, shape) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, eps) of the examples with int64 ``keys``: t ~ U{0..T-1} if noisy, else ``clean_t``."""
    if cfg.noisy:  # guided-diffusion: index 0 included
        t = PROCESS.train_time(rng.unit64(rng.derive(keys, _PURPOSE_T)), t_min=0)
    else:
        t = torch.full(keys.shape, cfg.clean_t, dtype=torch.int64, device=keys.device)
    return t, rng.normal(rng.derive(keys, _PURPOSE_EPS), shape)


# ----------------------------------------------------------------------------
# Data


def contrastive_data(cfg: ClassifierConfig, split: str):
    """(images uint8 [N, H, W, 3], labels int64 [N]) of the train or held-out contrastive set."""
    from fullscale import tasks

    n, seed = (cfg.n_train, cfg.data_seed) if split == "train" else (cfg.n_test, cfg.test_seed)
    images, features = tasks.render(cfg.task, n, size=cfg.image_size, seed=seed, contrastive=True)
    return images, np.array(features["label"], dtype=np.int64)


def to_input(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1] (the DDPM's pixel space)."""
    return images_uint8.permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0)


# ----------------------------------------------------------------------------
# Evaluation


def _autocast(device):
    """bf16 autocast on CUDA (the paper-size U-Net), nothing on CPU (fp32, deterministic)."""
    import contextlib

    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(net, images: torch.Tensor, t: torch.Tensor | None, batch: int = 512) -> torch.Tensor:
    """Softmax probabilities [N, 3] of float NCHW inputs (already noised if wanted)."""
    net.eval()
    out = []
    for s in range(0, len(images), batch):
        tt = None if t is None else t[s:s + batch]
        with _autocast(images.device):
            logits = net(images[s:s + batch], tt)
        out.append(F.softmax(logits.float(), dim=-1))
    return torch.cat(out)


def held_out_accuracy(net, cfg: ClassifierConfig, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy on the held-out set. Noisy: ``acc`` over t ~ U{0..T-1} (fixed draws) and ``acc_t`` per
    t in EVAL_TS; clean: ``acc`` at ``clean_t`` noise. Also the accuracy on each class."""
    x0 = to_input(images)
    idx = torch.arange(len(x0), device=x0.device)

    def acc_at(t_value: int | None) -> tuple[float, list]:
        keys = rng.derive(_EVAL_SEED, -1 if t_value is None else t_value, idx)
        t, eps = draw_noise(cfg, keys, x0.shape[1:])
        if t_value is not None:
            t = torch.full_like(t, t_value)
        pred = predict(net, q_sample(x0, t, eps.to(x0.device)), t).argmax(1)
        ok = (pred == labels).float()
        return float(ok.mean()), [float(ok[labels == k].mean()) if (labels == k).any() else float("nan")
                                  for k in range(nets.N_CLASSES)]

    if not cfg.noisy:
        acc, per_class = acc_at(cfg.clean_t)
        return {"acc": acc, "acc_per_class": per_class}
    acc, per_class = acc_at(None)
    return {"acc": acc, "acc_per_class": per_class, "acc_t": {str(t): acc_at(t)[0] for t in EVAL_TS}}


# ----------------------------------------------------------------------------
# Checkpoints


def meta_of(cfg: ClassifierConfig) -> dict:
    """What a guide or a filter needs to know about a classifier (stored in the checkpoint)."""
    return {"task": cfg.task, "image_size": cfg.image_size, "arch": cfg.arch, "noisy": cfg.noisy,
            "width": cfg.width, "depth": cfg.depth, "preset": cfg.preset, "clean_t": cfg.clean_t,
            "steps": cfg.steps, "nt_xent": cfg.nt_xent}


def checkpoint_path(path) -> Path:
    path = Path(path)
    return path / CHECKPOINT if path.is_dir() or path.suffix != ".pt" else path


def load_classifier(path, device="cpu"):
    """(net in eval mode on ``device``, meta dict) from a classifier directory or its ``classifier.pt``."""
    p = checkpoint_path(path)
    if not p.exists():
        raise ValueError(f"{path} is not a classifier (no {CHECKPOINT}); train one with `dmrules classifier train`")
    ckpt = R.torch_load(p, "classifier checkpoint", ("model", "meta", "step"))
    if (p.parent / "config.json").exists() and ckpt.get("identity") is not None:
        # issue 12: a classifier.pt copied into another classifier's folder is refused, like train refuses it
        from fullscale.classify.config import ClassifierConfig

        recorded = R.read_json(p.parent / "config.json", "classifier config")
        try:
            want = json.dumps(ClassifierConfig.from_json(recorded["config"]).identity(), sort_keys=True)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{p.parent / 'config.json'} is not a dmrules classifier config; restore it") from None
        if ckpt["identity"] != want:
            raise ValueError(f"{p} was trained with another config than {p.parent / 'config.json'}; use the folder "
                             "that made it")
    try:
        meta = dict(ckpt["meta"])
        net = nets.build(meta["arch"], meta["noisy"], meta["image_size"], meta["width"], meta["depth"])
        net.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError, TypeError, EOFError, ValueError) as exc:
        raise ValueError(f"{p} is not a dmrules classifier checkpoint ({type(exc).__name__})") from None
    meta["step"] = int(ckpt["step"])
    meta["finished"] = int(ckpt["step"]) >= int(meta["steps"])
    return net.to(device).eval(), meta


# ----------------------------------------------------------------------------
# The loop


def _check_dir(cfg: ClassifierConfig, out: Path) -> None:
    R.claim_dir(out, cfg, ClassifierConfig.from_json, "classifier")


def learning_rate(cfg: ClassifierConfig, step: int) -> float:
    """Constant (the authors') or cosine decay to zero over ``steps`` (ours: a stable final model)."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    return cfg.lr


def _optimizer(cfg: ClassifierConfig, net):
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _write_results(cfg: ClassifierConfig, out: Path, res: dict, extra: dict) -> dict:
    import pandas as pd

    metrics = {"task": cfg.task, "arch": cfg.arch, "kind": cfg.kind, "nt_xent": cfg.nt_xent, "preset": cfg.preset,
               "image_size": cfg.image_size, "n_train": cfg.n_train, "n_test": cfg.n_test, "steps": cfg.steps,
               "batch": cfg.batch, **res, **extra}
    if cfg.noisy:
        metrics["acc_clean"] = res["acc_t"]["0"]
    rows = [{"t": None if not cfg.noisy else "uniform", "acc": res["acc"]}]
    rows += [{"t": t, "acc": a} for t, a in res.get("acc_t", {}).items()]
    df = pd.DataFrame([{"task": cfg.task, "arch": cfg.arch, "kind": cfg.kind, "nt_xent": cfg.nt_xent,
                        "preset": cfg.preset, "noise_t": "clean_t=%d" % cfg.clean_t if r["t"] is None else str(r["t"]),
                        "acc": r["acc"], "n_test": cfg.n_test} for r in rows])
    prov = R.provenance(config=cfg.identity(), wall_time_s=extra.get("train_s"))
    R.write_table(df, out / "accuracy.parquet", prov)
    R.write_json(out / "metrics.json", {**metrics, "provenance": prov})
    return metrics


def train_classifier(cfg: ClassifierConfig, out_dir, device="cpu", log=print, stop_after: int | None = None) -> dict:
    """Train (or resume) a classifier into ``out_dir``; returns the metrics (held-out accuracy ...).

    ``stop_after``: stop after this many steps with a checkpoint (tests of resuming).
    """
    out = Path(out_dir)
    with R.lock(out, what="--out"):  # one writer per classifier folder (issue 12)
        out.mkdir(parents=True, exist_ok=True)
        R.clean_temps(out, log=log)
        return _train_classifier(cfg, out, device, log, stop_after)


def _train_classifier(cfg: ClassifierConfig, out: Path, device, log, stop_after) -> dict:
    from tqdm import tqdm

    _check_dir(cfg, out)
    device = torch.device(device)
    ckpt_file = out / CHECKPOINT
    ckpt = (R.torch_load(ckpt_file, "classifier checkpoint", ("model", "opt", "step", "meta"))
            if ckpt_file.exists() else None)
    if ckpt is not None and ckpt.get("identity") != json.dumps(cfg.identity(), sort_keys=True):
        raise ValueError(f"{ckpt_file} belongs to another config; use a new --out")
    step = int(ckpt["step"]) if ckpt is not None else 0
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    if ckpt is not None and step >= cfg.steps and (out / "metrics.json").exists():
        metrics = R.read_json(out / "metrics.json", "classifier metrics file")
        log(f"[classifier] {out} is finished ({step} steps): held-out accuracy {metrics['acc']:.4f} (skipped)")
        return {**metrics, "skipped": True}

    t0 = time.perf_counter()
    tr_img, tr_lab = contrastive_data(cfg, "train")
    te_img, te_lab = contrastive_data(cfg, "test")
    log(f"[classifier] rendered {len(tr_img)} + {len(te_img)} held-out contrastive Task {cfg.task} images "
        f"in {time.perf_counter() - t0:.1f} s")
    data = torch.from_numpy(tr_img).to(device)
    labels = torch.from_numpy(tr_lab).to(device)
    test_x, test_y = torch.from_numpy(te_img).to(device), torch.from_numpy(te_lab).to(device)

    torch.manual_seed(cfg.seed)
    net = nets.build(cfg.arch, cfg.noisy, cfg.image_size, cfg.width, cfg.depth).to(device)
    opt = _optimizer(cfg, net)
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        log(f"[classifier] resuming {ckpt_file} at step {step}")
    else:
        log(f"[classifier] {cfg.kind} {cfg.arch} for Task {cfg.task}: {nets.param_count(net):,} parameters, "
            f"{cfg.steps} steps of {cfg.batch}, {cfg.optimizer} lr {cfg.lr:g}"
            + (f", CE + {cfg.nt_xent_weight} NT-Xent (tau {cfg.temperature})" if cfg.nt_xent else ", CE"))
    from fullscale.train import Order

    order = Order(len(data), cfg.seed)
    shape = (3, cfg.image_size, cfg.image_size)
    bar = tqdm(total=end, initial=step, unit="step", disable=None, desc=f"classifier {cfg.task}/{cfg.kind}-{cfg.arch}")
    t_train = time.perf_counter()
    # the ground floor's loop skeleton (issue 13): stats lines, checkpoints and the trimming of stats.jsonl on
    # every start (evaluations after the checkpoint, or all of them when a kill came before the first one,
    # are redone; a torn line too). Its ``end`` is this call's end, so a stop_after run evaluates at its stop.
    loop = ResumableLoop(out, checkpoint=CHECKPOINT, progress_key="step")
    loop.trim_stats(step)
    last = {}

    def train_step(i: int) -> None:
        net.train()
        for g in opt.param_groups:
            g["lr"] = learning_rate(cfg, i)
        pos = torch.arange(i * cfg.batch, (i + 1) * cfg.batch)
        idx = order.indices(i * cfg.batch, cfg.batch).to(device)
        t, eps = draw_noise(cfg, rng.derive(cfg.seed, pos.to(device)), shape)
        x = q_sample(to_input(data[idx]), t, eps)
        with _autocast(device):
            logits, feats = net.forward_features(x, t)
        loss = F.cross_entropy(logits.float(), labels[idx])
        if cfg.nt_xent:
            loss = loss + cfg.nt_xent_weight * nt_xent(feats, labels[idx], cfg.temperature)
        if not torch.isfinite(loss):
            raise ValueError(f"the classifier loss became {loss.item()} at step {i}; try a lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last["loss"] = float(loss.detach())
        bar.update(1)

    def record(i: int, _progress) -> dict:
        res = held_out_accuracy(net, cfg, test_x, test_y)
        bar.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{res['acc']:.3f}")
        if bar.disable:
            log(f"[classifier] step {i}/{cfg.steps}  loss {last['loss']:.4f}  held-out acc {res['acc']:.4f}")
        return {"step": i, "loss": last["loss"], "acc": res["acc"], "elapsed_s": time.perf_counter() - t_train}

    def save(path: Path, i: int, _progress) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise ValueError(f"the classifier's weights became non-finite at step {i}; the last good "
                             f"checkpoint is kept; try a lower --lr")
        R.torch_save({"model": net.state_dict(), "opt": opt.state_dict(), "step": i, "meta": meta_of(cfg),
                      "identity": json.dumps(cfg.identity(), sort_keys=True)}, path)

    step = loop.run(train_step, start_step=step, start_progress=step, end=end, every_log=cfg.eval_every,
                    every_ckpt=cfg.ckpt_every, record=record, save=save)["step"]
    bar.close()
    train_s = time.perf_counter() - t_train
    if step < cfg.steps:
        return {"step": step, "finished": False, "train_s": train_s}
    res = held_out_accuracy(net, cfg, test_x, test_y)
    metrics = _write_results(cfg, out, res, {"params": nets.param_count(net), "train_s": train_s,
                                             "device": R.device_name()})
    extra = f" (clean images: {metrics['acc_clean']:.4f})" if cfg.noisy else ""
    log(f"[classifier] held-out accuracy of the {cfg.kind} {cfg.arch} on Task {cfg.task}: {res['acc']:.4f}{extra} "
        f"on {cfg.n_test} images; wrote {out / 'metrics.json'}")
    return metrics
