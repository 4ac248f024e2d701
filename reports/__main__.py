"""``python -m reports``: regenerate figures, tables and REPORT.md (``make figures``)."""

import argparse
import sys
import time


def main(argv=None) -> int:
    from dmrules.cli import Parser

    parser = Parser(prog="python -m reports", description=__doc__)
    parser.add_argument("--preset", default="default", choices=["default", "full"],
                        help="default: quick/cpu presets (CPU, minutes); full: paper scale (GPU, or committed GPU results)")
    parser.add_argument("--only", nargs="*", metavar="FIGURE", help="make only these figures")
    args = parser.parse_args(argv)
    from reports import pipeline, report

    t0 = time.perf_counter()
    try:
        records = pipeline.run(args.preset, args.only)
    except ValueError as exc:
        sys.stderr.write(f"python -m reports: error: {exc}\n")
        return 2
    path = report.write(records, args.preset, time.perf_counter() - t0)
    print(f"[report] {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
