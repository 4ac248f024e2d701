"""``dmrules ceiling``: the evaluator-ceiling experiment (issue 11).

Parsing and dispatch only; the work is :mod:`fullscale.evaluate.ceiling`. Standard library only at
module level.
"""

from __future__ import annotations

import argparse
import time

from dmrules.commands import paper_tasks, parse_ints, task_names
from dmrules.commands._paper_eval import _int_type


EXAMPLE = """\
examples:
  dmrules ceiling --out reports/results/ceiling.parquet \\
      --runs reports/results/ddpm_paper/A_unet,reports/results/ddpm_paper/B_unet,reports/results/ddpm_cpu/A_unet
  dmrules ceiling --tasks C --seeds 0 --n 500 --bootstrap 200 --out /tmp/c.parquet     (quick look)

For each task: both evaluators (precise, and the authors' paper protocol with its headline recipe) on
exact renders at the paper's training-set size and 32 px for every data seed (what each evaluator
reads on perfect images: its ceiling), and on the generated samples of every run folder given
(samples.png; a folder with only preview.npy counts its first 64 samples and is marked preview).
One tidy row per set x protocol x metric (r2, slope, intercept, conform_pct, parse_rate,
coarse_violation_rate, n_fit, and gap_* = generated minus ceiling) with bootstrap 95 %% intervals.
A killed run resumes from OUT.parts/.
"""


def _tasks(text: str) -> list[str]:
    out = list(dict.fromkeys(task_names(text)))  # registered names (one line when unknown)
    bad = [t for t in out if t not in paper_tasks()]
    if bad:  # the authors' evaluator has recipes for the paper's tasks only
        raise argparse.ArgumentTypeError(f"the paper protocol covers tasks {','.join(paper_tasks())} only, got {text!r}")
    return out


def _paths(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ceiling", help="the evaluator-ceiling experiment: both evaluators on exact renders and generated sets",
        description="Measure what the precise evaluator and the rules-paper authors' evaluator read on images that "
                    "follow the rule exactly (the ceiling) and on generated samples, with bootstrap intervals.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="F.parquet", help="the tidy table (with provenance)")
    p.add_argument("--tasks", type=_tasks, default=list(paper_tasks()), metavar="A,B,C,D", help="tasks (default all four)")
    p.add_argument("--seeds", type=parse_ints, default=[0, 1, 2], metavar="S,S,...",
                   help="data seeds of the exact-render sets (default 0,1,2)")
    p.add_argument("--n", type=_int_type(10, 100_000), default=None,
                   help="images per exact-render set (default: the paper's training size, A 4000, B-D 2000)")
    p.add_argument("--size", type=_int_type(8, 512), default=32, help="exact-render side in pixels (default 32)")
    p.add_argument("--runs", type=_paths, default=[], metavar="DIR,DIR,...",
                   help="run folders (dmrules run or its --export) whose stored samples are generated sets")
    p.add_argument("--bootstrap", type=_int_type(0, 100_000), default=1000, metavar="B",
                   help="bootstrap resamples per set and protocol (default 1000; 0: no intervals)")
    p.add_argument("--boot-seed", type=_int_type(0, 2**32 - 1), default=0, help="bootstrap seed (default 0)")
    p.set_defaults(func=_run, _prog=p.prog)


def load_runs(paths) -> list[tuple]:
    """``(name, task, images, info)`` per run folder (ValueError with one sentence when unreadable)."""
    import json
    from pathlib import Path

    from fullscale.evaluate import stored

    out = []
    for raw in paths:
        path = Path(raw)
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise ValueError(f"{path} is not a run folder (no config.json)")
        try:
            cfg = json.loads(cfg_path.read_text())["config"]
            task, model, preset = cfg["task"], cfg["model"], cfg["preset"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{cfg_path} is not a dmrules run config") from None
        images, info = stored.load_run_samples(path)
        device = ""
        summary = path / "summary.parquet"
        if summary.is_file():
            import pandas as pd

            full = str(pd.read_parquet(summary).get("device", pd.Series([""])).iloc[0])
            device = full.split(" (")[0]
            if device.startswith("cpu"):  # CPU results depend on the thread count (docs/ddpm.md)
                device = "CPU" + (f", {full.split(' (')[1].rstrip(')')}" if " (" in full else "")
            else:
                device = device.replace("cuda:", "").replace("NVIDIA ", "").split(" ")[0]
        name = f"{model}, {preset} preset" + (f", {device}" if device else "") + (
            f" (first {info['n']} samples)" if info["preview"] else f" ({info['n']} samples)")
        out.append((name, task, images, {**info, "source": str(path), "model": model, "preset": preset}))
    return out


def _fmt(v, lo=None, hi=None) -> str:
    if v is None or v != v:
        return "n/a"
    if lo is None or lo != lo:
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _run(args) -> int:
    from pathlib import Path

    from dmrules import UsageError
    from dmrules import results as R
    from fullscale.evaluate import ceiling
    from fullscale.evaluate.paper_protocol import PAPER_HEADLINE

    if any(s < 0 for s in args.seeds):
        raise UsageError(f"--seeds must be non-negative, got {args.seeds}")
    try:
        runs = load_runs(args.runs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    parts = out.with_name(out.name + ".parts")
    t0 = time.perf_counter()
    df = ceiling.run_ceiling(args.tasks, tuple(args.seeds), n=args.n, runs=runs, size=args.size,
                             n_boot=args.bootstrap, boot_seed=args.boot_seed, parts=parts)
    wall = time.perf_counter() - t0
    config = {"tasks": args.tasks, "seeds": args.seeds, "n": args.n, "size": args.size, "bootstrap": args.bootstrap,
              "boot_seed": args.boot_seed, "runs": [r[3]["source"] for r in runs]}
    R.write_table(df, out, R.provenance(config=config, wall_time_s=wall))
    import shutil

    shutil.rmtree(parts, ignore_errors=True)
    print(f"[ceiling] {len(df)} rows -> {out} in {wall:.1f} s")
    print("R² per task: the paper's number | paper protocol: ceiling, on samples | precise: ceiling, on samples "
          "(bootstrap 95 % intervals)")
    for r in ceiling.summary(df).itertuples():
        print(f"  {r.task} {r.set}: paper {PAPER_HEADLINE[r.task]['r2']:.2f} | "
              f"paper protocol {_fmt(r.paper_ceiling, r.paper_ceiling_lo, r.paper_ceiling_hi)}, "
              f"{_fmt(r.paper_samples, r.paper_samples_lo, r.paper_samples_hi)} | "
              f"precise {_fmt(r.precise_ceiling, r.precise_ceiling_lo, r.precise_ceiling_hi)}, "
              f"{_fmt(r.precise_samples, r.precise_samples_lo, r.precise_samples_hi)}")
    return 0
