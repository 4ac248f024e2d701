"""Closed-form denoisers beside the held-out-band runs (issue 14, Sec. 3).

For every held-out-band run of a sweep, ``dmrules baseline`` (the locality ladder's command) samples
the empirical and local denoisers of *the same* training set (``RUN/data``, the band removed) with the
run's clock sampler and per-sample seeds, into ``RUN/baselines/<label>/`` (``dmrules sample``'s
format). The empirical denoiser reproduces training images, so it puts (almost) nothing in the band; a
local one may. :func:`rows` measures them exactly as the run's own samples are measured
(``clock_eval.measure``: band share, conform % there, copy rate against fresh renders).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .clocks import FRESH_SEED, ClockRun, parse_sampler

DEFAULT_DENOISERS = ("empirical", "local:9")


def parse_denoisers(text: str) -> list[tuple[str, int | None]]:
    """``empirical,local:9,gaussian`` -> [(name, patch)], ValueError on anything else."""
    out = []
    for item in [x.strip() for x in str(text).split(",") if x.strip()]:
        name, _, patch = item.partition(":")
        if name not in ("empirical", "local", "gaussian") or (name == "local") != bool(patch):
            raise ValueError(f"denoiser {item!r}: use empirical, gaussian or local:P (e.g. local:9)")
        try:
            p = int(patch) if patch else None
        except ValueError:
            raise ValueError(f"denoiser {item!r}: P must be an integer") from None
        if p is not None and not 1 <= p <= 32:
            raise ValueError(f"denoiser {item!r}: P must be in [1, 32]")
        out.append((name, p))
    if not out:
        raise ValueError("give at least one denoiser")
    return out


def label(name: str, patch: int | None) -> str:
    return name if patch is None else f"{name}-P{patch}"


def band_runs(out) -> list[tuple[ClockRun, Path]]:
    path = Path(out) / "manifest.json"
    if not path.exists():
        raise ValueError(f"{out} has no manifest.json: not a sweep folder")
    runs = [(ClockRun.from_json(r["spec"]), Path(out) / r["dir"]) for r in json.loads(path.read_text())["runs"]]
    return [(r, d) for r, d in runs if r.holdout]


def sample_all(out, denoisers, threads: int | None = None, log=print) -> list[str]:
    """``dmrules baseline`` for every band run with a training set and every denoiser; returns failures."""
    from dmrules.cli import main
    from fullscale import tasks

    failed = []
    for run, rdir in band_runs(out):
        if not (rdir / "data" / "meta.json").exists():
            log(f"[baselines] {run.name}: no training set yet (the run has not started): skipped")
            continue
        n_kept = len(tasks.load_dataset(rdir / "data")[0])
        sp = parse_sampler(run.sampler)
        for name, patch in denoisers:
            argv = ["baseline", "--denoiser", name, "--task", run.task, "--n", str(n_kept), "--train",
                    str(rdir / "data"), "--samples", str(run.n_samples), "--seed", str(run.sample_seed),
                    "--sampler", sp["sampler"], "--out", str(rdir / "baselines" / label(name, patch))]
            if sp["sampler"] == "ddim":
                argv += ["--steps", str(sp["steps"]), "--eta", f"{sp['eta']:g}"]
            if patch is not None:
                argv += ["--patch", str(patch)]
            if threads:
                argv += ["--threads", str(threads)]
            log(f"[baselines] {run.name}: dmrules {' '.join(argv)}")
            if main(argv) != 0:
                failed.append(f"{run.name}/{label(name, patch)}")
    return failed


def rows(out) -> list[dict]:
    """One row per finished baseline sample set of the band runs, measured like the runs' samples."""
    from fullscale import tasks

    from . import clock_eval

    out_rows = []
    for run, rdir in band_runs(out):
        sets = sorted(p.parent for p in (rdir / "baselines").glob("*/images.npy") if (p.parent / "meta.json").exists())
        if not sets:
            continue
        train = tasks.load_dataset(rdir / "data")[0]
        fresh, _ = tasks.render(run.task, run.n_samples, seed=FRESH_SEED + run.seed)
        ref = clock_eval.reference(run, train, fresh)
        for folder in sets:
            meta = json.loads((folder / "meta.json").read_text())
            samples = np.load(folder / "images.npy")
            row, _ = clock_eval.measure(run, samples, train, ref)
            out_rows.append({"task": run.task, "n": run.n, "n_train": len(train), "seed": run.seed,
                             "holdout": run.holdout, "denoiser": folder.name, "model": meta.get("model", folder.name),
                             "sampler": run.sampler, **row, "wall_time_s": meta.get("wall_time_s"),
                             "device": (meta.get("provenance") or {}).get("device")})
    return out_rows
