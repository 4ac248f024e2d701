"""The evaluator-ceiling experiment (issue 11): both evaluator families on exact renders and on every
generated set, with bootstrap 95 % intervals.

    table = run_ceiling(seeds=(0, 1, 2), runs=[...])   # the paper's tasks A-D; tidy: one row per set x protocol x metric

For each task: (a) exact renders at the paper's training-set size (A 4000, B-D 2000) and 32 px, one
set per data seed, which follow the rule exactly, so what an evaluator reads on them is its
*ceiling*; (b) generated sets: a run folder's stored samples (``samples.png``), or its first 64
samples (``preview.npy``, marked ``preview``). Protocols: ``precise`` (the toolkit's evaluator, OLS
over every parsed image) and ``paper`` (the authors' generated-sample pipeline with its headline
recipe, spec paper-protocol-evaluator.md Sec. 6).

Uncertainty (toolkit's own choice): a nonparametric bootstrap over images (``n_boot`` resamples of
the set, the whole recipe re-run on each, the C/D jitter re-drawn with seed = replicate index).
Exact renders: the statistic of each seed and their mean ("pooled" rows: per replicate the mean
over seeds of independent resamples). Gaps (``gap_<metric>`` rows) = value on a generated set minus
the pooled ceiling, with the interval of the replicate-wise differences.
"""

from __future__ import annotations

import numpy as np

from fullscale import names

EXACT_PROTOCOLS = names.EVAL_PROTOCOLS  # exact renders get every protocol, the authors' training-image one too
PROTOCOLS = tuple(p for p in EXACT_PROTOCOLS if p != "paper-train")  # on every set (precise, paper)
METRICS = ("r2", "slope", "intercept", "conform_pct", "parse_rate", "coarse_violation_rate", "n_fit")
GAP_METRICS = ("r2", "slope", "conform_pct")


def measure(task: str, images, protocol: str) -> dict:
    """Per-image arrays of one set under one protocol: parsed, x, y, coarse (bool, parsed only
    meaningful) and, for the paper protocol on Task A, the labeller's verdict (labelled, same_side)."""
    from fullscale import evaluate as ev
    from fullscale.evaluate import paper_protocol as pp

    if protocol == "precise":
        t = ev.extract(task, images)
        labelled = t["parsed"].to_numpy(dtype=bool)
        same = ~t["coarse_ok"].to_numpy(dtype=bool, na_value=True)
    else:
        t = pp.extract_paper(task, images, "gen" if protocol == "paper" else "train")
        if task == "A":
            lab = t["label"].astype(str)
            labelled = (lab.str.len() == 3).to_numpy()
            same = (lab.str[2] == "s").to_numpy()
        else:
            labelled = t["parsed"].to_numpy(dtype=bool)
            same = ~t["coarse_ok"].to_numpy(dtype=bool, na_value=True)
    return {"parsed": t["parsed"].to_numpy(dtype=bool), "x": t["rule_x"].to_numpy(dtype=float),
            "y": t["rule_y"].to_numpy(dtype=float), "labelled": labelled, "same_side": same & labelled}


def statistics(task: str, protocol: str, m: dict, idx: np.ndarray | None = None, jitter_seed: int = 0) -> dict:
    """R², slope, intercept, conform %, parse rate and coarse-violation rate of (a resample of) a set."""
    from fullscale.evaluate import metrics
    from fullscale.evaluate import paper_protocol as pp
    from fullscale.tasks import rule_slope

    if idx is None:
        idx = np.arange(len(m["parsed"]))
    parsed, lab, same = m["parsed"][idx], m["labelled"][idx], m["same_side"][idx]
    x, y = m["x"][idx][parsed], m["y"][idx][parsed]
    g = rule_slope(task)
    if protocol == "precise":
        fit = metrics.fit_line(x, y)
        fit["n_fit"] = int(len(x))
        conform = metrics.conform_pct(x, y, g)
    else:
        recipe = pp.RECIPES[(task, "gen" if protocol == "paper" else "train")][0]
        fit = pp.apply_recipe(recipe, x, y, jitter_seed)
        conform = pp.conform(x, y, g)
    n = len(idx)
    return {"r2": fit["r2"], "slope": fit["slope"], "intercept": fit["intercept"], "conform_pct": conform,
            "parse_rate": float(parsed.mean()) if n else None, "n_fit": fit["n_fit"],
            "coarse_violation_rate": float(same.sum() / lab.sum()) if lab.sum() else None}


