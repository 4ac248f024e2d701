"""``dmrules sims fl | rules | digits``: the two-layer network simulations (package ``sims``).

Parsing and dispatch only; the work is in :mod:`sims.experiments` and the modules it calls.
"""

from __future__ import annotations

import argparse

from dmrules.commands import SIMS_PRESETS, T_MAX, nonneg_ints, number, numbers, parse_names, positive_int, positive_ints

SNRS = numbers(float, lo=0, lo_open=True, what="SNR values")
OU_TIMES = numbers(float, lo=0, lo_open=True, what="OU times t")
LR = number(float, lo=0, lo_open=True, what="a learning rate")

FL_EXAMPLE = """\
examples:
  dmrules sims fl --preset quick --out fl.parquet                  # both objectives, n x SNR grid (~1-2 min CPU)
  dmrules sims fl --preset quick --objectives diffusion --seeds 0 --out d.parquet
  dmrules sims fl --preset quick --expectation sampled --draws 20 --d 200 --out s.parquet
"""
RULES_EXAMPLE = """\
examples:
  dmrules sims rules --preset quick --out rules.parquet           # E_t vs width, steps, n; joint control
  dmrules sims rules --preset quick --widths 5,20,80 --activations relu --out r.parquet
"""
DIGITS_EXAMPLE = """\
examples:
  dmrules sims digits --preset quick --out digits.parquet         # sklearn 8x8 digits 0 vs 1 + Gaussian patch
  dmrules sims digits --classes 3,8 --snrs 0.1,0.3,1 --out d38.parquet
"""


def _common(p: argparse.ArgumentParser, presets: str) -> None:
    p.add_argument("--preset", default="quick", choices=SIMS_PRESETS,
                   help=f"configuration table ({presets}); the flags below override it")
    p.add_argument("--out", required=True, metavar="F.parquet", help="output table (tidy parquet with provenance)")
    p.add_argument("--seeds", type=nonneg_ints, metavar="S,...", help="seeds (each one a model per configuration)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to train (auto: CUDA when available)")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="floating point type (default float32: the quick FL summary agrees with float64 to "
                        "3 digits at 1.5x the speed; the tests check stacking in float64)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="CPU threads for torch (default 1: these are many small batched matmuls, and one "
                        "thread was 3x faster than two on a shared 2-core machine)")
    p.add_argument("--force", action="store_true", help="recompute even when --out is up to date")


