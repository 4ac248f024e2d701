"""``dmrules evaluate --protocol paper|paper-train``: the rules-paper authors' own evaluator.

Options and dispatch only (the work is :mod:`fullscale.evaluate.paper_protocol`); registered on the
``evaluate`` parser by :mod:`dmrules.commands.data`. Standard library only at module level.
"""

from __future__ import annotations

import argparse
import math
import time

from fullscale import names  # standard library only

PROTOCOLS = names.EVAL_PROTOCOLS
CATEGORIES = ("all", *names.CONFORM_CATEGORIES)
# options that only the paper protocol reads (dest -> flag), refused with --protocol precise
PAPER_ONLY = {"recipe": "--recipe", "jitter_seed": "--jitter-seed", "unseeded": "--unseeded",
              "jitter_repeats": "--jitter-repeats", "conform_category": "--conform-category",
              "b_train_ranges": "--b-train-ranges", "d_train_divisor": "--d-train-divisor",
              "a_train_d_only": "--a-train-d-only", "bgr": "--bgr"}


def _int_type(lo: int, hi: int):
    """A bounded integer argparse type (dmrules.commands.number's convention: .bounds and .kind)."""
    try:
        from dmrules.commands import number

        return number(int, lo, hi)
    except ImportError:  # older dmrules.commands without number()
        def parse(text: str) -> int:
            try:
                value = int(text.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
            if not lo <= value <= hi:
                raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}], got {text!r}")
            return value

        parse.bounds, parse.kind = (lo, hi, False, False), int
        return parse


def _divisor(text: str):
    """'width' or a positive finite number (the notebook's 1024)."""
    if text.strip().lower() == "width":
        return "width"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'width' or a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected 'width' or a positive number, got {text!r}")
    return value


def add_options(ev) -> None:
    """The ``--protocol`` switch and the paper protocol's options (spec Sec. 7) on ``evaluate``."""
    g = ev.add_argument_group("evaluator family (docs/evaluate.md)")
    g.add_argument("--protocol", choices=PROTOCOLS, default="precise",
                   help="precise: the toolkit's sub-pixel evaluator (default); paper: the authors' generated-sample "
                        "pipeline (their notebook, quirks included); paper-train: their training-image pipeline")
    g.add_argument("--recipe", default=None, metavar="NAME",
                   help="paper protocol: the filter-then-OLS recipe (default: the one behind the paper's headline "
                        "number: A-21, B-67, C-80, D-94; train: A-8, B-61, C-75, D-89); the others are listed in "
                        "the output")
    g.add_argument("--jitter-seed", type=_int_type(0, 2**32 - 1), default=None, metavar="S",
                   help="paper protocol: seed of the C-80 / D-94 jitter (default 0; the authors' was unseeded)")
    g.add_argument("--unseeded", action="store_true",
                   help="paper protocol: draw the jitter from NumPy's global generator, as the authors did "
                        "(a different number every run)")
    g.add_argument("--jitter-repeats", type=_int_type(0, 1000), default=None, metavar="N",
                   help="paper protocol: also report the mean R² and slope over jitter seeds S .. S+N-1 (default 20)")
    g.add_argument("--conform-category", choices=CATEGORIES, default=None,
                   help="paper protocol, Task A: conform %% over all four d categories (default) or only one, as "
                        "the notebook's cell 16 did")
    g.add_argument("--b-train-ranges", choices=("as-written", "intended"), default=None,
                   help="paper-train, Task B: the notebook's HSV ranges as written (the range bug, default) or as "
                        "intended")
    g.add_argument("--d-train-divisor", type=_divisor, default=None, metavar="width|X",
                   help="paper-train, Task D: divide square sides by the image width (default) or by X (the "
                        "notebook: 1024)")
    g.add_argument("--a-train-d-only", action="store_true",
                   help="paper-train, Task A: fit only images the coarse labeller calls d")
    g.add_argument("--bgr", action="store_true",
                   help="paper protocol: an .npy array is already in BGR order (default: RGB, flipped as OpenCV reads)")


def paper_options_given(args) -> list[str]:
    """The paper-only flags the user gave (to refuse them with --protocol precise)."""
    return [flag for dest, flag in PAPER_ONLY.items() if getattr(args, dest, None) not in (None, False)]


def settings_from(args):
    from fullscale.evaluate.paper_protocol import Settings

    return Settings(recipe=args.recipe, jitter_seed=None if args.unseeded else (args.jitter_seed or 0),
                    jitter_repeats=20 if args.jitter_repeats is None else args.jitter_repeats,
                    conform_category=args.conform_category or "all",
                    b_train_ranges=args.b_train_ranges or "as-written",
                    d_train_divisor="width" if args.d_train_divisor is None else args.d_train_divisor,
                    a_train_d_only=args.a_train_d_only, bgr=args.bgr)