def _as_array(stats: list[dict]) -> dict:
    return {k: np.array([np.nan if s[k] is None else s[k] for s in stats], dtype=float) for k in METRICS}


def bootstrap(task: str, protocol: str, m: dict, n_boot: int, seed: int) -> dict:
    """``n_boot`` replicate statistics (metric -> array; NaN where a replicate has no fit)."""
    n = len(m["parsed"])
    if not n or not n_boot:
        return {k: np.full(0, np.nan) for k in METRICS}
    rng = np.random.default_rng(seed)
    return _as_array([statistics(task, protocol, m, rng.integers(0, n, n), jitter_seed=b) for b in range(n_boot)])


def _ci(reps: np.ndarray) -> tuple[float, float, int]:
    """Percentile 95 % interval over the finite replicates; NaN when fewer than 10, or fewer than half of
    the replicates, have a value (a statistic that is mostly undefined has no interval)."""
    ok = reps[np.isfinite(reps)]
    if len(ok) < max(10, len(reps) / 2):
        return np.nan, np.nan, int(len(ok))
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return float(lo), float(hi), int(len(ok))


def _rows(base: dict, point: dict, reps: dict) -> list[dict]:
    rows = []
    for k in METRICS:
        v = point[k]
        lo, hi, nb = _ci(reps[k]) if k != "n_fit" and v is not None and np.isfinite(v) else (np.nan, np.nan, 0)
        rows.append({**base, "metric": k, "value": np.nan if v is None else float(v), "ci_lo": lo, "ci_hi": hi,
                     "n_boot": nb})
    return rows


def _gap_rows(base: dict, point: dict, reps: dict, ceil_point: dict, ceil_reps: dict) -> list[dict]:
    """Value on a generated set minus the ceiling, with the interval of replicate-wise differences."""
    rows = []
    for k in GAP_METRICS:
        a, c = point[k], ceil_point[k]
        v = np.nan if a is None or c is None or not np.isfinite(c) else a - c
        m = min(len(reps[k]), len(ceil_reps[k]))
        lo, hi, nb = _ci(reps[k][:m] - ceil_reps[k][:m]) if np.isfinite(v) else (np.nan, np.nan, 0)
        rows.append({**base, "metric": f"gap_{k}", "value": v, "ci_lo": lo, "ci_hi": hi, "n_boot": nb})
    return rows


def _recipe(task: str, protocol: str) -> str:
    from fullscale.evaluate import paper_protocol as pp

    if protocol == "precise":
        return "OLS on parsed"
    return pp.RECIPES[(task, "gen" if protocol == "paper" else "train")][0].name


def _measure_cached(task: str, protocol: str, key: str, images_fn, parts) -> dict:
    """:func:`measure`, kept in ``parts/<key>-<protocol>.npz`` so a killed run resumes."""
    if parts is not None:
        path = parts / f"{key}-{protocol}.npz"
        if path.exists():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
    m = measure(task, images_fn(), protocol)
    if parts is not None:
        import io

        from dmrules.core import results as R

        buf = io.BytesIO()
        np.savez(buf, **m)
        R.write_bytes(path, buf.getvalue())
    return m


