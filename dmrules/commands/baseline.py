"""``dmrules baseline`` (closed-form denoisers sampled like a trained DDPM) and ``dmrules ladder`` (the
locality ladder beside trained U-Nets). Parsing and dispatch only; the work is in
:mod:`fullscale.baselines` (the denoisers) and :mod:`fullscale.ladder` (sampling, the experiment).
"""

from __future__ import annotations

import argparse

from dmrules.commands import T_MAX, nonneg_int, paper_tasks, positive_int, positive_ints, task_name, task_names, unit_float
from fullscale.names import DENOISERS  # standard library only (fullscale.baselines uses it too)

BASELINE_EXAMPLE = """\
examples:
  dmrules baseline --denoiser empirical --task A --n 64 --out runs/ladder/A-n64/empirical
  dmrules baseline --denoiser local --patch 9 --task C --n 1024 --out runs/ladder/C-n1024/local-P9
  dmrules baseline --denoiser local --patch 5 --equivariant --task A --n 16 --samples 32 --out runs/els
  dmrules baseline --denoiser gaussian --task B --n 1024 --out runs/ladder/B-n1024/gaussian
  dmrules evaluate --task C runs/ladder/C-n1024/local-P9/images.npy --json
Writes OUT/images.npy and OUT/meta.json like `dmrules sample` (sample k uses seed SEED+k, the same
noise as a trained run's samples); the default sampler is the cpu preset's (DDIM 100 steps, eta 1),
on centred images. The training set is `dmrules run --n-train N`'s (same renderer, --data-seed).
A killed call resumes."""

LADDER_EXAMPLE = """\
examples:
  dmrules ladder --tasks A,C --n 64,1024 --unet runs/ladder/unet --work runs/ladder \\
      --out reports/results/ladder_cpu.parquet
  dmrules ladder --theory --out reports/results/ladder_theory.parquet   (the theory rung)
U-Net runs are read from UNET/<task>-n<n>/ (made by `dmrules run --preset cpu --n-train N
--epochs 160000/N --n-samples 256 --out UNET/<task>-n<N>`; docs/baselines.md); missing ones are skipped.
Each finished (task, n, rung) is kept under WORK, so a re-run only does what is missing."""


_task, _tasks = task_name, task_names  # the task registry (fullscale/tasks/registry.py)


def _sampler_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampler (default: the cpu preset's, as the U-Nets are sampled)")
    g.add_argument("--samples", type=positive_int, default=256, help="samples per denoiser (default 256)")
    g.add_argument("--seed", type=nonneg_int, default=0, help="sample k uses seed SEED+k (default 0)")
    g.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim",
                   help=f"ddim (default; --steps, --eta) or ddpm (ancestral, {T_MAX} steps)")
    g.add_argument("--steps", type=positive_int, default=100, help="DDIM steps (default 100)")
    g.add_argument("--eta", type=unit_float, default=1.0, help="DDIM eta: 0 deterministic, 1 stochastic (default 1)")
    g.add_argument("--batch", type=positive_int, default=64, help="samples per batch (default 64; memory grows with it)")
    g.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")


