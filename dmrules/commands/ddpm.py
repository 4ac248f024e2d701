"""``dmrules train``, ``dmrules sample`` and ``dmrules run``: the rules paper's DDPMs on Tasks A-D.

Parsing and dispatch only; the work is in fullscale.train / fullscale.generate / fullscale.pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys

from dmrules.commands import (nonneg_float, nonneg_int, number, positive_float, positive_int, task_metavar, task_name,
                              unit_float)
from fullscale import names  # standard library only: the lists' one owner (their registries use it too)

MODELS, PRESETS, OBJECTIVES, SAMPLERS = names.MODELS, names.PRESETS, names.OBJECTIVES, names.SAMPLERS
SPACINGS = names.SPACINGS  # theory.schedules.VPProcess.grid's spacings
# sampler steps; the noise process checks its own limit (T - 1 for the DDPM schedule) before sampling
STEPS = number(int, lo=1, hi=100_000)

TRAIN_EXAMPLE = """\
examples:
  dmrules train --task A --model unet --preset cpu --out runs/A-cpu          (unet -> unet-small-p2 on CPU)
  torchrun --nproc_per_node=8 -m dmrules train --task C --model unet --preset paper --out runs/C
  dmrules train --task A --model dit-s2 --preset paper --dry-run             (print config, parameters)
Re-running the same command resumes from RUN/checkpoint.pt."""

SAMPLE_EXAMPLE = """\
examples:
  dmrules sample runs/A-cpu --n 3000 --sampler ddpm --seed 0 --out runs/A-cpu/samples-3000
  dmrules sample runs/A-cpu --guide runs/clf/A-noisy-unet --scale 7 --schedule piecewise --out runs/A-cpu/guided
Sample k uses seed S+k: the same image whatever --batch, and a killed call resumes."""

RUN_EXAMPLE = """\
examples:
  dmrules run --task A --model unet --preset cpu --out runs/A-cpu            (minutes on 2 CPU cores)
  dmrules run --task A --model unet --preset paper --out runs/A-paper        (GPU: the paper protocol)
Writes RUN/samples/images.npy, RUN/eval.json, RUN/grid.png, RUN/stats.jsonl, RUN/config.json,
RUN/summary.parquet; a re-run skips finished phases and says so."""


SAMPLER_TABLE_EXAMPLE = """\
example:
  dmrules sampler-table runs/cpu1_A runs/samplers/flow_A_s0 --threads 1 --work runs/samplers/work \\
      --out reports/results/sampler_table_cpu.parquet
