"""Pixel-space filtering of generated samples with a rule classifier (protocol Sec. 6.3).

A classifier trained on the contrastive ternary data (class 1 = rule-conforming) keeps the samples it
predicts as class 1; for Task D the authors also required softmax > 0.7 (``DEFAULT_MIN_PROB``).
Clean classifiers see the images as they are (their training noise, beta_1 = 1e-4, is 0.01 in
[-1, 1] units and is not added here); a noisy classifier may filter too, evaluated at t = 0.

``filter_samples`` writes OUT/images.npy (the kept samples, uint8), OUT/predictions.parquet (one row
per input sample: index, name, p0, p1, p2, pred, kept; with provenance), OUT/meta.json (written
last; a re-run with the same request skips) and OUT/png/ when asked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dmrules.core import results as R

DEFAULT_MIN_PROB = {"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.7}  # a task not listed (registry): 0.0


def class_probabilities(net, meta: dict, images: np.ndarray, device="cpu", batch: int = 512) -> np.ndarray:
    """Softmax probabilities [N, 3] of uint8 [N, H, W, 3] images under a loaded classifier."""
    import torch

    from fullscale.classify.train import predict, to_input

    x = to_input(torch.from_numpy(np.ascontiguousarray(images)).to(device))
    t = torch.zeros(len(x), dtype=torch.int64, device=device) if meta["noisy"] else None
    return predict(net, x, t, batch=batch).cpu().numpy()


def keep_mask(probs: np.ndarray, min_prob: float = 0.0) -> np.ndarray:
    """Samples predicted rule-conforming (argmax = 1) with p(y = 1) > min_prob."""
    return (probs.argmax(axis=1) == 1) & (probs[:, 1] > min_prob)


def _sample_task(samples: Path) -> str | None:
    """The task recorded next to the samples (``dmrules sample`` / ``dmrules data`` meta.json), if any."""
    for meta in (samples / "meta.json", samples.parent / "meta.json"):
        if meta.is_file():
            try:
                return json.loads(meta.read_text()).get("task")
            except (ValueError, AttributeError):
                return None
    return None


def load_checked(task: str, classifier, samples, device="cpu"):
    """(net, meta, ImageSet) with the checks a filter needs: same task, same image size."""
    from fullscale.classify import load_classifier
    from fullscale.evaluate import load_images

    net, meta = load_classifier(classifier, device)
    if meta["task"] != task:
        raise ValueError(f"{classifier} is a classifier for Task {meta['task']}, not Task {task}")
    samples = Path(samples)
    recorded = _sample_task(samples) if samples.is_dir() else None
    if recorded and recorded != task:
        raise ValueError(f"{samples} holds Task {recorded} samples, not Task {task}")
    iset = load_images(samples)
    if len(iset) == 0:
        raise ValueError(f"{samples} holds no images")
    size = int(iset.shape[1])
    if size != int(meta["image_size"]) or iset.shape[2] != size:
        raise ValueError(f"{classifier} was trained on {meta['image_size']} px images, but {samples} holds "
                         f"{iset.shape[1]}x{iset.shape[2]} px images")
    return net, meta, iset


def filter_samples(task: str, classifier, samples, out_dir, *, min_prob: float | None = None, device="cpu",
                   png: bool = False, log=print) -> dict:
    """Keep the samples the classifier calls rule-conforming; returns the summary written to OUT/meta.json."""
    from fullscale.tasks import check_task

    task = check_task(task)
    min_prob = DEFAULT_MIN_PROB.get(task, 0.0) if min_prob is None else float(min_prob)
    if not 0.0 <= min_prob < 1.0:  # NaN fails this too
        raise ValueError(f"--min-prob must be in [0, 1), got {min_prob}")
    out = Path(out_dir)
    with R.lock(out, what="--out"):  # one writer per output folder (issue 12)
        R.clean_temps(out, also=("png",), log=log)
        return _filter(task, classifier, samples, out, min_prob, device, png, log)


def _filter(task, classifier, samples, out: Path, min_prob, device, png, log) -> dict:
    import pandas as pd

    request = {"task": task, "classifier": str(Path(classifier).resolve()), "samples": str(Path(samples).resolve()),
               "min_prob": min_prob}
    if (out / "meta.json").exists() and (out / "images.npy").exists():
        old = R.read_json(out / "meta.json", "filter record")
        if isinstance(old, dict) and old.get("request") == request:
            log(f"[filter] {out} already holds this filter's output ({old['kept']} of {old['n']} kept): skipped")
            return old
        raise ValueError(f"{out} holds the output of another filter request; use a new --out")
    t0 = time.perf_counter()
    net, meta, iset = load_checked(task, classifier, samples, device)
    if not meta["finished"]:
        log(f"[filter] warning: {classifier} stopped at step {meta['step']} of {meta['steps']} (unfinished)")
    images = np.asarray(iset.images)
    probs = class_probabilities(net, meta, images, device)
    kept = keep_mask(probs, min_prob) & np.asarray(iset.ok, dtype=bool)
    names = list(getattr(iset, "names", None) or [])
    if len(names) != len(images):
        names = [str(i) for i in range(len(images))]
    table = pd.DataFrame({"index": np.arange(len(images)), "name": names, "p0": probs[:, 0], "p1": probs[:, 1],
                          "p2": probs[:, 2], "pred": probs.argmax(1), "kept": kept})
    prov = R.provenance(config=request, wall_time_s=time.perf_counter() - t0)
    R.write_table(table, out / "predictions.parquet", prov)
    from fullscale.generate import save_array, write_pngs

    save_array(out / "images.npy", images[kept])
    if png:
        write_pngs(images[kept], out / "png", np.flatnonzero(kept))
    summary = {"request": request, "task": task, "n": int(len(images)), "kept": int(kept.sum()),
               "kept_frac": float(kept.mean()), "mean_p1": float(probs[:, 1].mean()),
               "predicted": {str(k): int((probs.argmax(1) == k).sum()) for k in range(3)},
               "classifier": {k: meta[k] for k in ("arch", "noisy", "image_size", "preset", "step")},
               "provenance": prov}
    R.write_json(out / "meta.json", summary)
    log(f"[filter] kept {summary['kept']} of {summary['n']} samples ({100 * summary['kept_frac']:.1f} %) predicted "
        f"rule-conforming by {meta['arch']} ({'noisy' if meta['noisy'] else 'clean'}"
        f"{f', p > {min_prob:g}' if min_prob else ''}) -> {out / 'images.npy'}")
    return summary