def register(sub) -> None:
    b = sub.add_parser("baseline", help="sample a closed-form denoiser (empirical, local P x P, gaussian)",
                       description="Sample the training set's closed-form denoiser with a DDPM sampler (no training):\n"
                       "empirical (memorises), local (Kamb & Ganguli's patch machine) or gaussian (Wiener).\n\n"
                       + BASELINE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--denoiser", required=True, choices=DENOISERS, help="which closed-form denoiser")
    b.add_argument("--patch", type=positive_int, default=None, help="P: the local denoiser's P x P neighbourhood "
                   "(3, 5, 9, 15, 32 in the ladder; 32 = the whole image = empirical)")
    b.add_argument("--equivariant", action="store_true", help="local only: translation-equivariant (ELS) variant, "
                   "every P x P patch of every training image is a candidate (costly: for small n)")
    b.add_argument("--task", required=True, type=_task, help="task A, B, C or D")
    b.add_argument("--n", required=True, type=positive_int, help="training set size")
    b.add_argument("--data-seed", type=nonneg_int, default=0, help="training set render seed (default 0, as `dmrules run`)")
    b.add_argument("--train", metavar="DIR", default=None, help="read the training set from a data directory "
                   "(`dmrules data` or RUN/data) instead of rendering it; it must hold N images")
    b.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                   help="work on centred images, as the cpu preset's U-Nets do (default on)")
    b.add_argument("--png", action="store_true", help="also write OUT/png/<seed>.png")
    b.add_argument("--out", required=True, metavar="OUT", help="output folder: images.npy, meta.json")
    _sampler_args(b)
    b.set_defaults(func=_baseline, _prog=b.prog)

    lad = sub.add_parser("ladder", help="the locality ladder on tasks x n beside trained U-Nets (one table)",
                         description="Sample every rung (empirical, local P, gaussian), evaluate it (precise protocol + "
                         "novelty against fresh renders) beside the U-Net at the same n; one tidy parquet.\n\n"
                         + LADDER_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    lad.add_argument("--tasks", type=_tasks, default=list(paper_tasks()), help="comma-separated tasks (default A,B,C,D)")
    lad.add_argument("--n", type=positive_ints, default=[64, 1024], help="training set sizes (default 64,1024)")
    lad.add_argument("--patch", type=positive_ints, default=[3, 5, 9, 15, 32], help="local rungs' P (default 3,5,9,15,32)")
    lad.add_argument("--unet", metavar="DIR", default=None, help="folder of U-Net runs named <task>-n<n> (optional)")
    lad.add_argument("--work", metavar="DIR", help="folder for the rungs' samples and per-rung rows (needed "
                     "unless --theory)")
    lad.add_argument("--collect", action="store_true", help="sample nothing: a table of the rungs already "
                     "finished under --work (plus fresh renders and U-Nets), e.g. while a long ladder runs")
    lad.add_argument("--theory", action="store_true", help="only the theory rung: the rules law (theory.RulePatches) "
                     "sampled with the exact and the patch-wise score (seconds; no --work)")
    lad.add_argument("--out", required=True, metavar="F.parquet", help="the tidy table (with provenance)")
    _sampler_args(lad)
    lad.set_defaults(func=_ladder, _prog=lad.prog)


def _runtime(args):
    from fullscale import runtime
    from fullscale.presets import Performance

    return runtime.setup(Performance(device=args.device, threads=args.threads, bf16=False, compile=False), distributed=False)


def _baseline(args) -> int:
    from dmrules import results as R
    from fullscale import ladder

    if args.denoiser == "local" and args.patch is None:
        raise ValueError("--denoiser local needs --patch P")
    if args.denoiser != "local" and (args.patch is not None or args.equivariant):
        raise ValueError("--patch and --equivariant apply to --denoiser local only")
    if args.patch is not None and args.patch > 32:
        raise ValueError(f"--patch must be at most the image size 32, got {args.patch}")
    R.check_output(args.out, "dir")
    rt = _runtime(args)
    ladder.sample_baseline(args.task, args.n, args.denoiser, args.out, rt, patch=args.patch,
                           equivariant=args.equivariant, n=args.samples, seed=args.seed, sampler=args.sampler,
                           steps=args.steps, eta=args.eta, batch=args.batch, center=args.center,
                           data_seed=args.data_seed, train_dir=args.train, png=args.png)
    return 0


def _ladder(args) -> int:
    import time

    from dmrules import results as R
    from fullscale import ladder

    if args.theory:
        return _theory(args)
    if args.work is None:
        raise ValueError("--work DIR is needed (the rungs' samples are kept there), unless --theory")
    tasks = args.tasks
    if any(p > 32 for p in args.patch):
        raise ValueError(f"--patch values must be at most the image size 32, got {args.patch}")
    if not args.out.endswith(".parquet"):
        raise ValueError(f"--out must be a .parquet file, got {args.out}")
    R.check_output(args.out, "file")
    R.check_output(args.work, "dir", flag="--work")
    rungs = [("empirical", None)] + [("local", p) for p in args.patch] + [("gaussian", None)]
    rt = _runtime(args)
    t0 = time.perf_counter()
    df = ladder.run_ladder(tasks, args.n, args.work, rt, rungs=rungs, unet_root=args.unet, n_samples=args.samples,
                           seed=args.seed, sampler=args.sampler, steps=args.steps, eta=args.eta, batch=args.batch,
                           sample=not args.collect)
    config = {"tasks": tasks, "n": args.n, "patch": args.patch, "unet": args.unet, "samples": args.samples,
              "collect": args.collect, "sampling_s": float(df["wall_time_s"].fillna(0).sum()) if len(df) else 0.0,
              "seed": args.seed, "sampler": args.sampler, "steps": args.steps, "eta": args.eta}
    R.write_table(df, args.out, R.provenance(config=config, wall_time_s=time.perf_counter() - t0))
    print(f"[ladder] {len(df)} rows -> {args.out}")
    return 0


def _theory(args) -> int:
    import time

    from dmrules import results as R
    from sims.ladder import theory_rung

    if not args.out.endswith(".parquet"):
        raise ValueError(f"--out must be a .parquet file, got {args.out}")
    R.check_output(args.out, "file")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    df = theory_rung(n=2000, seeds=(args.seed, args.seed + 1, args.seed + 2))
    R.write_table(df, args.out, R.provenance(config={"theory": True, "n": 2000, "d": 8, "seed": args.seed},
                                             wall_time_s=time.perf_counter() - t0))
    print(f"[ladder] theory rung: {len(df)} rows -> {args.out}")
    return 0