A killed call resumes (finished sample sets are skipped); the table is rewritten after every row."""
DEFAULT_ROWS = ("ddpm", "ddim:50:0", "ddim:50:1", "ddim:100:0", "ddim:100:1", "dpm++2m:20", "dpm++2m:50",
                "euler:50", "heun:25")  # = fullscale.experiments.sampler_table.DEFAULT_ROWS


def _perf_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("performance (not part of the run's identity)")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default auto)")
    for flag, what, default in (("bf16", "bf16 autocast (oneDNN on CPU: changes the numerics)", "on for CUDA, off for CPU"),
                                ("compile", "torch.compile", "on for CUDA, off for CPU (a minute or more of compiling there)"),
                                ("channels-last", "channels-last memory format", "on"),
                                ("tf32", "TF32 matmuls/convolutions", "on for CUDA; no meaning on CPU")):
        g.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"{what} (default: {default})")
    g.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: the cores not busy, by load average)")


def _run_args(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--task", required=True, type=task_name, metavar=task_metavar(),
                   help="which task (A sun/pole/shadow, B perspective, C tangent circles, D squares; any task "
                   "in the registry, fullscale/tasks/registry.py)")
    p.add_argument("--model", default="unet", choices=MODELS,
                   help="denoiser (default unet: the paper's U-Net; the cpu preset makes it unet-small-p2, "
                   "smoke unet-small)")
    p.add_argument("--preset", default="paper", choices=PRESETS, help="paper (GPU), cpu (minutes) or smoke "
                   "(seconds); default paper")
    p.add_argument("--out", required=True, metavar="RUN", help=out_help)
    g = p.add_argument_group("overrides of the preset (part of the run's identity)")
    g.add_argument("--batch", type=positive_int, help="global batch size (paper preset: 256; the paper used 16)")
    g.add_argument("--lr", type=positive_float, help="Adam learning rate (paper preset: 1.2e-3 = 3e-4 * sqrt(256/16))")
    g.add_argument("--epochs", type=positive_float, help="passes over the training set (paper: A 400, B 800, C 1600, D 1000)")
    g.add_argument("--n-train", type=positive_int, help="training set size (paper: A 4000, B-D 2000)")
    g.add_argument("--seed", type=nonneg_int, help="training seed: initialisation, data order, noise (default 0)")
    g.add_argument("--ema-halflife-kimg", type=positive_float, help="EMA half-life in thousands of images (> 0)")
    g.add_argument("--warmup-kimg", type=nonneg_float, help="learning-rate warm-up in thousands of images (>= 0)")
    g.add_argument("--ckpt-every-kimg", type=positive_float, help="checkpoint interval in thousands of images (> 0)")
    g.add_argument("--n-samples", type=positive_int, help="samples drawn by `run` (paper: 3000)")
    g.add_argument("--objective", choices=OBJECTIVES, help="training objective: eps (default; DSM, the paper), x0, "
                   "v, or flow (rectified flow; sampled with euler or heun)")
    g.add_argument("--sampler", choices=SAMPLERS, help="sampler used by `run`: ddpm (ancestral, T-1 steps; paper), "
                   "ddim, dpm++2m (eps/x0/v models), euler or heun (flow models)")
    g.add_argument("--sample-steps", type=STEPS, help="steps of a few-step sampler used by `run` (1..T-1 for vp)")
    g.add_argument("--sample-eta", type=unit_float, help="DDIM eta used by `run`, in [0, 1] (0 deterministic, 1 stochastic)")
    g.add_argument("--sample-batch", type=positive_int, help="sampling batch size")
    g.add_argument("--center", action=argparse.BooleanOptionalAction, default=None,
                   help="train on x0 minus the training-set mean image (cpu preset: on; paper: off)")
    g.add_argument("--weights", choices=names.WEIGHTS, help="sample from the EMA (default) or the raw weights")
    _perf_args(p)


def register(sub) -> None:
    t = sub.add_parser("train", help="train a DDPM denoiser on a task (auto-resumes)",
                       description="Train a DDPM (--objective eps: DSM, t ~ U{1..T-1}; or x0, v, flow), Adam, EMA, on Task A-D.\n\n"
                       + TRAIN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_args(t, "run directory (created; re-running resumes)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and parameter count, then exit")
    t.set_defaults(func=_train, _prog=t.prog)

    s = sub.add_parser("sample", help="sample from a trained run (per-sample seeds)",
                       description="Sample images from RUN's checkpoint with per-sample seeds.\n\n" + SAMPLE_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("run", metavar="RUN", help="a run directory made by `dmrules train` or `dmrules run`")
    s.add_argument("--n", type=positive_int, help="number of samples (default: the run's n_samples)")
    s.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="ddpm: ancestral, T-1 -> 1 (paper); ddim (--eta); dpm++2m (DPM-Solver++ 2M) for eps/x0/v "
                   "models; euler or heun for flow models (default: ddpm, or euler for a flow run)")
    s.add_argument("--steps", type=STEPS, default=None, help="steps of ddim/dpm++2m/euler/heun (default: ddim 50, "
                   "dpm++2m 20, euler 50, heun 25; heun calls the network twice per step)")
    s.add_argument("--spacing", choices=SPACINGS, default="even", help="ddim/dpm++2m grid: even (ours, T-1 -> 1; "
                   "default) or diffusers' timestep_spacing linspace, leading, trailing")
    s.add_argument("--eta", type=unit_float, default=0.0, help="DDIM eta in [0, 1]: 0 deterministic (default), 1 stochastic")
    s.add_argument("--seed", type=nonneg_int, default=0, help="sample k uses seed SEED+k (default 0)")
    s.add_argument("--batch", type=positive_int, default=None, help="batch size (default: the run's sample_batch)")
    s.add_argument("--weights", choices=names.WEIGHTS, default="ema", help="EMA (default) or raw weights")
    s.add_argument("--variance", choices=names.VARIANCES, default="beta",
                   help="ancestral noise variance: beta_t (IDDM, default) or the posterior variance")
    s.add_argument("--no-png", action="store_true", help="write only images.npy, no PNG files")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder: images.npy, png/, meta.json")
    # -- classifier guidance (issue 7; fullscale/guidance.py) --
    g = s.add_argument_group("classifier guidance: mu <- mu + w_t sigma_t^2 grad log p(y = 1 | x_t, t)")
    g.add_argument("--guide", metavar="C", help="a noisy classifier (`dmrules classifier train --noisy`) of the run's task")
    g.add_argument("--scale", type=nonneg_float, default=None, help="guidance scale s >= 0 (default 1; needs --guide)")
    g.add_argument("--schedule", default=None, metavar="S", help="weight schedule w_t: constant (default), linear, "
                   "quadratic, exponential or piecewise (last 20 steps); see docs/mitigation.md")
    # -- end classifier guidance --
    _perf_args(s)
    s.set_defaults(func=_sample, _prog=s.prog)

    r = sub.add_parser("run", help="data -> train -> sample -> evaluate in one go (skips what is done)",
                       description="data -> train -> sample -> evaluate for one task and model.\n\n" + RUN_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_args(r, "run directory (created; re-running skips finished phases)")
    seeds = r.add_argument_group("seeds of `run` (part of the run's identity; --seed is the training seed)")
    seeds.add_argument("--data-seed", type=nonneg_int, default=None,
                       help="seed of the rendered training set (default 0: the data every run so far used)")
    seeds.add_argument("--sample-seed", type=nonneg_int, default=None,
                       help="sample k uses seed SAMPLE_SEED+k (default 0)")
    r.add_argument("--export", metavar="DIR", help="also copy the small result files (eval, points, summary, "
                   "grid, stats, config) to DIR, e.g. reports/results/ddpm_paper/A_unet")
    r.set_defaults(func=_run, _prog=r.prog)

    st = sub.add_parser("sampler-table", help="rule metrics of trained runs under several samplers x steps",
                        description="Sample each RUN with each sampler row and evaluate the rules (issue 13).\n\n"
                        + SAMPLER_TABLE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("runs", nargs="+", metavar="RUN", help="training runs (only read); a row is sampled for a run "
                    "when its sampler fits the run's objective")
    st.add_argument("--rows", default=",".join(DEFAULT_ROWS), help="comma list of NAME[:STEPS[:ETA]][@N] "
                    f"(default {','.join(DEFAULT_ROWS)})")
    st.add_argument("--n", type=positive_int, default=256, help="samples per row unless the row says @N (default 256)")
    st.add_argument("--seed", type=nonneg_int, default=0, help="sample k uses seed SEED+k (default 0)")
    st.add_argument("--batch", type=positive_int, default=128, help="sampling batch size (default 128)")
    st.add_argument("--work", required=True, metavar="DIR", help="folder for the sample sets (resumable)")
    st.add_argument("--out", required=True, metavar="TABLE.parquet", help="the table (rewritten after every row)")
    _perf_args(st)
    st.set_defaults(func=_sampler_table, _prog=st.prog)


def _perf(args):
    from fullscale.presets import Performance

    return Performance(device=args.device, bf16=args.bf16, compile=args.compile,
                       channels_last=args.channels_last, tf32=args.tf32, threads=args.threads)


def _config(args):
    from fullscale.presets import ANCESTRAL_STEPS, PRESETS as TABLE, make_config, resolve_model
    from fullscale.samplers import DEFAULT_STEPS

    steps = args.sample_steps
    if args.sampler == "ddpm":
        if steps not in (None, ANCESTRAL_STEPS):
            raise ValueError(f"the ancestral ddpm sampler always takes {ANCESTRAL_STEPS} steps; use --sampler ddim "
                             "for fewer")
        steps = ANCESTRAL_STEPS
    elif args.sampler is not None and steps is None and TABLE[args.preset](args.task, args.model)["sampler"] != args.sampler:
        steps = DEFAULT_STEPS[args.sampler]
    cfg = make_config(args.task, args.model, args.preset, perf=_perf(args), batch=args.batch, lr=args.lr,
                      epochs=args.epochs, n_train=args.n_train, seed=args.seed,
                      data_seed=getattr(args, "data_seed", None), sample_seed=getattr(args, "sample_seed", None),
                      ema_halflife_kimg=args.ema_halflife_kimg, warmup_kimg=args.warmup_kimg,
                      ckpt_every_kimg=args.ckpt_every_kimg, n_samples=args.n_samples, sampler=args.sampler,
                      sample_steps=steps,
                      sample_batch=args.sample_batch, sample_weights=args.weights, sample_eta=args.sample_eta,
                      center=args.center, objective=args.objective)
    if resolve_model(args.preset, args.model) != args.model:
        print(f"[config] preset {args.preset}: --model {args.model} resolves to {cfg.model} (CPU-sized)")
    return cfg


def _log(msg: str) -> None:
    print(msg, flush=True)


def _diverged(args, exc) -> int:
    sys.stderr.write(f"{args._prog}: error: {' '.join(str(exc).split())}\n")
    return 1


def _train(args) -> int:
    from fullscale import pipeline, runtime
    from fullscale.models import build, param_count
    from fullscale.train import TrainingDiverged, train

    cfg = _config(args)
    if args.dry_run:
        n = param_count(build(cfg.model, cfg.image_size))
        print(json.dumps(cfg.to_json(), indent=2))
        print(f"[config] {cfg.model}: {n:,} parameters; {cfg.total_images:,} images = {cfg.total_steps:,} steps "
              f"of {cfg.batch}")
        return 0
    rt = runtime.setup(cfg.perf)
    try:
        pipeline.check_config(cfg, args.out, write=rt.is_main)
        if rt.is_main:
            _log(f"[train] Task {cfg.task}, {cfg.model}, preset {cfg.preset} -> {args.out} on {rt.describe()}")
        images = pipeline.ensure_data(cfg, args.out, rt, _log)
        info = train(cfg, args.out, images, rt, log=_log)
        if info["done_already"] and rt.is_main:
            _log(f"[train] {args.out}/checkpoint.pt has seen all {cfg.total_images:,} images: nothing to do")
        elif rt.is_main:
            _log(f"[train] done: {info['images']:,} images in {info['train_s']:.1f} s")
    except TrainingDiverged as exc:
        return _diverged(args, exc)
    finally:
        runtime.shutdown(rt)
    return 0


def _sample(args) -> int:
    from fullscale import generate, runtime

    rt = runtime.setup(_perf(args), distributed=False)
    cfg = generate.load_run(args.run)
    guide, weight, extra = None, 1.0, None
    if args.guide:  # classifier guidance (issue 7)
        from fullscale import guidance

        from fullscale.objectives import get as objective

        guide, weight, extra = guidance.from_cli(args.guide, args.scale, args.schedule, cfg.task, cfg.image_size,
                                                 rt.device, log=_log, run=args.run,
                                                 process=objective(cfg.objective).process)
    elif args.scale is not None or args.schedule is not None:
        raise ValueError("--scale and --schedule need --guide C (a noisy classifier)")
    from fullscale.samplers import DEFAULT_STEPS

    sampler = args.sampler or ("euler" if cfg.objective == "flow" else "ddpm")
    if args.eta and sampler != "ddim":
        raise ValueError(f"--eta is DDIM's; the {sampler} sampler does not take it")
    if args.variance != "beta" and sampler != "ddpm":
        raise ValueError(f"--variance is the ancestral ddpm sampler's; the {sampler} sampler does not take it")
    steps = args.steps or DEFAULT_STEPS.get(sampler, 0)
    generate.sample_run(args.run, args.out, rt, n=args.n or cfg.n_samples, seed=args.seed, sampler=sampler,
                        steps=steps, eta=args.eta, spacing=args.spacing, batch=args.batch or cfg.sample_batch, weights=args.weights,
                        png=not args.no_png, variance=args.variance, guide=guide, weight=weight,
                        extra_meta=extra, log=_log)
    return 0


def _run(args) -> int:
    from fullscale import pipeline, runtime
    from fullscale.train import TrainingDiverged

    cfg = _config(args)
    rt = runtime.setup(cfg.perf)
    try:
        pipeline.run(cfg, args.out, rt, log=_log)
        if args.export and rt.is_main:
            pipeline.export(args.out, args.export, log=_log)
    except TrainingDiverged as exc:
        return _diverged(args, exc)
    finally:
        runtime.shutdown(rt)
    return 0


def _sampler_table(args) -> int:
    from pathlib import Path

    from fullscale import runtime
    from fullscale.experiments import sampler_table

    rows = [sampler_table.parse_row(r.strip()) for r in args.rows.split(",") if r.strip()]
    if not rows:
        raise ValueError("--rows is empty; give at least one sampler row")
    for run in args.runs:
        if not (Path(run) / "config.json").exists():
            raise ValueError(f"{run} is not a training run (no config.json)")
    if not args.out.endswith(".parquet"):
        raise ValueError(f"--out {args.out} must be a .parquet file")
    rt = runtime.setup(_perf(args), distributed=False)
    sampler_table.run_table(args.runs, rows, args.work, args.out, rt, n=args.n, sample_seed=args.seed,
                            batch=args.batch, log=_log)
    return 0
