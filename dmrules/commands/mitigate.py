"""``dmrules classifier``, ``dmrules filter`` and ``dmrules mitigate``: the rules paper's mitigations.

Parsing and dispatch only; the work is in fullscale.classify, fullscale.guidance, fullscale.filtering.
Guided sampling itself is ``dmrules sample RUN --guide C --scale W --schedule S`` (commands/ddpm.py).
"""

from __future__ import annotations

import argparse
import json
import math
import time

from dmrules import UsageError
from dmrules.commands import (T_MAX, nonneg_int, number, paper_tasks, positive_float, positive_int, task_metavar, task_name,
                              task_names)
from fullscale import names  # standard library only (the lists' one owner)

ARCHS = names.CLASSIFIERS
PRESETS = names.PRESETS

TRAIN_EXAMPLE = """\
examples:
  dmrules classifier train --task A --arch unet --noisy --preset cpu --out runs/clf/A-noisy-unet    (for guidance)
  dmrules classifier train --task A --arch resnet8 --clean --preset cpu --out runs/clf/A-clean-resnet8  (filter)
  dmrules classifier train --task B --arch unet --noisy --nt-xent --preset paper --out runs/clf/B-ntx
Noisy archs: unet (ADM encoder U-Net), mlp (MLP + time embedding); clean archs: mlp (3072-512-128-3),
conv (small conv net), resnet8. Prints the held-out accuracy and saves it to C/metrics.json;
re-running the same command resumes (or reports the finished classifier)."""

SWEEP_EXAMPLE = """\
example:
  dmrules classifier sweep --tasks A,B,C,D --preset cpu --work runs/mitigate/cpu \\
      --out reports/results/mitigation_classifiers_cpu.parquet
Trains noisy unet, noisy mlp, clean mlp, clean conv and clean resnet8 per task (finished ones are
skipped) and writes one row per classifier x noise level, beside the paper's accuracies."""

FILTER_EXAMPLE = """\
example:
  dmrules filter --task A --classifier runs/clf/A-clean-resnet8 runs/A-cpu/samples --out runs/A-cpu/filtered
  dmrules evaluate --task A runs/A-cpu/filtered
Keeps the samples predicted rule-conforming (class 1; Task D also needs p > 0.7, as the authors)."""

MITIGATE_EXAMPLE = """\
examples:
  dmrules mitigate --tasks A --preset cpu --work runs/mitigate/cpu --out reports/results/mitigation_guidance_cpu.parquet
  dmrules mitigate --tasks A --preset paper --run runs/A-paper --work runs/mitigate/paper --out F.parquet
  dmrules mitigate --tasks A,B,C,D --preset paper --run 'runs/{task}-paper' --work runs/mitigate/paper --out F.parquet
Trains what is missing (the DDPM run, a noisy U-Net guide, a clean filter), samples unguided and
guided with the same seeds, filters every sample set, and evaluates all of them (one row per arm)."""


def _device_arg(p) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default auto)")


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available")
    try:
        return str(torch.device(name))
    except RuntimeError:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None


_tasks = task_names  # comma-separated registered tasks (fullscale/tasks/registry.py)


