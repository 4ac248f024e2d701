"""``dmrules data`` (render Tasks A-D) and ``dmrules evaluate`` (measure the rules on images).

Parsing and dispatch only; the work is in :mod:`fullscale.tasks` and :mod:`fullscale.evaluate`.
Neither command imports torch.
"""

from __future__ import annotations

import argparse
import time

from dmrules.commands import positive_int, task_metavar, task_name

DATA_EXAMPLE = """\
examples:
  dmrules data --task A --out data/A                   # the paper's 4000 Task A training images, 32 px
  dmrules data --task C --n 2000 --size 64 --seed 1 --out data/C64 --png
  dmrules data --task B --contrastive --n 6000 --out data/B3   # classes 0 / 1 (conforming) / 2
  dmrules data --task D --violate --n 500 --out data/Dbad      # the upper square is the larger

writes DIR/images.npy (uint8 N x H x W x 3), DIR/features.parquet (rule_x, rule_y, coarse_ok, ...),
DIR/meta.json and, with --png, DIR/png/000000.png ...; the same seed gives the same bytes.
"""

EVAL_EXAMPLE = """\
examples:
  dmrules evaluate --task A data/A                     # a data set directory: a summary table
  dmrules evaluate --task A samples.npy --json         # one JSON object (n, parsed, slope, r2, ...)
  dmrules evaluate --task C samples/png --train data/C  # + memorisation and the training-set ceiling
  dmrules evaluate --task C samples.npy --protocol paper --json   # the authors' own evaluator (recipe C-80)
  dmrules evaluate --task D data/D --protocol paper-train          # their training-image pipeline

PATH: a data set directory, an .npy array [N, H, W, 3] (uint8, or floats in [0, 1] / [-1, 1]) or a
folder of images of any size. Unreadable or garbage images count as parse failures.
"""


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _percentile(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentile such as 2.5, got {text!r}") from None
    if not 0 <= value < 50:
        raise argparse.ArgumentTypeError(f"expected a percentile in [0, 50), got {value}")
    return value


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data", help="render Tasks A-D (and contrastive / rule-violating variants)",
        description="Render a task's images directly at the requested size (exact anti-aliasing, no "
                    "plotting library) with their ground-truth features.",
        epilog=DATA_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_argument("--task", required=True, type=task_name, metavar=task_metavar(),
                      help="which task (the task registry: fullscale/tasks/registry.py)")
    data.add_argument("--n", type=positive_int, default=None,
                      help="number of images (default: the paper's training size, A 4000, B-D 2000)")
    data.add_argument("--size", type=positive_int, default=32, help="image side in pixels (default 32)")
    data.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    data.add_argument("--out", required=True, metavar="DIR", help="output directory")
    variant = data.add_mutually_exclusive_group()
    variant.add_argument("--contrastive", action="store_true",
                         help="ternary set: label 1 conforming, 0 and 2 off the rule in opposite directions")
    variant.add_argument("--violate", action="store_true", help="break the coarse rule in every image")
    data.add_argument("--png", action="store_true", help="also write DIR/png/000000.png ...")
    data.add_argument("--holdout", metavar="NAME:LO:HI", default=None,
                      help="drop the images with LO <= NAME < HI (NAME a position feature, e.g. A sun_x, C r1; "
                           "'free' = the task's free variable); the set keeps n minus the dropped (docs/clocks.md)")
    data.set_defaults(func=_run_data, _prog=data.prog)

    ev = subparsers.add_parser(
        "evaluate", help="measure coarse and fine rules on images (pixels only)",
        description="Measure each image's features from its pixels and report the rules paper's metrics: "
                    "parse failures, coarse violations, OLS fit of rule_y on rule_x, R^2, rule-conforming %.",
        epilog=EVAL_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--task", required=True, type=task_name, metavar=task_metavar(), help="which task's rules")
    ev.add_argument("path", metavar="PATH", help="data set directory, .npy array or folder of images")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ev.add_argument("--train", metavar="DIR",
                    help="training images (any PATH form): adds memorisation and the training-set ceiling")
    ev.add_argument("--fit-on", choices=["parsed", "coarse_ok"], default="parsed",
                    help="points for the fit: all parsed images (default) or only coarse-rule-satisfying ones "
                         "(the authors' Task A choice)")
    ev.add_argument("--trim", type=_percentile, default=None, metavar="P",
                    help="drop points outside the [P, 100-P] percentiles of x or y before fitting (the "
                         "authors used 2.5); default: no trimming")
    ev.add_argument("--out", metavar="F.parquet", help="also write the per-image measurements (with provenance)")
    from dmrules.commands import _paper_eval

    _paper_eval.add_options(ev)  # --protocol precise|paper|paper-train and the paper protocol's options
    ev.set_defaults(func=_run_evaluate, _prog=ev.prog)


def _same_dataset(meta: dict, want: dict) -> bool:
    return all(meta.get(k) == v for k, v in want.items())


def _run_data(args) -> int:
    from pathlib import Path

    from dmrules import UsageError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a directory")
    from fullscale import tasks

    n = args.n or tasks.PAPER_TRAIN_SIZE[args.task]
    band = None
    if args.holdout is not None:  # issue 14: the held-out band (fullscale/tasks/holdout.py)
        from fullscale.tasks import holdout

        band = holdout.parse_band(args.holdout, args.task)
    want = {"task": args.task, "n": n, "size": args.size, "seed": args.seed,
            "contrastive": args.contrastive, "violate": args.violate,
            "holdout": band.label() if band is not None else None}
    meta_path = out / "meta.json"
    if meta_path.exists():
        from dmrules import results as R

        meta = R.read_json(meta_path, "data set record")
        # issue 12: a truncated images.npy (or table, PNGs) under a complete-looking set is rendered again
        from fullscale.tasks.dataset import verify_dataset

        problem = verify_dataset(out, meta) if _same_dataset(meta, want) else None
        if problem:
            print(f"[data] {out}: {problem}: rendering it again")
        elif _same_dataset(meta, want) and (not args.png or (meta.get("files") or {}).get("png")):
            print(f"[data] {out}: Task {args.task}, {n} images at {args.size} px, seed {args.seed}: "
                  "already there, skipped")
            return 0
        if not _same_dataset(meta, want):
            have = ", ".join(f"{k} {meta.get(k)!r}, not {want[k]!r}" for k in want if meta.get(k) != want[k])
            raise UsageError(f"{out} already holds another data set ({have}); use a new --out or delete it")
    t0 = time.perf_counter()
    images, features = tasks.render(args.task, n, size=args.size, seed=args.seed,
                                    contrastive=args.contrastive, violate=args.violate)
    t_render = time.perf_counter() - t0
    meta = dict(want, render_s=round(t_render, 3))
    if band is not None:
        images, features, info = holdout.apply(images, features, band)
        meta["holdout_info"] = info
        print(f"[data] holdout {band.label()}: dropped {info['n_dropped']} of {n} images, kept {info['n_kept']}")
    tasks.save_dataset(out, images, features, meta, png=args.png)
    kind = "contrastive " if args.contrastive else "rule-violating " if args.violate else ""
    print(f"[data] {n} {kind}Task {args.task} images at {args.size} px (seed {args.seed}) -> {out} "
          f"(render {t_render:.2f} s, total {time.perf_counter() - t0:.2f} s)")
    return 0


def _fmt(v, spec: str = ".4f") -> str:
    return "n/a" if v is None else format(v, spec)


def _line(slope, intercept) -> str:
    if slope is None or intercept is None:
        return "n/a"
    return f"rule_y = {slope:.4f} rule_x {'+' if intercept >= 0 else '-'} {abs(intercept):.4f}"


def _summary_lines(res: dict) -> list[str]:
    n, parsed = res["n"], res["parsed"]
    fails = ", ".join(f"{k} {v}" for k, v in res["failure_reasons"].items()) or "none"
    g = res["rule_slope"]
    lines = [
        f"  parsed               {parsed} / {n}" + (f" ({100 * parsed / n:.1f} %)" if n else "")
        + f"   failures: {fails}",
        f"  coarse violations    {_fmt(None if res['coarse_violation_rate'] is None else 100 * res['coarse_violation_rate'], '.2f')} % of parsed",
        f"  fit (OLS, {res['n_fit']} pts)    {_line(res['slope'], res['intercept'])}   R^2 {_fmt(res['r2'])}   "
        f"(rule: slope {g:.4f}, intercept 0)",
        f"  rule-conforming      {_fmt(res['conform_pct'], '.2f')} % (0.05 bins)",
        f"  bias error           {_fmt(res['bias_error'])}  (|a - g| + |b|; the authors' |a - 1| + |b|: {_fmt(res['bias_error_paper'])})",
        f"  variance error       {_fmt(res['variance_error'])}  (residual std)",
    ]
    return lines


def _run_evaluate(args) -> int:
    import json
    from pathlib import Path

    from dmrules import UsageError
    from dmrules import results as R
    from dmrules.commands import _paper_eval

    if getattr(args, "protocol", "precise") != "precise":
        return _paper_eval.run_paper(args)
    given = _paper_eval.paper_options_given(args)
    if given:
        raise UsageError(f"{', '.join(given)} belong(s) to --protocol paper / paper-train")
    from fullscale import evaluate as ev

    t0 = time.perf_counter()
    try:
        stored = _paper_eval.stored_samples(args.path)  # a run's samples.png atlas (issue 11)
        images = ev.load_images(args.path) if stored is None else ev.images.as_imageset(stored)
        train = ev.load_images(args.train) if args.train else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    table = ev.extract(args.task, images)
    train_table = ev.extract(args.task, train) if train is not None else None
    res = ev.evaluate_tables(args.task, table, train_table, fit_on=args.fit_on, trim=args.trim)
    res["protocol"] = "precise"
    res["recipe"] = f"OLS on {args.fit_on} points" + (f", xy-trim [{args.trim:g}, {100 - args.trim:g}]" if args.trim else "")
    res["path"] = str(args.path)
    res["image_size"] = int(images.images.shape[1]) if len(images) else None
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if args.out:
        R.write_table(table, Path(args.out), R.provenance(config={"task": args.task, "path": str(args.path)},
                                                          wall_time_s=res["seconds"], summary=res))
    if args.json:
        print(json.dumps(res, allow_nan=False, default=R._json_default))
        return 0
    print(f"Task {args.task}: {res['n']} images from {args.path} (analysed at {res['image_size']} px) "
          f"in {res['seconds']:.1f} s")
    print("\n".join(_summary_lines(res)))
    if "train" in res:
        t = res["train"]
        print(f"training images ({args.train}), the evaluator's ceiling: parsed {t['parsed']} / {t['n']}, "
              f"{_line(t['slope'], t['intercept'])}, R^2 {_fmt(t['r2'])}, "
              f"conforming {_fmt(t['conform_pct'], '.2f')} %")
        mem = res["memorisation"]
        print(f"memorisation: nearest training image within t (distance / sqrt 2; {mem['n']} parsed samples, "
              f"{mem['rule_exact']['n']} rule-exact)")
        print("  t                    " + " ".join(f"{t:>5g}" for t in mem["thresholds"]))
        for key, label in (("position", "position"), ("position_colour", "position+colour")):
            print(f"  {label:<20} " + " ".join(f"{_fmt(v, '5.2f')}" for v in mem[key]))
            loo = mem["train_leave_one_out"][key]
            print(f"  {'  (train vs train)':<20} " + " ".join(f"{_fmt(v, '5.2f')}" for v in loo))
    if args.out:
        print(f"per-image measurements -> {args.out}")
    return 0
