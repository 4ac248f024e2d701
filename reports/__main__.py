"""``python -m reports``: regenerate figures, tables, REPORT.md and report.html (``make figures``).

examples:
  python -m reports                          # preset default: quick/cpu presets, CPU, minutes
  python -m reports --only data_fits         # one figure (results cached under reports/cache/)
  python -m reports --preset full            # paper scale: GPU, or the committed GPU results
  python -m reports --list                   # every figure, and every figure/table of both papers
  python -m reports --preset full --plan     # what would be computed, reused from reports/results/, or skipped
"""

import argparse
import sys
import time


def main(argv=None) -> int:
    from dmrules.cli import Parser

    parser = Parser(prog="python -m reports", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=["default", "full"],
                        help="default: quick/cpu presets (CPU, minutes); full: paper scale (GPU, or committed GPU results)")
    parser.add_argument("--only", nargs="+", metavar="FIGURE", help="make only these figures (the report keeps the others "
                        "from their last run)")
    parser.add_argument("--force", action="store_true", help="recompute the selected figures' results and redraw them")
    parser.add_argument("--redraw", action="store_true", help="redraw the selected figures (results stay cached)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="--preset full without a GPU: compute results that need one on the CPU (slow) instead of "
                             "skipping them")
    parser.add_argument("--list", action="store_true", help="list the figures and the papers' figures/tables, then exit")
    parser.add_argument("--plan", action="store_true",
                        help="say which results would be computed, reused or skipped, and exit (nothing is run)")
    parser.add_argument("--setup-s", type=float, default=None, help=argparse.SUPPRESS)  # set-up time, from make
    args = parser.parse_args(argv)
    from reports import pipeline, report, timing

    if args.list:
        errors: list = []
        figures = pipeline.discover(errors)
        print(report.listing(figures, errors))
        return 0
    t0 = time.perf_counter()
    try:
        run = pipeline.run(args.preset, args.only, force=args.force, redraw=args.redraw, allow_cpu=args.allow_cpu,
                           plan=args.plan)
    except ValueError as exc:
        sys.stderr.write(f"python -m reports: error: {exc}\n")
        return 2
    if args.plan:
        todo = [r for r in run.results.values() if r["status"] == "planned"]
        print(f"[plan] {len(todo)} result(s) to compute, {len(run.results) - len(todo)} ready or skipped; "
              f"{sum(f['status'] == 'planned' for f in run.figures)} figure(s) to draw or check")
        return 0
    run.setup_s = args.setup_s
    md, html = report.write(run, time.perf_counter() - t0)
    print(f"[report] {pipeline._rel(md)} and {pipeline._rel(html)}")
    print(timing.timing_summary(run))
    if not run.ok:
        print(f"[FAILED] {len(run.failures)} figure(s): " + "; ".join(f"{f['name']}: {f['error']}" for f in run.failures),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
