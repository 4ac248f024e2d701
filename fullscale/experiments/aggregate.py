"""A sweep's tidy tables (issue 14): every finished evaluation, disjoint-split agreement, band points.

- ``clocks``: one row per (task, n, seed, holdout, kimg, sampler) evaluation (``eval.json`` rows);
- ``split``: one row per (task, n, holdout, kimg, sampler) and seed pair (seeds sorted, taken two
  by two: 0 with 1, 2 with 3): ``novelty.disjoint_agreement`` of their samples, which share every
  per-sample seed;
- ``points``: per-image free-variable values of held-out-band runs at their final budget (generated,
  first sampler) and of their training sets and fresh renders, for the band's histogram;
- ``baselines``: the closed-form denoisers sampled beside the band runs (``band_baselines``).

Partial sweeps aggregate what has finished; the provenance records the coverage (runs finished,
evaluations present of those planned).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dmrules.core import results as R

from .clocks import eval_dir


# leading columns of the clocks table (the rest follow alphabetically)
LEAD = ("task", "n", "n_train", "seed", "data_seed", "holdout", "kimg", "images", "step", "sampler", "final",
        "n_samples", "parse_rate", "coarse_violation_rate", "r2", "slope", "intercept", "conform_pct", "residual_std",
        "copy_rate", "novel_frac", "novel_conform_pct", "train_conform_pct", "band_frac", "band_conform_pct")


def collect(out):
    """All evaluation rows under OUT/runs (a DataFrame, possibly empty)."""
    import pandas as pd

    rows = [json.loads(p.read_text())["row"] for p in sorted(Path(out).glob("runs/*/evals/*/eval.json"))]
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["task", "holdout", "n", "seed", "kimg", "sampler"]).reset_index(drop=True)
        lead = [c for c in LEAD if c in df.columns]
        df = df[lead + sorted(c for c in df.columns if c not in lead)]
    return df


def split_table(out, clocks):
    """Disjoint-split agreement of each seed pair of a cell at each budget and sampler."""
    import pandas as pd

    from fullscale.evaluate import novelty

    rows = []
    if not len(clocks):
        return pd.DataFrame(rows)
    keys = ["task", "n", "holdout", "images", "sampler"]
    for key, grp in clocks.groupby(keys, sort=True):
        seeds = sorted(grp["seed"].unique())
        for a, b in zip(seeds[0::2], seeds[1::2]):
            ra, rb = (grp[grp["seed"] == s].iloc[0] for s in (a, b))
            xa = np.load(eval_dir(Path(out) / "runs" / ra["run"], int(ra["images"]), ra["sampler"]) / "samples.npy")
            xb = np.load(eval_dir(Path(out) / "runs" / rb["run"], int(rb["images"]), rb["sampler"]) / "samples.npy")
            agr = novelty.disjoint_agreement(xa, xb, seed=0)
            rows.append({**dict(zip(keys, key)), "kimg": key[3] / 1000, "seed_a": int(a), "seed_b": int(b),
                         "n_train_a": int(ra["n_train"]), "n_train_b": int(rb["n_train"]), **agr})
    return pd.DataFrame(rows)


def band_points(out, clocks):
    """Free-variable values of the held-out-band runs: train, fresh and generated (final budget)."""
    import pandas as pd

    parts = []
    if not len(clocks):
        return pd.DataFrame()
    sel = clocks[(clocks["holdout"] != "") & clocks["final"]]
    for _, r in sel.iterrows():
        rdir = Path(out) / "runs" / r["run"]
        first = json.loads((rdir / "config.json").read_text())["config"]["sampler"]
        if r["sampler"] != first:
            continue
        gen = R.read_table(eval_dir(rdir, int(r["images"]), r["sampler"]) / "points.parquet")
        gen = gen[["free_variable", "value", "parsed", "conform", "d_pix"]].assign(source="generated")
        ref = R.read_table(rdir / "ref" / "points.parquet")
        tab = pd.concat([ref, gen], ignore_index=True)
        for k in ("task", "n", "n_train", "seed", "holdout", "kimg", "sampler", "band_lo", "band_hi"):
            tab[k] = r[k]
        parts.append(tab)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def coverage(out) -> dict:
    """Planned vs finished runs and evaluations of OUT's manifest."""
    from .clocks import ClockRun, is_done

    path = Path(out) / "manifest.json"
    if not path.exists():
        return {}
    runs = [(ClockRun.from_json(r["spec"]), Path(out) / r["dir"]) for r in json.loads(path.read_text())["runs"]]
    planned = sum(len(r.evaluations()) for r, _ in runs)
    present = sum((eval_dir(d, b, s) / "eval.json").exists() for r, d in runs for b, s in r.evaluations())
    return {"runs_planned": len(runs), "runs_finished": sum(is_done(r, d) for r, d in runs),
            "evaluations_planned": planned, "evaluations_present": present,
            "runs_missing": [r.name for r, d in runs if not is_done(r, d)]}


def write_tables(out, table_path, sweep: dict, log=print) -> dict:
    """Write the clocks table (+ ``*_split`` and, for band runs, ``*_points``) next to ``table_path``."""
    table_path = Path(table_path)
    if table_path.suffix != ".parquet":
        raise ValueError(f"--table must end in .parquet, got {table_path}")
    clocks = collect(out)
    cov = coverage(out)
    wall = float(clocks[["train_s", "sample_s", "eval_s"]].sum().sum()) if len(clocks) else 0.0
    prov = R.provenance(config=sweep, wall_time_s=wall, coverage=cov,
                        devices=sorted(clocks["device"].unique().tolist()) if len(clocks) else [])
    stem = table_path.with_suffix("")
    written = {"clocks": R.write_table(clocks, table_path, prov)}
    split = split_table(out, clocks)
    written["split"] = R.write_table(split, Path(f"{stem}_split.parquet"), prov)
    pts = band_points(out, clocks)
    if len(pts):
        written["points"] = R.write_table(pts, Path(f"{stem}_points.parquet"), prov)
        import pandas as pd

        from .band_baselines import rows as baseline_rows

        base = pd.DataFrame(baseline_rows(out))
        if len(base):
            written["baselines"] = R.write_table(base, Path(f"{stem}_baselines.parquet"), prov)
    log(f"[sweep] {len(clocks)} evaluations ({cov.get('runs_finished', '?')} of {cov.get('runs_planned', '?')} runs "
        f"finished, {cov.get('evaluations_present', '?')} of {cov.get('evaluations_planned', '?')} evaluations) -> "
        + ", ".join(str(p) for p in written.values()))
    return written
