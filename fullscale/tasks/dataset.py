"""Data-set directories: ``images.npy`` (uint8 N x H x W x 3), ``features.parquet``, ``meta.json``,
and optionally ``png/000000.png ...``. Every file is written atomically; ``meta.json`` is written
last, so its presence marks a complete data set (a killed ``dmrules data`` is simply re-run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dmrules import results as R

IMAGES = "images.npy"
FEATURES = "features.parquet"
META = "meta.json"
PNG_DIR = "png"


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
    with R.atomic_path(directory / IMAGES) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, images, allow_pickle=False)
    meta = dict(meta)
    meta.setdefault("n", int(len(images)))
    meta.setdefault("size", int(images.shape[1]))
    prov = R.provenance(config=meta)
    R.write_table(features.reset_index(drop=True), directory / FEATURES, prov)
    if png:
        write_pngs(directory / PNG_DIR, images)
    meta["files"] = {"images": IMAGES, "features": FEATURES, "png": PNG_DIR if png else None}
    meta["provenance"] = prov
    R.write_json(directory / META, meta)
    return directory


def load_dataset(directory):
    """``(images uint8 [N, H, W, 3], features DataFrame, meta dict)`` of a data set directory."""
    directory = Path(directory)
    if not (directory / META).is_file():
        raise ValueError(f"{directory} is not a complete data set (no {META}); make one with `dmrules data`")
    meta = json.loads((directory / META).read_text())
    images = _check_images(np.load(directory / IMAGES, allow_pickle=False))
    features = R.read_table(directory / FEATURES)
    return images, features, meta