def run_ceiling(tasks=None, seeds=(0, 1, 2), n: int | None = None, runs=(), size: int = 32, n_boot: int = 1000,
                boot_seed: int = 0, parts=None, log=print):
    """The experiment's tidy table. ``runs``: ``(name, task, images, info)`` per generated set (info:
    ``source``, ``n``, ``preview``, ...). ``n``: images per exact set (default: the paper's training size).
    ``parts``: a folder for resumable per-set measurements. ``tasks``: default the paper's tasks (the
    task registry's built-in A-D: the authors' evaluator has recipes for these only)."""
    import time
    import warnings

    import pandas as pd

    from fullscale import tasks as T

    tasks = tuple(T.registry.BUILTIN) if tasks is None else tasks
    rows = []
    for task in tasks:
        n_exact = n or T.PAPER_TRAIN_SIZE[task]
        per_seed, points = {}, {}
        for s in seeds:
            t0 = time.perf_counter()
            cache = {}

            def images_fn(s=s, cache=cache):
                if "x" not in cache:
                    cache["x"] = T.render(task, n_exact, size=size, seed=s)[0]
                return cache["x"]

            per_seed[s], points[s] = {}, {}
            for protocol in EXACT_PROTOCOLS:
                m = _measure_cached(task, protocol, f"exact-{task}-{n_exact}-{size}-{s}", images_fn, parts)
                points[s][protocol] = statistics(task, protocol, m)
                per_seed[s][protocol] = bootstrap(task, protocol, m, n_boot, boot_seed + s)
                rows += _rows({"task": task, "set": f"exact renders, seed {s}", "kind": "exact", "protocol": protocol,
                               "recipe": _recipe(task, protocol), "seed": s, "n_images": n_exact, "preview": False,
                               "source": f"fullscale.tasks.render(n={n_exact}, size={size}, seed={s})",
                               "model": "", "preset": ""},
                              points[s][protocol], per_seed[s][protocol])
            log(f"[ceiling] Task {task}: exact renders, seed {s} ({n_exact} images) in {time.perf_counter() - t0:.1f} s")
        ceil_point, ceil_reps = {}, {}
        for protocol in EXACT_PROTOCOLS:
            # the ceiling: the mean over seeds; replicate b = mean over seeds of their replicate b
            with warnings.catch_warnings():  # a replicate where no seed has a fit stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                ceil_reps[protocol] = {k: np.nanmean(np.stack([per_seed[s][protocol][k] for s in seeds]), axis=0)
                                       if n_boot else np.full(0, np.nan) for k in METRICS}
            ceil_point[protocol] = {k: _mean([points[s][protocol][k] for s in seeds]) for k in METRICS}
            rows += _rows({"task": task, "set": "exact renders (seed mean)", "kind": "ceiling", "protocol": protocol,
                           "recipe": _recipe(task, protocol), "seed": None, "n_images": n_exact, "preview": False,
                           "source": f"mean over data seeds {', '.join(map(str, seeds))}",
                           "model": "", "preset": ""},
                          ceil_point[protocol], ceil_reps[protocol])
        for name, rtask, images, info in runs:
            if rtask != task:
                continue
            t0 = time.perf_counter()
            for protocol in PROTOCOLS:
                m = measure(task, images, protocol)
                point = statistics(task, protocol, m)
                reps = bootstrap(task, protocol, m, n_boot, boot_seed)
                base = {"task": task, "set": name, "kind": "generated", "protocol": protocol,
                        "recipe": _recipe(task, protocol), "seed": None, "n_images": int(len(images)),
                        "preview": bool(info.get("preview")), "source": info.get("source", ""),
                        "model": info.get("model", ""), "preset": info.get("preset", "")}
                rows += _rows(base, point, reps)
                rows += _gap_rows(base, point, reps, ceil_point[protocol], ceil_reps[protocol])
            log(f"[ceiling] Task {task}: {name} ({len(images)} images{', preview' if info.get('preview') else ''}) "
                f"in {time.perf_counter() - t0:.1f} s")
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].astype("Int64")
    return df


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summary(df) -> "pd.DataFrame":  # noqa: F821
    """Per task and generated set, the issue's five values (+ the paper's): R² under both protocols on the
    exact renders (ceiling) and on the set, and the gaps to the ceiling. Columns ``<what>``, ``<what>_lo``,
    ``<what>_hi``."""
    import pandas as pd

    out = []
    r2 = df[df.metric.isin(["r2", "gap_r2"])]
    for (task, name), g in r2[r2.kind == "generated"].groupby(["task", "set"], sort=False):
        row = {"task": task, "set": name, "n_images": int(g.n_images.iloc[0]), "preview": bool(g.preview.iloc[0])}
        for protocol in PROTOCOLS:
            ceil = r2[(r2.task == task) & (r2.kind == "ceiling") & (r2.protocol == protocol) & (r2.metric == "r2")]
            for what, sel in ((f"{protocol}_ceiling", ceil), (f"{protocol}_samples", g[(g.protocol == protocol) & (g.metric == "r2")]),
                              (f"{protocol}_gap", g[(g.protocol == protocol) & (g.metric == "gap_r2")])):
                r = sel.iloc[0] if len(sel) else None
                row[what] = np.nan if r is None else r.value
                row[f"{what}_lo"] = np.nan if r is None else r.ci_lo
                row[f"{what}_hi"] = np.nan if r is None else r.ci_hi
        out.append(row)
    return pd.DataFrame(out)
