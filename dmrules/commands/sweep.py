"""``dmrules sweep clocks`` and ``dmrules sweep run``: rule clocks over n, training budget and seeds.

Parsing and dispatch only; the work is in :mod:`fullscale.experiments` (docs/clocks.md).
"""

from __future__ import annotations

import argparse
import json

from dmrules.commands import parse_floats, parse_ints, parse_names, positive_int
from fullscale import names  # standard library only

CLOCKS_EXAMPLE = """\
examples:
  dmrules sweep clocks --tasks A,C --n 16,64,256,1024,4000 --seeds 0,1 --preset cpu --out runs/clocks
  dmrules sweep clocks --tasks C --n 64,1024 --seeds 0,1 --preset cpu --holdout r1:0.09:0.11 --out runs/band-C
  dmrules sweep clocks ... --launcher slurm --slurm-partition gpu --slurm-gpus 1 --device cuda
  dmrules sweep clocks ... --aggregate-only --table reports/results/clocks_cpu.parquet

Each (task, n, seed) is one resumable run in OUT/runs/<name>, evaluated at the same budgets in
thousands of images seen (kimg) for every n, on 256 fixed per-sample seeds; the final budget is
sampled again with a second sampler. Re-running skips finished evaluations and resumes the rest.
Writes the tidy table (default OUT/clocks.parquet) plus *_split.parquet (disjoint-split agreement
of seed pairs) and, with --holdout, *_points.parquet."""

RUN_EXAMPLE = """\
examples:
  dmrules sweep run runs/clocks/runs/A-n64-s0
  torchrun --nproc_per_node=4 -m dmrules sweep run runs/clocks/runs/C-n4000-s0 --device cuda"""


