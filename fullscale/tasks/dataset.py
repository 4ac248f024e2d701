"""Data-set directories: ``images.npy`` (uint8 N x H x W x 3), ``features.parquet``, ``meta.json``,
``provenance.json`` and optionally ``png/000000.png ...``. Every file is written atomically;
``meta.json`` is written last, so its presence marks a complete data set (a killed ``dmrules data``
is simply re-run; a damaged file under a complete-looking set is found by :func:`verify_dataset`).

Same seed, same bytes (issue 12): ``images.npy``, ``features.parquet``, ``meta.json`` and the PNGs
depend only on the request (task, n, size, seed, variant) and the library versions; what differs from
run to run (time, command, machine, commit, render time) lives in ``provenance.json`` beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmrules.core import results as R

IMAGES = "images.npy"
FEATURES = "features.parquet"
META = "meta.json"
PROVENANCE = "provenance.json"
PNG_DIR = "png"
VOLATILE = ("render_s",)  # meta keys that change from run to run: kept in provenance.json


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {list(images.shape)}")
    return images


def write_pngs(directory, images: np.ndarray) -> int:
    """Write ``directory/000000.png ...`` (RGB, lossless); returns how many were written."""
    import cv2

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))  # OpenCV wants BGR
        if not ok:  # pragma: no cover - encoding uint8 RGB never fails
            raise RuntimeError(f"PNG encoding failed for image {i}")
        R.write_bytes(directory / f"{i:06d}.png", buf.tobytes())
    return len(images)


def save_dataset(directory, images, features, meta: dict, *, png: bool = False) -> Path:
    """Write a data set directory atomically (``meta.json`` last); returns the directory."""
    directory = Path(directory)
    images = _check_images(images)
    if len(features) != len(images):
        raise ValueError(f"{len(features)} feature rows for {len(images)} images")
    directory.mkdir(parents=True, exist_ok=True)
    R.clean_temps(directory, also=(PNG_DIR,))  # callers hold the folder's lock (the CLI locks --out / RUN)
    with R.atomic_path(directory / IMAGES) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, images, allow_pickle=False)
    meta = dict(meta)
    volatile = {k: meta.pop(k) for k in VOLATILE if k in meta}
    meta.setdefault("n", int(len(images)))
    meta.setdefault("size", int(images.shape[1]))
    # deterministic table metadata: the request only (the run's provenance is in provenance.json)
    R.write_table(features.reset_index(drop=True), directory / FEATURES,
                  {"config": dict(meta), "provenance": PROVENANCE})
    if png:
        write_pngs(directory / PNG_DIR, images)
    meta["files"] = {"images": IMAGES, "features": FEATURES, "png": PNG_DIR if png else None,
                     "provenance": PROVENANCE}
    R.write_json(directory / PROVENANCE, R.provenance(config=dict(meta), **volatile))
    R.write_json(directory / META, meta)
    return directory


def verify_dataset(directory, meta: dict) -> str | None:
    """What is wrong with a data set whose ``meta.json`` says it is complete (None when nothing is):
    a missing, truncated or mis-shaped ``images.npy``, an unreadable ``features.parquet``, missing PNGs."""
    directory = Path(directory)
    size = meta.get("size")
    try:  # a memory map needs the whole array: a truncated file fails here
        arr = np.load(directory / IMAGES, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        return f"{IMAGES} unreadable ({type(exc).__name__})"
    n = len(arr) if arr.ndim else -1
    if arr.dtype != np.uint8 or tuple(arr.shape[1:]) != (size, size, 3):
        return f"{IMAGES} holds {arr.dtype} {list(arr.shape)}, not uint8 [N, {size}, {size}, 3]"
    try:
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(directory / FEATURES).metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - any failure to read the table means: render again
        return f"{FEATURES} unreadable ({type(exc).__name__})"
    if rows != n:
        return f"{FEATURES} has {rows} rows, not {n}"
    if (meta.get("files") or {}).get("png"):
        have = len(list((directory / PNG_DIR).glob("*.png")))
        if have != n:
            return f"{PNG_DIR}/ holds {have} of {n} PNG files"
    return None


def load_dataset(directory):
    """``(images uint8 [N, H, W, 3], features DataFrame, meta dict)`` of a data set directory."""
    directory = Path(directory)
    if not (directory / META).is_file():
        raise ValueError(f"{directory} is not a complete data set (no {META}); make one with `dmrules data`")
    meta = R.read_json(directory / META, "data set record")
    try:
        images = np.load(directory / IMAGES, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{directory / IMAGES} is unreadable (truncated or corrupt: {type(exc).__name__}); "
                         f"re-render it with `dmrules data`, or delete {directory}") from None
    images = _check_images(images)
    features = R.read_table(directory / FEATURES)
    return images, features, meta
