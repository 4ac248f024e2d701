"""Figure cache keys: what a figure's drawing depends on (see :mod:`reports.pipeline`).

A figure is redrawn when its fingerprint changes: the preset, each input's path and creation time,
the source of the module defining it and of the ``reports.figures`` helper modules it uses,
``reports/style.py``, ``reports/reference.py`` (when it compares with the papers), and the committed
files it reads (``Figure.watch`` plus ``Path`` globals under ``reports/results/`` in its modules).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path

from dmrules.core import results as R

ROOT = Path(__file__).resolve().parent


def stat_fp(path: Path) -> list:
    """A cheap fingerprint of a file or folder: names, sizes and modification times."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return [path.name, st.st_size, st.st_mtime_ns]
    if path.is_dir():
        return [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns]
                for p in sorted(path.rglob("*")) if p.is_file()]
    return ["missing"]


def figure_modules(fig) -> dict:
    """The module defining the figure and every ``reports.figures`` module it uses (transitively)."""
    seen: dict = {}
    start = [getattr(fn, "__module__", None) for fn in (fig.draw, fig.paper_vs_ours) if fn is not None]
    stack = [sys.modules.get(name) for name in start if name]
    while stack:
        mod = stack.pop()
        if mod is None or mod.__name__ in seen:
            continue
        seen[mod.__name__] = mod
        for obj in list(vars(mod).values()):
            name = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
            if isinstance(name, str) and name.startswith("reports.figures.") and name not in seen:
                stack.append(sys.modules.get(name))
    return seen


def file_hash(path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def watched(fig, modules: dict, roots: tuple) -> list[Path]:
    """Explicit ``watch`` paths plus the paths under ``roots`` (committed results) held in the figure
    modules' globals."""
    paths = [Path(p) for p in fig.watch]
    for mod in modules.values():
        for obj in vars(mod).values():
            if isinstance(obj, Path) and any(obj == r or r in obj.parents for r in roots):
                paths.append(obj)
    return sorted(set(paths))


def fingerprint(fig, preset: str, provs: dict, committed: Path, extra_roots: tuple = ()) -> str:
    """The figure's cache key: preset, inputs (path, creation time), code, and watched committed files."""
    modules = figure_modules(fig)
    code = {name: file_hash(getattr(mod, "__file__", "")) for name, mod in sorted(modules.items())}
    code["reports.style"] = file_hash(ROOT / "style.py")
    if fig.paper_vs_ours is not None:
        code["reports.reference"] = file_hash(ROOT / "reference.py")
    inputs = {k: [p.get("path", ""), p.get("created", ""), p.get("stat", "")] for k, p in sorted(provs.items())}
    watch = {str(p): stat_fp(p) for p in watched(fig, modules, (Path(committed), *extra_roots))}
    return R.config_hash({"preset": preset, "inputs": inputs, "code": code, "watch": watch}, 16)