def register(subparsers) -> None:
    sims = subparsers.add_parser("sims", help="two-layer networks trained by DSM and by classification",
                                 description="Two-layer network simulations: feature learning (arXiv 2412.01021) "
                                             "and rule conformity (arXiv 2502.04725, Section 4).")
    sims.set_defaults(func=None, _parser=sims)
    sub = sims.add_subparsers(dest="sims_command", metavar="ACTION")

    fl = sub.add_parser("fl", help="signal vs noise learning against n·SNR², diffusion and classification",
                        description="Train the tied two-layer diffusion network (DSM) and the two-layer "
                                    "classifier (logistic) on the two-patch signal/noise law over a grid of "
                                    "n x SNR, plus the Figure 2 pair n·SNR² = 0.75, 6.75; record signal "
                                    "and noise alignments over training.",
                        epilog=FL_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(fl, "quick: 4 n x 8 SNR, 3 seeds, under 2 minutes on 2 cores; paper: 7 x 12, 5 seeds")
    fl.add_argument("--objectives", type=parse_names, metavar="O,...",
                    help="diffusion,classification (default both)")
    fl.add_argument("--ns", type=positive_ints, metavar="N,...", help="training set sizes of the grid")
    fl.add_argument("--snrs", type=SNRS, metavar="SNR,...", help="SNR values ||mu||/(sigma_xi sqrt d) of the grid")
    fl.add_argument("--d", type=positive_int, help="patch dimension")
    fl.add_argument("--m", type=positive_int, help="filters (per class for the classifier)")
    fl.add_argument("--t", type=OU_TIMES, metavar="T,...",
                    help="OU time(s) of the diffusion loss (several: averaged; default 0.223, alpha=0.8)")
    fl.add_argument("--t-range", type=OU_TIMES, metavar="LO,HI",
                    help="diffusion: t ~ U(LO, HI) instead of --t (closed form: 8-point midpoint rule)")
    fl.add_argument("--expectation", choices=["closed", "sampled"],
                    help="diffusion noise: exact expectation (quadratic only) or K sampled draws per step")
    fl.add_argument("--draws", type=positive_int, help="K noise draws per example per step (--expectation sampled)")
    fl.add_argument("--activation", metavar="ACT", help="quadratic (default) or reluQ, e.g. relu2, for both networks")
    fl.add_argument("--diffusion-steps", type=positive_int, help="GD steps of the diffusion model")
    fl.add_argument("--classification-steps", type=positive_int, help="GD steps of the classifier")
    fl.add_argument("--diffusion-lr", type=LR, help="GD learning rate of the diffusion model")
    fl.add_argument("--classification-lr", type=LR, help="GD learning rate of the classifier")
    fl.set_defaults(func=_run_fl, _prog=fl.prog)

    rules = sub.add_parser("rules", help="rule-conforming error E_t of patch-wise vs joint score networks",
                           description="Train patch-wise (separable) and joint two-layer score networks by DSM "
                                       "on the rules law (theory.RulePatches) with t sampled over the DDPM "
                                       "schedule; record psi_t, the rule error E_t and the bound L_t.",
                           epilog=RULES_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(rules, "quick: widths 5-320, two n, under 2 minutes on 2 cores; paper: more widths, n, steps")
    rules.add_argument("--widths", type=positive_ints, metavar="M,...", help="hidden widths m")
    rules.add_argument("--ns", type=positive_ints, metavar="N,...", help="training set sizes")
    rules.add_argument("--networks", type=parse_names, metavar="NET,...",
                       help="patchwise,joint (default both)")
    rules.add_argument("--activations", type=parse_names, metavar="ACT,...",
                       help="quadratic,relu (default both)")
    rules.add_argument("--steps", type=positive_int, help="Adam steps")
    rules.add_argument("--d", type=positive_int, help="patch dimension (default 100)")
    rules.add_argument("--batch", type=positive_int, help="minibatch size per model and step")
    rules.add_argument("--lr", type=LR, help="Adam learning rate (cosine decay to 0)")
    rules.add_argument("--eval-steps", type=numbers(int, lo=0, hi=T_MAX, what=f"DDPM step indices 0-{T_MAX}"),
                       metavar="I,...", help=f"DDPM step indices (0-{T_MAX}) where psi_t and E_t are measured")
    rules.add_argument("--n-eval", type=positive_int, help="fresh samples per model and evaluation time")
    rules.set_defaults(func=_run_rules, _prog=rules.prog)

    digits = sub.add_parser("digits", help="Noisy-Digits: the real-data analogue of Noisy-MNIST",
                            description="scikit-learn's bundled 8x8 digits (no download), two classes: the signal "
                                        "patch is the digit scaled to norm ||mu||, the noise patch is Gaussian. "
                                        "Trains both objectives over SNR and records alignments with the class "
                                        "mean digits vs the noise patches.",
                            epilog=DIGITS_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(digits, "quick: n = 40, 6 SNR values, 3 seeds; paper: more n and seeds")
    digits.add_argument("--classes", type=numbers(int, lo=0, hi=9), metavar="A,B", help="the two digit classes (default 0,1)")
    digits.add_argument("--ns", type=positive_ints, metavar="N,...", help="training set sizes")
    digits.add_argument("--snrs", type=SNRS, metavar="SNR,...", help="SNR values ||mu||/(sigma sqrt 64)")
    digits.add_argument("--diffusion-steps", type=positive_int, help="GD steps of the diffusion model")
    digits.add_argument("--classification-steps", type=positive_int, help="GD steps of the classifier")
    digits.set_defaults(func=_run_digits, _prog=digits.prog)


# ---- shared helpers -----------------------------------------------------------------------------
def _device_dtype(args):
    import torch

    from dmrules import UsageError

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    dtype = args.dtype or "float32"
    return torch.device(device), getattr(torch, dtype)


def _out(args):
    from pathlib import Path

    from dmrules import UsageError

    out = Path(args.out)
    if out.suffix != ".parquet":
        raise UsageError(f"--out must name a .parquet file, got {args.out!r}")
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {args.out!r} is a directory")
    return out


def _finish(args, kind, build):
    """Shared tail: validate, skip when up to date, run, print a summary."""
    from sims import experiments as E

    out = _out(args)
    device, dtype = _device_dtype(args)
    groups, config, summary = build(device, dtype)
    config = dict(config, device=str(device), dtype=str(dtype).replace("torch.", ""))
    if not args.force and E.up_to_date(out, config):
        print(f"[skip] {out} is up to date (same configuration); use --force to recompute")
        return 0
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        table = E.run_sweep(groups, out, config, desc=f"sims {kind}")
    finally:
        torch.set_num_threads(threads)  # the report pipeline runs commands in-process
    print(f"[sims {kind}] {len(table)} rows -> {out}")
    for line in summary(table):
        print(line)
    return 0


def _run_fl(args) -> int:
    from sims import analysis, experiments as E

    sweep = E.build_fl_sweep(
        E.FL_PRESETS[args.preset], objectives=args.objectives, ns=args.ns, snrs=args.snrs, seeds=args.seeds,
        d=args.d, m=args.m, t=args.t, t_range=args.t_range, expectation=args.expectation, draws=args.draws,
        activation=args.activation, diffusion_steps=args.diffusion_steps,
        classification_steps=args.classification_steps, diffusion_lr=args.diffusion_lr,
        classification_lr=args.classification_lr)
    return _finish(args, "fl", lambda dev, dt: (E.fl_groups(sweep, dev, dt), E.config_dict(sweep),
                                                analysis.fl_summary_lines))


def _run_rules(args) -> int:
    from sims import experiments as E, rules as Rl

    sweep = E.build_rules_sweep(E.RULES_PRESETS[args.preset], widths=args.widths, ns=args.ns, seeds=args.seeds,
                           networks=args.networks, activations=args.activations, steps=args.steps, d=args.d,
                           batch=args.batch, lr=args.lr, eval_steps=args.eval_steps, n_eval=args.n_eval)
    return _finish(args, "rules", lambda dev, dt: (E.rules_groups(sweep, dev, dt), E.config_dict(sweep),
                                                   Rl.summary_lines))


def _run_digits(args) -> int:
    from sims import digits as D, experiments as E

    sweep = E.build_digits_sweep(E.DIGITS_PRESETS[args.preset], classes=args.classes, ns=args.ns, snrs=args.snrs,
                          seeds=args.seeds, diffusion_steps=args.diffusion_steps,
                          classification_steps=args.classification_steps)
    return _finish(args, "digits", lambda dev, dt: (E.digits_groups(sweep, dev, dt), E.config_dict(sweep),
                                                    D.summary_lines))