def register(sub) -> None:
    sw = sub.add_parser("sweep", help="sweeps of independent resumable runs (rule clocks, held-out band)",
                        description="Sweeps made of independent, resumable runs (issue 14).")
    sw.set_defaults(func=None, _parser=sw)
    acts = sw.add_subparsers(dest="action", metavar="ACTION")

    c = acts.add_parser("clocks", help="train over n x seeds, evaluate at fixed kimg budgets, aggregate",
                        description="Rule clocks: every (task, n, seed) trains once and is evaluated at the "
                                    "same image budgets.\n\n" + CLOCKS_EXAMPLE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--tasks", type=parse_names, required=True, metavar="A,C", help="comma-separated tasks")
    c.add_argument("--n", type=parse_ints, required=True, metavar="N,...",
                   help="training-set sizes, in launch order (put the most informative first)")
    c.add_argument("--seeds", type=parse_ints, default=[0, 1], metavar="S,...",
                   help="seeds; seed s trains on render stream s, so two seeds give disjoint sets (default 0,1)")
    c.add_argument("--preset", choices=sorted(names.PRESETS), default="cpu",
                   help="run preset (fullscale/presets.py); the total is the largest budget (default cpu)")
    c.add_argument("--out", required=True, metavar="DIR", help="sweep folder (manifest.json, runs/)")
    c.add_argument("--kimg", type=parse_floats, default=None, metavar="K,...",
                   help="evaluation budgets in thousands of images seen, the same for every n "
                        "(default cpu 5,10,20,40,80,160; paper 50,...,1600; smoke 0.016,0.032)")
    c.add_argument("--samples", type=positive_int, default=256, help="samples per evaluation (default 256)")
    c.add_argument("--sampler", default=None, metavar="NAME",
                   help="clock sampler: ddpm or ddimSTEPS-etaETA (default cpu ddim100-eta1, paper ddpm)")
    c.add_argument("--second-sampler", default="default", metavar="NAME",
                   help="sampler repeated at the final budget, or none (default cpu/paper ddim100-eta0)")
    c.add_argument("--holdout", default=None, metavar="NAME:LO:HI",
                   help="train without the images whose NAME lies in [LO, HI) ('free' = each task's free variable)")
    c.add_argument("--launcher", choices=names.LAUNCHERS, default="local",
                   help="local process pool (default), SLURM via submitit, or submitit's local/debug executors")
    c.add_argument("--workers", type=positive_int, default=None,
                   help="local pool size (default: cores // threads, i.e. 2 on 2 cores with 1 thread)")
    c.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (default 1)")
    c.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    c.add_argument("--slurm-partition", default=None, help="SLURM partition (slurm launcher)")
    c.add_argument("--slurm-gpus", type=positive_int, default=None, help="GPUs per job (slurm launcher)")
    c.add_argument("--slurm-timeout-min", type=positive_int, default=240, help="job time limit in minutes (default 240)")
    c.add_argument("--table", default=None, metavar="F.parquet", help="aggregate table (default OUT/clocks.parquet)")
    c.add_argument("--aggregate-only", action="store_true", help="run nothing: write the tables from finished evaluations")
    c.add_argument("--plan", action="store_true", help="record the runs in OUT/manifest.json (the aggregate's coverage "
                   "counts against it), print their status, run nothing")
    c.set_defaults(func=_clocks, _prog=c.prog)

    a = acts.add_parser("aggregate", help="write a sweep's tables from its finished evaluations (safe while it runs)",
                        description="Aggregate OUT's finished evaluations into the tidy tables, with the coverage "
                                    "(runs and evaluations finished of those planned) in the provenance.\n\n"
                                    "example:\n  dmrules sweep aggregate runs/clocks --table reports/results/clocks_cpu.parquet",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("sweep_dir", metavar="OUT", help="a sweep folder (with manifest.json)")
    a.add_argument("--table", default=None, metavar="F.parquet", help="aggregate table (default OUT/clocks.parquet)")
    a.set_defaults(func=_aggregate, _prog=a.prog)

    b = acts.add_parser("baselines", help="sample closed-form denoisers of each held-out-band run's training set",
                        description="For every held-out-band run of OUT, `dmrules baseline` samples the empirical and "
                                    "local denoisers of the same (band-less) training set with the run's sampler and "
                                    "seeds into RUN/baselines/; `sweep aggregate` measures them.\n\nexample:\n"
                                    "  dmrules sweep baselines runs/band --denoisers empirical,local:9",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("sweep_dir", metavar="OUT", help="a sweep folder with held-out-band runs")
    b.add_argument("--denoisers", default="empirical,local:9", metavar="LIST",
                   help="empirical, gaussian, local:P, comma-separated (default empirical,local:9)")
    b.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    b.set_defaults(func=_baselines, _prog=b.prog)

    r = acts.add_parser("run", help="run (or resume) one run of a sweep's manifest",
                        description="Run one clock run from its folder's config.json (for schedulers and "
                                    "torchrun).\n\n" + RUN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("run", metavar="RUN", help="a run folder, OUT/runs/<name>")
    r.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: free cores)")
    r.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    r.set_defaults(func=_run_one, _prog=r.prog)


def _perf_json(args) -> dict:
    return {"device": args.device, "threads": args.threads}


def _clocks(args) -> int:
    from pathlib import Path

    from dmrules import UsageError
    from fullscale.experiments import aggregate, clocks, launch

    if args.workers and args.launcher != "local":
        raise UsageError("--workers is for the local launcher; submitit runs one job per run")
    second = None if str(args.second_sampler).lower() == "none" else args.second_sampler
    runs = clocks.make_runs(args.tasks, args.n, args.seeds, args.preset, args.kimg, n_samples=args.samples,
                            sampler=args.sampler, second_sampler=second, holdout=args.holdout)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a directory")
    sweep = {"command": "sweep clocks", "tasks": args.tasks, "n": args.n, "seeds": args.seeds, "preset": args.preset,
             "budgets_images": list(runs[0].budgets), "samples": args.samples, "sampler": runs[0].sampler,
             "second_sampler": runs[0].second_sampler, "holdout": args.holdout, "threads": args.threads,
             "device": args.device}
    if args.plan:  # record the plan (coverage is counted against it), run nothing
        launch.write_manifest(out, runs, sweep)
        for r in runs:
            rdir = launch.run_dir(out, r)
            state = "finished" if clocks.is_done(r, rdir) else "started" if (rdir / "config.json").exists() else "pending"
            print(f"{r.name:<32} {state:<9} budgets {[b / 1000 for b in r.budgets]} kimg, {r.sampler} + {r.second_sampler}")
        return 0
    table = Path(args.table) if args.table else out / "clocks.parquet"
    if table.suffix != ".parquet":
        raise UsageError(f"--table must end in .parquet, got {table}")
    failed = []
    if not args.aggregate_only:
        for r in runs:  # refuse a folder made with another spec before starting anything
            cfg = launch.run_dir(out, r) / "config.json"
            if cfg.exists() and json.loads(cfg.read_text())["config"] != r.to_json():
                raise UsageError(f"{cfg.parent} holds a run of another spec; use a new --out or the same options")
        launch.write_manifest(out, runs, sweep)
        perf = _perf_json(args)
        if args.launcher == "local":
            res = launch.run_local(out, runs, perf, args.workers or launch.default_workers(args.threads))
        else:
            params = {"timeout_min": args.slurm_timeout_min}
            if args.launcher == "slurm":
                params.update({k: v for k, v in (("slurm_partition", args.slurm_partition),
                                                 ("gpus_per_node", args.slurm_gpus)) if v is not None})
            res = launch.run_submitit(out, runs, perf, args.launcher, params)
        failed = [x for x in res if x["status"] == "failed"]
    elif not (out / "manifest.json").exists():
        raise UsageError(f"{out} has no manifest.json: nothing to aggregate")
    aggregate.write_tables(out, table, sweep)
    if failed:
        print(f"[sweep] {len(failed)} run(s) failed; see their log.txt; re-run to retry")
        return 1
    return 0


def _aggregate(args) -> int:
    from pathlib import Path

    from dmrules import UsageError
    from fullscale.experiments import aggregate

    out = Path(args.sweep_dir)
    if not (out / "manifest.json").exists():
        raise UsageError(f"{out} has no manifest.json: not a sweep folder")
    sweep = json.loads((out / "manifest.json").read_text())["sweep"]
    aggregate.write_tables(out, Path(args.table) if args.table else out / "clocks.parquet", sweep)
    return 0


def _baselines(args) -> int:
    from fullscale.experiments import band_baselines

    dens = band_baselines.parse_denoisers(args.denoisers)
    failed = band_baselines.sample_all(args.sweep_dir, dens, threads=args.threads)
    if failed:
        print(f"[baselines] failed: {', '.join(failed)}")
        return 1
    return 0


def _run_one(args) -> int:
    from fullscale.experiments import launch

    spec = launch.load_spec(args.run)
    res = launch.execute(spec.to_json(), args.run, _perf_json(args), to_file=False)
    print(launch._line(res))
    return 1 if res["status"] == "failed" else 0
