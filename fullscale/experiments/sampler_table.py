"""The sampler table (issue 13): rule metrics of one trained run under several samplers x steps.

For each run (a ``dmrules train`` folder, only read) and each row spec ``NAME[:STEPS[:ETA]][@N]``
(e.g. ``ddpm@64``, ``ddim:50:1``, ``dpm++2m:20``, ``heun:25``) this samples N images (default
``n``) with the per-sample seeds ``sample_seed..`` into ``WORK/<label>/<row>`` (``dmrules sample``'s
format: a killed call resumes; a finished set is skipped), evaluates them with the precise evaluator
and writes one tidy row: parse rate, coarse-violation rate (binomial SE), R^2 (bootstrap 95 % CI),
slope, conform % (SE), residual std, network calls per sample, wall time and images per second.
Rows whose sampler does not fit the run's objective (ddpm/ddim/dpm++2m for eps/x0/v, euler/heun for
flow) are skipped for that run. The table is rewritten (atomically) after every finished row, so a
cut-off sweep leaves the rows it finished.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dmrules.core import results as R

DEFAULT_ROWS = ("ddpm", "ddim:50:0", "ddim:50:1", "ddim:100:0", "ddim:100:1", "dpm++2m:20", "dpm++2m:50",
                "euler:50", "heun:25")


def parse_row(spec: str) -> dict:
    """``NAME[:STEPS[:ETA]][@N]`` -> {"sampler", "steps", "eta", "n"} (ValueError, one sentence)."""
    from fullscale.samplers import DEFAULT_STEPS, SAMPLERS

    body, _, n = spec.partition("@")
    parts = body.split(":")
    name = parts[0]
    if name not in SAMPLERS or len(parts) > 3 or (len(parts) == 3 and name != "ddim"):
        raise ValueError(f"bad sampler row {spec!r}: want NAME[:STEPS[:ETA]][@N] with NAME one of "
                         f"{', '.join(SAMPLERS)} (ETA for ddim only)")
    try:
        steps = int(parts[1]) if len(parts) > 1 else DEFAULT_STEPS.get(name, 0)
        eta = float(parts[2]) if len(parts) > 2 else 0.0
        count = int(n) if n else None
    except ValueError:
        raise ValueError(f"bad sampler row {spec!r}: STEPS and N are integers, ETA a number") from None
    if (name != "ddpm" and steps < 1) or not 0.0 <= eta <= 1.0 or (count is not None and count < 1):
        raise ValueError(f"bad sampler row {spec!r}: need STEPS >= 1, 0 <= ETA <= 1, N >= 1")
    return {"sampler": name, "steps": steps, "eta": eta, "n": count}


def row_name(row: dict) -> str:
    if row["sampler"] == "ddpm":
        return "ddpm"
    tail = f"-eta{row['eta']:g}" if row["sampler"] == "ddim" else ""
    return f"{row['sampler']}-{row['steps']}{tail}"


def _se(p, k):
    return None if p is None or not k else float(np.sqrt(max(p * (1 - p), 0.0) / k))


def evaluate(task: str, images: np.ndarray) -> dict:
    """Precise-evaluator metrics of a sample set, with binomial SEs and a bootstrap 95 % CI of R^2."""
    from fullscale.evaluate import extract, summarize
    from fullscale.experiments.clock_eval import r2_ci

    table = extract(task, images)
    s = summarize(task, table)
    parsed = table[table["parsed"].to_numpy(dtype=bool)]
    lo, hi = r2_ci(parsed["rule_x"].to_numpy(float), parsed["rule_y"].to_numpy(float))
    n, k = int(s["n"]), int(s["parsed"])
    cv, cp = s.get("coarse_violation_rate"), s.get("conform_pct")
    return {"n_samples": n, "parsed": k, "parse_rate": k / n if n else None, "coarse_violation_rate": cv,
            "coarse_violation_rate_se": _se(cv, k), "r2": s.get("r2"), "r2_lo": lo, "r2_hi": hi,
            "slope": s.get("slope"), "intercept": s.get("intercept"), "residual_std": s.get("variance_error"),
            "conform_pct": cp, "conform_pct_se": None if cp is None else 100 * _se(cp / 100, k)}


def run_table(runs: list, rows: list, work, out, rt, *, n: int = 256, sample_seed: int = 0, batch: int = 128,
              log=print):
    """Sample and evaluate every (run, row) pair; returns the table (also written to ``out``)."""
    import pandas as pd

    from fullscale import generate, samplers

    work, out = Path(work), Path(out)
    records, t_start = [], time.perf_counter()
    for run_dir in runs:
        cfg = generate.load_run(run_dir)
        label = f"{cfg.task}_s{cfg.seed}_{cfg.objective}_{Path(run_dir).name}"
        for row in rows:
            try:
                samplers.check_pair(row["sampler"], cfg.objective)
            except ValueError:
                continue  # a flow row for an eps run (or the reverse): not this run's
            count = row["n"] or n
            dest = work / label / f"{row_name(row)}-n{count}"
            meta = generate.sample_run(run_dir, dest, rt, n=count, seed=sample_seed, sampler=row["sampler"],
                                       steps=row["steps"] if row["sampler"] != "ddpm" else 50, eta=row["eta"],
                                       batch=min(batch, count), png=False, log=log)
            images = np.load(dest / "images.npy")
            ck = meta["request"]["checkpoint"]
            rec = {"task": cfg.task, "train_seed": cfg.seed, "objective": cfg.objective, "model": cfg.model,
                   "preset": cfg.preset, "run": str(run_dir), "images_seen": ck["images"],
                   "finished_training": ck["images"] >= cfg.total_images, "sampler": row["sampler"],
                   "steps": None if row["sampler"] == "ddpm" else row["steps"],
                   "eta": row["eta"] if row["sampler"] == "ddim" else None,
                   "network_calls": samplers.network_calls(row["sampler"], row["steps"]),
                   "sample_seed": sample_seed, "wall_time_s": meta["wall_time_s"], "img_per_s": meta["img_per_s"],
                   "sample_device": meta["provenance"].get("device", rt.describe()),
                   **evaluate(cfg.task, images)}
            records.append(rec)
            log(f"[sampler-table] {label} {row_name(row)}: parsed {rec['parse_rate']:.2f}, coarse viol. "
                f"{rec['coarse_violation_rate'] if rec['coarse_violation_rate'] is not None else float('nan'):.3f}, "
                f"conform {rec['conform_pct'] if rec['conform_pct'] is not None else float('nan'):.1f} %, "
                f"{rec['network_calls']} calls, {rec['wall_time_s']:.0f} s")
            df = pd.DataFrame(records)
            R.write_table(df, out, R.provenance(config={"runs": [str(r) for r in runs], "rows": [row_name(r) for r in rows],
                                                        "n": n, "sample_seed": sample_seed},
                                                wall_time_s=time.perf_counter() - t_start))
    return pd.DataFrame(records)
