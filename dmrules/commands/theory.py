"""``dmrules theory score | bound | check``: exact scores, the rule-error constant L_t, self-checks.

Parsing and dispatch only; the work is in :mod:`theory.checks` (tables) and :mod:`theory.rules`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from dmrules.commands import THEORY_DISTS, nonneg_int, number, numbers, positive_int

OU_TIMES = numbers(float, lo=0, lo_open=True, what="OU times t")
DEGREES = numbers(int, lo=0, what="polynomial degrees")

SCORE_EXAMPLE = """\
examples:
  dmrules theory score --dist rules                        # uniform zeta, t = 0.05,0.2,1
  dmrules theory score --dist fl --d 6 --t 0.1,1 --json
  dmrules theory score --dist rules --zeta 0.2,0.5,0.8:1,2,1 --out score.parquet
Each row compares the closed-form score at --n points x ~ p_t with autograd of the exact log-density
(tolerance 1e-8 relative) or with self-normalised importance sampling (|z| <= 5)."""

BOUND_EXAMPLE = """\
examples:
  dmrules theory bound --t 0.05,0.1,1 --json               # rows {t, bound, bound_scaled, ...}
  dmrules theory bound --t 0.01,0.1,1 --zeta 0.2,0.5,0.8 --degrees 1,3,5 --mc 200000
