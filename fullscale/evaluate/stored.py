"""Stored generated samples: every DDPM run keeps its images as one lossless PNG atlas.

    save_atlas(RUN / "samples.png", images)      # uint8 [N, H, W, 3] -> a PNG of 64 tiles per row
    images = load_atlas(RUN / "samples.png")     # the same bytes back
    images, info = load_run_samples(RUN)          # samples.png, else samples/images.npy, else preview.npy

Why a PNG atlas (measured, docs/evaluate.md): for 32-px samples it is lossless and viewable, and
3000 generated samples take about 2.9 MB (an ``np.savez_compressed`` file ~3.3 MB; WebP lossless
~2.5 MB but less universal). The atlas records N, the tile size and the tile count per row in PNG
text chunks, so padding tiles at the end are not read back as images. Torch-free.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

COLS = 64
PREVIEW_N = 64  # the committed GPU runs kept only their first 64 samples (preview.npy)


def atlas_bytes(images: np.ndarray, cols: int = COLS) -> bytes:
    """PNG bytes of a row-major atlas of uint8 [N, H, W, 3] images (white padding after the last)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"expected uint8 images [N, H, W, 3] with N > 0, got {images.dtype} {list(images.shape)}")
    n, h, w, _ = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    canvas = np.full((rows, cols, h, w, 3), 255, np.uint8)
    canvas.reshape(rows * cols, h, w, 3)[:n] = images
    canvas = canvas.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)
    info = PngInfo()
    info.add_text("dmrules", json.dumps({"n": int(n), "tile_h": int(h), "tile_w": int(w), "cols": int(cols)}))
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG", optimize=True, pnginfo=info)
    return buf.getvalue()


def save_atlas(path, images: np.ndarray, cols: int = COLS) -> Path:
    """Write the atlas atomically."""
    from dmrules.core import results as R

    return R.write_bytes(Path(path), atlas_bytes(images, cols))


def load_atlas(path) -> np.ndarray:
    """uint8 [N, H, W, 3] from an atlas written by :func:`save_atlas` (ValueError if it is not one)."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            meta = json.loads(im.text.get("dmrules", "null") or "null") if hasattr(im, "text") else None
            arr = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - a bad file is one clear sentence
        raise ValueError(f"{path} is not a readable PNG ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or not {"n", "tile_h", "tile_w", "cols"} <= set(meta):
        raise ValueError(f"{path} is a PNG but not a dmrules sample atlas (no 'dmrules' text chunk)")
    n, h, w, cols = (int(meta[k]) for k in ("n", "tile_h", "tile_w", "cols"))
    rows = -(-n // cols)
    if arr.shape[:2] != (rows * h, cols * w):
        raise ValueError(f"{path}: atlas size {arr.shape[:2]} does not match its {n} tiles of {h}x{w}")
    tiles = arr.reshape(rows, h, cols, w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, h, w, 3)
    return np.ascontiguousarray(tiles[:n])


def load_run_samples(run_dir) -> tuple[np.ndarray, dict]:
    """A run's generated images and where they came from: ``samples.png`` (stored samples), else
    ``samples/images.npy`` (a full run directory), else ``preview.npy`` (the first 64 only; ``info``
    says ``preview: True``). ValueError when the folder has none."""
    run_dir = Path(run_dir)
    for name, preview in (("samples.png", False), ("samples/images.npy", False), ("preview.npy", True)):
        path = run_dir / name
        if path.is_file():
            images = load_atlas(path) if path.suffix == ".png" else np.load(path, allow_pickle=False)
            return images, {"file": name, "n": int(len(images)), "preview": preview}
    raise ValueError(f"{run_dir} holds no samples.png, samples/images.npy or preview.npy")
