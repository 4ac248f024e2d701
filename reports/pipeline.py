"""The figure pipeline behind ``make figures``: results (cached) -> figures -> REPORT.md.

A :class:`Result` is a table made by one ``dmrules`` command, e.g.
``Result("sims_fl", {"default": ["sims", "fl", "--preset", "quick"], "full": [...]})``. The pipeline
runs the command in-process with ``--out reports/cache/<key>-<hash><suffix>`` where the hash is
taken over the command line, so a re-run recomputes only results whose command changed. A
:class:`Figure` names the results it needs and a ``draw(inputs, out_dir)`` function that reads
them and returns the files it wrote.
"""

from __future__ import annotations

import importlib
import pkgutil
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dmrules import results as R

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "cache"
FIGURE_DIR = ROOT / "figures"
COMMITTED = ROOT / "results"
PRESETS = ("default", "full")


@dataclass(frozen=True)
class Result:
    key: str
    argv: dict  # preset -> dmrules argv without the output flag
    suffix: str = ".parquet"  # "" when the command writes a directory
    out_flag: str = "--out"
    # for the "full" preset: a committed result under reports/results/ used when there is no GPU
    committed: str | None = None
    needs_gpu_for: tuple = ("full",)

    def command(self, preset: str) -> list[str]:
        if preset not in self.argv:
            preset = "default"
        return list(self.argv[preset])

    def path(self, preset: str) -> Path:
        argv = self.command(preset)
        return CACHE / f"{self.key}-{R.config_hash(argv, 10)}{self.suffix}"


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    needs: tuple = ()
    draw: Callable = None  # draw(inputs: dict[key, Path], out_dir: Path) -> list[Path]
    section: str = "misc"  # "theory" | "feature-learning" | "rules-data" | "rules-ddpm" | "mitigation"
    paper_vs_ours: Callable | None = None  # optional: inputs -> list of dict rows for the report
    extra: dict = field(default_factory=dict)


def discover() -> list[Figure]:
    """All figures declared by the modules of :mod:`reports.figures`, in module order."""
    import reports.figures as pkg

    figures = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"reports.figures.{info.name}")
        figures.extend(getattr(module, "FIGURES", []))
    return figures


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def ensure_result(result: Result, preset: str, log=print) -> tuple[Path, dict]:
    """Make (or reuse) one result; returns its path and provenance."""
    if preset == "full" and result.committed and not _has_gpu() and "full" in result.needs_gpu_for:
        path = COMMITTED / result.committed
        if path.exists():
            log(f"[reuse] {result.key}: no GPU here, using committed {path.relative_to(ROOT.parent)}")
            return path, {"command": "committed result", "path": str(path)}
        log(f"[warn] {result.key}: no GPU and no committed {result.committed}; computing with the full preset on CPU")
    path = result.path(preset)
    meta_path = path.with_name(path.name + ".json")
    argv = result.command(preset)
    if path.exists() and meta_path.exists():
        log(f"[cached] {result.key} ({shlex.join(['dmrules', *argv])})")
        import json

        return path, json.loads(meta_path.read_text())
    from dmrules.cli import main as dmrules_main

    cmd = [*argv, result.out_flag, str(path)]
    log(f"[run] dmrules {shlex.join(cmd)}")
    t0 = time.perf_counter()
    rc = dmrules_main(cmd)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"`dmrules {shlex.join(cmd)}` failed with exit code {rc}")
    meta = R.provenance(command="dmrules " + shlex.join(argv), wall_time_s=wall, preset=preset)
    R.write_json(meta_path, meta)
    return path, meta


def run(preset: str = "default", only: list[str] | None = None, log=print) -> list[dict]:
    """Make every figure (or those named in ``only``); returns one record per figure."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    figures = discover()
    if only:
        unknown = set(only) - {f.name for f in figures}
        if unknown:
            raise ValueError(f"unknown figure(s) {sorted(unknown)}; known: {sorted(f.name for f in figures)}")
        figures = [f for f in figures if f.name in only]
    records = []
    for fig in figures:
        inputs, provs = {}, {}
        for res in fig.needs:
            inputs[res.key], provs[res.key] = ensure_result(res, preset, log=log)
        t0 = time.perf_counter()
        files = fig.draw(inputs, FIGURE_DIR) or []
        log(f"[figure] {fig.name}: {', '.join(str(Path(f).relative_to(ROOT.parent)) for f in files)}")
        records.append({"figure": fig, "files": [Path(f) for f in files], "provenance": provs,
                        "inputs": inputs, "draw_s": time.perf_counter() - t0})
    return records
