"""Shared by the ``ddpm_*`` figures: the DDPM runs to show (no figure of its own).

Two sources: the ``cpu`` preset run on Task A made by ``make figures`` (a :class:`Result`), and the
GPU paper-protocol runs committed under ``reports/results/ddpm_paper/<task>_<model>/`` (made by
``dmrules run ... --preset paper --export reports/results/ddpm_paper/<task>_<model>``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from reports.pipeline import COMMITTED, Result



def _preset_tag(task: str, model: str, preset: str) -> str:
    """A short hash of the preset's resolved config: a changed preset gets a fresh cache folder
    (an existing RUN made with other settings is refused by ``dmrules run``)."""
    from dmrules.core.results import config_hash
    from fullscale.presets import PRESETS, RunConfig, resolve_model

    resolved = resolve_model(preset, model)
    return config_hash(RunConfig(task=task, model=resolved, preset=preset, **PRESETS[preset](task, resolved)).identity(), 8)


# A fixed thread count (not the load heuristic): on CPU the float summation order of the convolutions'
# backward pass depends on it, so the same seed gives another training trajectory with 1 thread than
# with 2 (docs/ddpm.md, "Measured"); 2 threads is the target machine's (and CI's) core count.
CPU_RUN = Result(f"ddpm_cpu_A_{_preset_tag('A', 'unet', 'cpu')}",
                 {"default": ["run", "--task", "A", "--model", "unet", "--preset", "cpu", "--threads", "2"]}, suffix="",
                 needs_gpu_for=())
PAPER_DIR = COMMITTED / "ddpm_paper"
# spec Sec. 4.1: the authors' U-Net generations (R^2 of the OLS fit) and what the coarse rule gave
PAPER_R2 = {"A": 0.85, "B": 0.88, "C": 0.68, "D": 0.85}
TRAIN_FIT = {"A": "y = 1.09x - 0.00, R2 0.99", "B": "y = 1.00x + 0.00, R2 1.00",
             "C": "y = 1.41x - 0.00, R2 1.00", "D": "y = 1.50x - 0.00, R2 1.00"}


def load_run(path: Path, source: str) -> dict | None:
    """A run's small result files as a dict (None when it is not a finished run)."""
    import pandas as pd

    from dmrules.core import results as R
    from fullscale.evaluate import examples

    path = Path(path)
    if not (path / "summary.parquet").exists():
        return None
    summary = R.read_table(path / "summary.parquet")
    row = summary.iloc[0].to_dict()
    return {
        "path": path, "source": source, "task": row["task"], "model": row["model"], "preset": row["preset"],
        "summary": row, "provenance": summary.attrs.get("provenance", {}),
        "eval": json.loads((path / "eval.json").read_text()),
        "points": pd.read_parquet(path / "points.parquet") if (path / "points.parquet").exists() else None,
        "preview": np.load(path / "preview.npy") if (path / "preview.npy").exists() else None,
        "config": json.loads((path / "config.json").read_text())["config"] if (path / "config.json").exists() else {},
        # picked by `dmrules run` (fullscale.pipeline) and exported with the other small result files
        "examples": examples.load_examples(path / "examples.npz") if (path / "examples.npz").exists() else None,
    }


def all_runs(inputs: dict) -> list[dict]:
    """The cpu run (if made) followed by every committed GPU run, sorted by task then model."""
    runs = []
    if CPU_RUN.key in inputs:
        run = load_run(inputs[CPU_RUN.key], "cpu preset (make figures)")
        if run:
            runs.append(run)
    if PAPER_DIR.exists():
        for d in sorted(PAPER_DIR.iterdir()):
            run = load_run(d, "paper protocol (committed GPU run)")
            if run:
                runs.append(run)
    return sorted(runs, key=lambda r: (r["task"], r["preset"] != "paper", r["model"]))


def budget(run: dict) -> tuple[int, int]:
    """(training images this run saw, the paper's image budget for the task: epochs x data size)."""
    from fullscale.presets import PAPER_EPOCHS, PAPER_SIZES

    return int(run["summary"].get("train_images", 0)), PAPER_EPOCHS[run["task"]] * PAPER_SIZES[run["task"]]


def label(run: dict) -> str:
    seen, paper = budget(run)
    reduced = f",\n{seen / paper:.0%} of the paper's image budget" if run["preset"] == "paper" and seen < paper else ""
    return f"Task {run['task']} - {run['model']} ({run['preset']}{reduced})"


FIGURES: list = []