def register(sub) -> None:
    c = sub.add_parser("classifier", help="train noisy / clean rule classifiers on contrastive data",
                       description="Rule classifiers on the contrastive ternary data (class 1 = conforming).")
    c.set_defaults(func=None, _parser=c)
    csub = c.add_subparsers(dest="classifier_command", metavar="ACTION")

    t = csub.add_parser("train", help="train one classifier and report its held-out accuracy",
                        description="Train a rule classifier (CE, optional + 0.5 NT-Xent).\n\n" + TRAIN_EXAMPLE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--task", required=True, type=task_name, metavar=task_metavar(), help="which task's contrastive data")
    t.add_argument("--arch", default=None, choices=ARCHS,
                   help="network (default: unet when --noisy, resnet8 when --clean)")
    kind = t.add_mutually_exclusive_group()
    kind.add_argument("--noisy", dest="noisy", action="store_true", default=True,
                      help="time-conditioned, trained on x_t at all DDPM noise levels (for guidance; default)")
    kind.add_argument("--clean", dest="noisy", action="store_false",
                      help="trained on clean images (for filtering samples)")
    t.add_argument("--nt-xent", action="store_true", help="add 0.5 x NT-Xent (temperature 0.5) to cross-entropy")
    t.add_argument("--preset", default="cpu", choices=PRESETS, help="paper (GPU), cpu (minutes) or smoke (seconds); "
                   "default cpu")
    t.add_argument("--out", required=True, metavar="C", help="classifier directory (created; re-running resumes)")
    g = t.add_argument_group("overrides of the preset")
    g.add_argument("--size", type=positive_int, help="image size in pixels (default 32)")
    g.add_argument("--steps", type=positive_int, help="optimiser steps")
    g.add_argument("--batch", type=positive_int, help="batch size")
    g.add_argument("--lr", type=positive_float, help="learning rate (> 0)")
    g.add_argument("--n-train", type=positive_int, help="contrastive training images (a third per class)")
    g.add_argument("--n-test", type=positive_int, help="held-out contrastive images")
    g.add_argument("--width", type=positive_int, help="network width (default: the preset's)")
    g.add_argument("--seed", type=nonneg_int, help="training seed: initialisation, data order, noise (default 0)")
    g.add_argument("--data-seed", type=nonneg_int, help="seed of the rendered contrastive sets (default 0)")
    _device_arg(t)
    t.set_defaults(func=_train, _prog=t.prog)

    s = csub.add_parser("sweep", help="train every classifier of a preset and tabulate held-out accuracy",
                        description="Classifier accuracy per task x arch (noisy and clean).\n\n" + SWEEP_EXAMPLE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--tasks", type=_tasks, default=list(paper_tasks()), help="comma-separated tasks (default A,B,C,D)")
    s.add_argument("--preset", default="cpu", choices=PRESETS, help="classifier preset (default cpu)")
    s.add_argument("--nt-xent", action="store_true", help="also train every classifier with + 0.5 NT-Xent")
    s.add_argument("--work", metavar="DIR", help="where the classifiers live (default: OUT without .parquet + .work)")
    s.add_argument("--out", required=True, metavar="F.parquet", help="the accuracy table (tidy, with provenance)")
    _device_arg(s)
    s.set_defaults(func=_sweep, _prog=s.prog)

    f = sub.add_parser("filter", help="keep generated samples a classifier calls rule-conforming",
                       description="Pixel-space filtering with a rule classifier.\n\n" + FILTER_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("samples", metavar="SAMPLES", help="a sample folder (images.npy or png/), an .npy file or PNGs")
    f.add_argument("--task", required=True, type=task_name, metavar=task_metavar(), help="the samples' task")
    f.add_argument("--classifier", required=True, metavar="C", help="a classifier directory (`dmrules classifier "
                   "train --clean`)")
    f.add_argument("--min-prob", type=number(float, lo=0, hi=1, hi_open=True), default=None,
                   help="also require p(y = 1) > P, P in [0, 1) (default: 0.7 for Task D, as the authors; else 0)")
    f.add_argument("--png", action="store_true", help="also write the kept samples as PNGs")
    f.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: images.npy, predictions.parquet, meta.json")
    _device_arg(f)
    f.set_defaults(func=_filter, _prog=f.prog)

    m = sub.add_parser("mitigate", help="guided vs unguided vs filtered samples, per task (a table)",
                       description="Guidance and filtering against the unguided DDPM.\n\n" + MITIGATE_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--tasks", type=_tasks, default=["A"], help="comma-separated tasks (default A)")
    m.add_argument("--preset", default="cpu", choices=PRESETS, help="preset of the DDPM, classifiers and sampling")
    m.add_argument("--run", metavar="RUN", help="an existing DDPM run; with several tasks a pattern such as "
                   "'runs/{task}-paper' (default: WORK/<task>-ddpm, trained with the preset if missing)")
    m.add_argument("--work", metavar="DIR", help="classifiers and sample sets (default: OUT without .parquet + .work)")
    m.add_argument("--n", type=positive_int, help="samples per arm (preset: paper 1000, cpu 256, smoke 4)")
    m.add_argument("--sampler", choices=("ddpm", "ddim"), help=f"ddpm (ancestral, {T_MAX} steps; preset paper) or ddim (preset cpu: 100 steps)")
    m.add_argument("--steps", type=number(int, lo=1, hi=T_MAX), help=f"DDIM steps (1-{T_MAX})")
    m.add_argument("--arms", help="guided arms as SCHEDULE:SCALE,... (default constant:1,constant:7,piecewise:1e6)")
    m.add_argument("--guide-arch", choices=names.NOISY_CLASSIFIERS, help="noisy guide (preset: paper unet, cpu mlp)")
    m.add_argument("--filter-arch", choices=names.CLEAN_CLASSIFIERS, help="clean filter (default resnet8)")
    m.add_argument("--out", required=True, metavar="F.parquet", help="the comparison table (tidy, with provenance)")
    _device_arg(m)
    m.set_defaults(func=_mitigate, _prog=m.prog)


def _train(args) -> int:
    from fullscale import classify

    arch = args.arch or ("unet" if args.noisy else "resnet8")
    cfg = classify.make_config(args.task, arch, args.noisy, args.preset, nt_xent=args.nt_xent, image_size=args.size,
                               steps=args.steps, batch=args.batch, lr=args.lr, n_train=args.n_train,
                               n_test=args.n_test, width=args.width, seed=args.seed, data_seed=args.data_seed)
    device = _device(args.device)
    metrics = classify.train_classifier(cfg, args.out, device=device, log=_log)
    if "acc" in metrics:
        extra = f"  (clean images {metrics['acc_clean']:.4f})" if metrics.get("acc_clean") is not None else ""
        print(f"held-out accuracy: {metrics['acc']:.4f}{extra}")
    return 0


def _default_work(out: str) -> str:
    return (out[: -len(".parquet")] if out.endswith(".parquet") else out) + ".work"


def _check_out(out: str) -> None:
    if not out.endswith(".parquet"):
        raise UsageError(f"--out must be a .parquet file, got {out!r}")


def _sweep(args) -> int:
    from dmrules import results as R
    from fullscale.classify import experiment

    _check_out(args.out)
    t0 = time.perf_counter()
    df = experiment.sweep(args.tasks, args.preset, args.work or _default_work(args.out), nt_xent=args.nt_xent,
                          device=_device(args.device), log=_log)
    R.write_table(df, args.out, R.provenance(config={"tasks": args.tasks, "preset": args.preset,
                                                     "nt_xent": args.nt_xent}, wall_time_s=time.perf_counter() - t0))
    main = df[df.noise_t.isin(["0"]) | df.noise_t.str.startswith("clean")]
    print(main[["task", "kind", "arch", "nt_xent", "noise_t", "acc", "paper_acc"]].to_string(index=False))
    print(f"wrote {args.out}")
    return 0


def _filter(args) -> int:
    from fullscale import filtering

    summary = filtering.filter_samples(args.task, args.classifier, args.samples, args.out, min_prob=args.min_prob,
                                       device=_device(args.device), png=args.png, log=_log)
    print(json.dumps({k: summary[k] for k in ("n", "kept", "kept_frac", "mean_p1", "predicted")}))
    return 0


def _arms(text: str) -> tuple:
    from fullscale.guidance import SCHEDULES

    arms = []
    for part in text.split(","):
        sched, _, scale = part.strip().partition(":")
        if sched not in SCHEDULES:
            raise UsageError(f"unknown guidance schedule {sched!r} in --arms; choose from {', '.join(SCHEDULES)}")
        try:
            value = float(scale or 1.0)
        except ValueError:
            raise UsageError(f"bad scale {scale!r} in --arms (expected SCHEDULE:SCALE)") from None
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(f"the scale in --arms must be a finite number >= 0, got {scale!r}")
        arms.append((sched, value))
    return tuple(arms)


def _mitigate(args) -> int:
    import dataclasses

    from dmrules import results as R
    from fullscale import runtime
    from fullscale.classify import experiment
    from fullscale.presets import Performance

    _check_out(args.out)
    cc = experiment.COMPARE_PRESETS[args.preset]
    changes = {k: v for k, v in dict(n=args.n, sampler=args.sampler, steps=args.steps,
                                     guide_arch=args.guide_arch, filter_arch=args.filter_arch).items()
               if v is not None}
    if args.sampler == "ddpm":
        changes["steps"] = T_MAX
    elif args.sampler == "ddim" and args.steps is None and cc.sampler == "ddpm":
        changes["steps"] = 100
    if args.arms:
        changes["arms"] = _arms(args.arms)
    cc = dataclasses.replace(cc, **changes)
    if args.run and len(args.tasks) > 1 and "{task}" not in args.run:
        raise UsageError("--run names one task's DDPM run; with several tasks give a pattern like 'runs/{task}-paper'")
    if args.run:  # an input: it must exist (issue 12: --run /nonexistent trained a run at the file system root)
        from pathlib import Path

        for task in args.tasks:
            run = Path(args.run.replace("{task}", task))
            if not (run / "config.json").is_file():
                raise UsageError(f"--run {run} is not a DDPM run (no config.json); train it first with `dmrules "
                                 f"train` or leave --run out to train one under --work")
    import pandas as pd

    rt = runtime.setup(Performance(device=args.device), distributed=False)
    t0 = time.perf_counter()
    work = args.work or _default_work(args.out)
    runs = {t: args.run.replace("{task}", t) if args.run else None for t in args.tasks}
    df = pd.concat([experiment.compare(task, args.preset, work, rt, run=runs[task], cc=cc, log=_log)
                    for task in args.tasks], ignore_index=True)
    R.write_table(df, args.out, R.provenance(config={"tasks": args.tasks, "preset": args.preset,
                                                     **dataclasses.asdict(cc)}, wall_time_s=time.perf_counter() - t0))
    print(f"wrote {args.out}")
    return 0


def _log(msg: str) -> None:
    print(msg, flush=True)