bound = L_t in psi units, the rule error E[(psi_t - alpha/beta^2)^2] of the DSM-optimal patch-wise
score (the toolkit's own reconstruction of arXiv 2502.04725 Section 4); bound_scaled = L_t/(alpha/beta^2)^2."""

CHECK_EXAMPLE = """\
example:
  dmrules theory check            # a pass/fail table; exit code 1 when any check fails"""

ZETA_HELP = "law of zeta: uniform (default), or a discrete law 'z1,z2,...' (equal weights) or 'z1,z2,...:w1,w2,...'"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list instead of a table")
    p.add_argument("--out", metavar="F.parquet", help="also write the rows as a parquet table with provenance")


def register(subparsers) -> None:
    theory = subparsers.add_parser("theory", help="closed-form scores, rule error bounds, symbolic self-checks",
                                   description="Exact scores of both data laws, the rule-error constant L_t and "
                                               "the symbolic and numeric self-checks of the theory package.")
    theory.set_defaults(func=None, _parser=theory)
    sub = theory.add_subparsers(dest="theory_command", metavar="ACTION")

    score = sub.add_parser("score", help="check the closed-form scores against autograd and Monte Carlo",
                           description="A table checking the closed-form score of a data law against autograd "
                                       "of its exact log-density and against importance-sampling Monte Carlo.",
                           epilog=SCORE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("--dist", default="rules", choices=THEORY_DISTS,
                       help="rules: RulePatches (x(1) = zeta u, x(2) = (1-zeta) v); fl: TwoPatchSignalNoise (default rules)")
    score.add_argument("--t", type=OU_TIMES, default=[0.05, 0.2, 1.0], metavar="T,...",
                       help="OU times t > 0 (default 0.05,0.2,1)")
    score.add_argument("--d", type=positive_int, default=6, help="patch dimension d >= 2 (default 6; Monte Carlo "
                       "needs a small d for fl)")
    score.add_argument("--n", type=positive_int, default=16, help="points x ~ p_t per t (default 16)")
    score.add_argument("--mc", type=positive_int, default=200_000, help="importance samples (default 200000)")
    score.add_argument("--seed", type=nonneg_int, default=0, help="seed of the law's directions and of the samples (default 0)")
    score.add_argument("--zeta", default="uniform", help=ZETA_HELP + " (rules only)")
    score.add_argument("--mu-norm", type=number(float, lo=0, lo_open=True, what="||mu||"), default=1.5, help="||mu|| of the fl law (default 1.5)")
    score.add_argument("--sigma-xi", type=number(float, lo=0, lo_open=True, what="sigma_xi"), default=0.5, help="sigma_xi of the fl law (default 0.5)")
    _common(score)
    score.set_defaults(func=_run_score, _prog=score.prog)

    bnd = sub.add_parser("bound", help="L_t: rule error of the DSM-optimal patch-wise score, by quadrature",
                         description="L_t by quadrature (and optionally Monte Carlo), L_t(F) for polynomial "
                                     "classes, and the DSM losses of the conforming constants vs the optimum.",
                         epilog=BOUND_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    bnd.add_argument("--t", type=OU_TIMES, default=[0.05, 0.1, 1.0], metavar="T,...",
                     help="OU times t > 0 (default 0.05,0.1,1)")
    bnd.add_argument("--zeta", default="uniform", help=ZETA_HELP)
    bnd.add_argument("--degrees", type=DEGREES, default=[], metavar="K,...",
                     help="also L_t(F) for polynomials of these degrees (columns bound_deg{K}, bound_deg{K}_scaled)")
    bnd.add_argument("--mc", type=nonneg_int, default=0, metavar="N",
                     help="also a Monte Carlo estimate from N samples (columns bound_mc, bound_mc_se; default 0: none)")
    bnd.add_argument("--seed", type=nonneg_int, default=0, help="Monte Carlo seed (default 0)")
    _common(bnd)
    bnd.set_defaults(func=_run_bound, _prog=bnd.prog)

    chk = sub.add_parser("check", help="run every symbolic and numeric self-check (exit 1 on a failure)",
                         description="Run every sympy derivation and numeric cross-check of the theory package "
                                     "and print a pass/fail table.",
                         epilog=CHECK_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    chk.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    chk.set_defaults(func=_run_check, _prog=chk.prog)


# ---- handlers --------------------------------------------------------------------------------------
def _check_out(args):
    if args.out is not None and not args.out.endswith(".parquet"):
        from dmrules import UsageError

        raise UsageError(f"--out must name a .parquet file, got {args.out!r}")


def _json_value(v):
    """Strict JSON: NaN and infinities become null."""
    return None if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))) else v


def _emit(args, rows, columns, config, wall):
    import pandas as pd

    from dmrules import results as R

    df = pd.DataFrame(rows)
    if args.out:
        R.write_table(df, args.out, R.provenance(config=config, wall_time_s=wall))
    if args.json:
        print(json.dumps([{k: _json_value(v) for k, v in r.items()} for r in rows]))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(df[[c for c in columns if c in df]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if args.out:
            print(f"[theory] {len(df)} rows -> {args.out}")


def _run_score(args) -> int:
    from theory import checks

    _check_out(args)
    t0 = time.perf_counter()
    rows = checks.score_check_rows(args.dist, args.t, d=args.d, n=args.n, mc_samples=args.mc, seed=args.seed,
                                   mu_norm=args.mu_norm, sigma_xi=args.sigma_xi, zeta=args.zeta)
    config = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("func", "json", "out")}
    _emit(args, rows, ["dist", "t", "reference", "n_points", "max_rel_err", "max_abs_err", "max_z", "min_ess",
                       "mc_points", "tol", "passed"], config, time.perf_counter() - t0)
    failed = [r for r in rows if not r["passed"]]
    if failed and not args.json:
        sys.stderr.write(f"[theory score] {len(failed)} of {len(rows)} comparisons FAILED\n")
    return 0


def _run_bound(args) -> int:
    from dmrules import UsageError
    from theory import checks

    _check_out(args)
    if args.mc < 0 or args.mc == 1:
        raise UsageError(f"--mc must be 0 (no Monte Carlo) or at least 2 samples, got {args.mc}")
    t0 = time.perf_counter()
    rows = checks.bound_rows(args.t, args.zeta, degrees=tuple(args.degrees), mc_samples=args.mc, seed=args.seed)
    config = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("func", "json", "out")}
    cols = ["t", "bound", "bound_scaled", "target", "dsm_excess_constant", "dsm_excess_optimum"]
    cols += [f"bound_deg{k}" for k in args.degrees] + ["bound_mc", "bound_mc_se", "mc_rel_diff"]
    _emit(args, rows, cols, config, time.perf_counter() - t0)
    return 0


def _run_check(args) -> int:
    from theory import checks

    def log(row):
        if not args.json:
            mark = "PASS" if row["passed"] else "FAIL"
            print(f"{mark}  {row['seconds']:6.2f}s  {row['kind']:8s}  {row['check']}\n{'':26s}{row['detail']}", flush=True)

    rows = checks.run_checks(log=log)
    failed = [r["check"] for r in rows if not r["passed"]]
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"{len(rows) - len(failed)}/{len(rows)} checks passed" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
