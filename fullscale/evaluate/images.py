"""Loading images for the evaluator: data-set directories, array files, folders of PNGs of any size.

Nothing here raises on a bad *image*: unreadable, truncated, tiny or non-square files become failed
slots (a white placeholder plus a reason) that the evaluator counts as parse failures. A bad *path*
(missing, empty, not an image container) is a ``ValueError`` with one clear sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_ANALYSIS = 128  # larger images are area-averaged down to this size (coverage stays linear)
MIN_SIZE = 16
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class ImageSet:
    """Images at one analysis size plus which of them could not be read (and why)."""

    images: np.ndarray  # uint8 [N, H, W, 3]; failed slots are white
    ok: np.ndarray  # bool [N]
    errors: list = field(default_factory=list)  # "" where ok
    names: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    # array-like: np.asarray(iset), iset.shape and iset[i] see the uint8 images
    def __array__(self, dtype=None, copy=None):
        return self.images if dtype is None else self.images.astype(dtype)

    def __getitem__(self, index):
        return self.images[index]

    @property
    def shape(self) -> tuple:
        return self.images.shape

    @property
    def dtype(self):
        return self.images.dtype


def to_rgb_uint8(img, value_range: str | None = None):
    """One image -> (uint8 [H, W, 3] RGB or None, reason). Handles gray, RGBA, channel-first, floats."""
    try:
        a = np.asarray(img)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is a failure, not a crash
        return None, f"unreadable ({type(exc).__name__})"
    if a.dtype == object or a.ndim not in (2, 3) or a.size == 0:
        return None, f"not an image array (shape {list(a.shape)})"
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # channel-first
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] not in (1, 3, 4):
        return None, f"not an image array (shape {list(a.shape)})"
    a = a.astype(np.float64) if a.dtype != np.uint8 else a
    if a.dtype != np.uint8:
        if not np.all(np.isfinite(a)):
            return None, "non-finite pixel values"
        rng = value_range or _value_range(a)
        a = {"-1..1": (a + 1.0) * 127.5, "0..1": a * 255.0, "0..255": a, "0..65535": a / 257.0}[rng]
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:  # composite over white
        alpha = a[..., 3:].astype(np.float32) / 255.0
        a = np.rint(a[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIZE:
        return None, f"too small ({h}x{w})"
    if abs(h - w) > 0.02 * max(h, w):
        return None, f"not square ({h}x{w})"
    return np.ascontiguousarray(a), ""


def _value_range(a: np.ndarray) -> str:
    lo, hi = float(np.min(a)), float(np.max(a))
    if lo < -0.01:
        return "-1..1"
    if hi <= 1.0 + 1e-6:
        return "0..1"
    if hi <= 255.0 + 1e-6:
        return "0..255"
    return "0..65535"


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if a.shape[0] == size and a.shape[1] == size:
        return a
    interp = cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(a, (size, size), interpolation=interp)


def as_imageset(images, names=None, errors=None, size: int | None = None) -> ImageSet:
    """Bring an array [N, H, W, C] / [N, C, H, W], a list of images (None = unreadable) or an
    ImageSet to one analysis size (the most common size, at most 128 px)."""
    if isinstance(images, ImageSet):
        if size is None or images.images.shape[1] == size:
            return images
        names, errors, ok = images.names, images.errors, images.ok
        images = [im if good else None for im, good in zip(images.images, ok)]
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.uint8 \
            and images.shape[-1] == 3 and images.shape[1] == images.shape[2] \
            and images.shape[1] >= MIN_SIZE and (size or min(images.shape[1], MAX_ANALYSIS)) == images.shape[1]:
        n = len(images)  # the fast path: a batch of renders or samples
        return ImageSet(np.ascontiguousarray(images), np.ones(n, dtype=bool), [""] * n,
                        list(names) if names is not None else [str(i) for i in range(n)])
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype != np.uint8 and images.size:
        value_range = _value_range(images) if np.all(np.isfinite(images)) else None
    else:
        value_range = None
    if isinstance(images, np.ndarray) and images.ndim == 3:
        items = [images] if images.shape[-1] in (3, 4) else list(images)  # one image / gray stack
    elif isinstance(images, np.ndarray) and images.ndim != 4:
        items = [images]
    else:
        items = list(images)
    n = len(items)
    errors = list(errors) if errors is not None else [""] * n
    names = list(names) if names is not None else [str(i) for i in range(n)]
    conv = []
    for i, item in enumerate(items):
        if item is None or errors[i]:
            conv.append(None)
            errors[i] = errors[i] or "unreadable"
            continue
        a, why = to_rgb_uint8(item, value_range)
        conv.append(a)
        errors[i] = why
    sizes = [a.shape[0] for a in conv if a is not None]
    if size is None:
        # the most common size (ties: the larger), at most MAX_ANALYSIS
        size = min(max(set(sizes), key=lambda v: (sizes.count(v), v)), MAX_ANALYSIS) if sizes else 32
    out = np.full((n, size, size, 3), 255, dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    for i, a in enumerate(conv):
        if a is not None:
            out[i] = _resize(a, size)
            ok[i] = True
    return ImageSet(out, ok, errors, names)


def _read_file(path: Path):
    """One image file -> array or None, reason (never raises)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("RGB", "RGBA", "L"):
                im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
            return np.asarray(im), ""
    except Exception as exc:  # noqa: BLE001 - truncated / garbage files are failures
        return None, f"unreadable file ({type(exc).__name__})"


def load_images(path, size: int | None = None) -> ImageSet:
    """Images from a data-set directory, an ``.npy`` array file, an image file or a folder of images."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_file():
        if path.suffix == ".npy":
            try:
                arr = np.load(path, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"{path} is not a readable .npy array ({type(exc).__name__})") from None
            if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):  # [N, H, W] grayscale stack
                arr = arr[..., None]
            if arr.ndim != 4:
                raise ValueError(f"{path} holds an array of shape {list(arr.shape)}; expected [N, H, W, C]")
            return as_imageset(arr, size=size)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            a, why = _read_file(path)
            return as_imageset([a], names=[path.name], errors=[why], size=size)
        raise ValueError(f"{path} is neither an .npy array nor an image file")
    if (path / "images.npy").is_file():
        return load_images(path / "images.npy", size=size)
    folder = path / "png" if (path / "png").is_dir() else path
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{path} holds no images.npy and no image files")
    read = [_read_file(p) for p in files]
    return as_imageset([a for a, _ in read], names=[p.name for p in files], errors=[e for _, e in read], size=size)