def stored_samples(path):
    """The images of a dmrules sample atlas (a ``samples.png`` file, or a run folder holding one), else
    None (any other PATH form is read as before)."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir() and (path / "samples.png").is_file() and not (path / "images.npy").exists():
        path = path / "samples.png"
    if not (path.is_file() and path.suffix.lower() == ".png"):
        return None
    from fullscale.evaluate import stored

    try:
        return stored.load_atlas(path)
    except ValueError:
        return None  # an ordinary PNG: one image


def _input_size(images) -> int | None:
    """The most common input height (the JSON key ``image_size``; the pipelines resize to their own T)."""
    import collections

    shapes = [getattr(im, "shape", None) for im in images] if not hasattr(images, "ndim") else [images.shape[1:]]
    sizes = [s[1] if len(s) == 3 and s[0] in (1, 3, 4) and s[-1] not in (1, 3, 4) else s[0]
             for s in shapes if s is not None and len(s) >= 2]
    return int(collections.Counter(sizes).most_common(1)[0][0]) if sizes else None


def _fmt(v, spec: str = ".4f") -> str:
    return "n/a" if v is None else format(v, spec)


def run_paper(args) -> int:
    """The handler for ``--protocol paper|paper-train``."""
    import json
    from pathlib import Path

    from dmrules import UsageError
    from dmrules import results as R
    from fullscale.evaluate import paper_protocol as pp

    bad = [flag for flag, given in (("--train", args.train), ("--trim", args.trim is not None),
                                     ("--fit-on", args.fit_on not in (None, "parsed"))) if given]
    if bad:
        raise UsageError(f"{', '.join(bad)} belong(s) to --protocol precise; the paper protocol's recipes fix the "
                         "fit (see --recipe)")
    if args.unseeded and args.jitter_seed is not None:
        raise UsageError("give either --jitter-seed or --unseeded, not both")
    pipeline = "gen" if args.protocol == "paper" else "train"
    try:
        settings = settings_from(args).check(args.task, pipeline)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    t0 = time.perf_counter()
    atlas = stored_samples(args.path)
    try:
        images, names, errors, is_bgr = (pp.load_paper_images(args.path) if atlas is None
                                         else (atlas, [str(i) for i in range(len(atlas))], None, False))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if is_bgr:  # files are read by OpenCV, already BGR
        from dataclasses import replace

        settings = replace(settings, bgr=True)
    table = pp.extract_paper(args.task, images, pipeline, settings, names=names, errors=errors)
    res = pp.summarize_paper(args.task, table, pipeline, settings)
    res["path"] = str(args.path)
    res["image_size"] = _input_size(images)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    if args.out:
        R.write_table(table, Path(args.out), R.provenance(
            config={"task": args.task, "path": str(args.path), "protocol": args.protocol, **settings.as_dict()},
            wall_time_s=res["seconds"], summary=res))
    if args.json:
        print(json.dumps(res, allow_nan=False, default=R._json_default))
        return 0
    n, parsed = res["n"], res["parsed"]
    fails = ", ".join(f"{k} {v}" for k, v in res["failure_reasons"].items()) or "none"
    cvr = res["coarse_violation_rate"]
    print(f"Task {args.task}: {n} images from {args.path}, the authors' {pipeline} pipeline (protocol "
          f"{args.protocol}) in {res['seconds']:.1f} s")
    print(f"  parsed               {parsed} / {n}   failures: {fails}")
    print(f"  coarse violations    {_fmt(None if cvr is None else 100 * cvr, '.2f')} %")
    print(f"  conform              {_fmt(res['conform_pct'], '.2f')} % (0.05 bins, all parsed points)")
    for r in res["recipes"]:
        mark = "*" if r["recipe"] == res["recipe"] else " "
        print(f"  {mark} {r['recipe']:<8} ({r['cell']}: {r['filter']}): {r['n_fit']} pts, slope {_fmt(r['slope'])}, "
              f"intercept {_fmt(r['intercept'])}, R^2 {_fmt(r['r2'])}")
    u = res["untrimmed"]
    print(f"    untrimmed OLS: {u['n_fit']} pts, slope {_fmt(u['slope'])}, R^2 {_fmt(u['r2'])}")
    if "jitter" in res:
        j = res["jitter"]
        print(f"    jitter +-{j['amplitude']:g}, seeds {j['seeds'][0]}..{j['seeds'][1]}: mean R^2 {_fmt(j['r2_mean'])} "
              f"(sd {_fmt(j['r2_sd'])}), mean slope {_fmt(j['slope_mean'])}")
    print(f"  bias error (|a - 1| + |b|, the authors') {_fmt(res['bias_error_paper'])}, variance error "
          f"{_fmt(res['variance_error'])}   (* = reported recipe; rule slope {res['rule_slope']:.4f})")
    if args.out:
        print(f"per-image measurements -> {args.out}")
    return 0
