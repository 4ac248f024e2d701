"""Benchmark of the paper protocol (the rules-paper authors' evaluator, issue 11), run by ``make bench``.

Measures images per second of ``fullscale.evaluate.paper_protocol.extract_paper`` (the image -> point
step, which upsamples every 32-px image to 128 px with OpenCV; the recipes after it are negligible)
per task and pipeline on exact 32-px renders, in one process on one core (OpenCV and torch held to one
thread), best of 3; and, beside it, the precise evaluator (``fullscale.evaluate.extract``) on the same
images. Goal: >= 200 images/s on 2 cores for the generated-sample pipeline ("paper").

Writes ``reports/results/bench_paper_protocol.parquet`` (tidy, one row per measurement, provenance).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_data import best_of  # noqa: E402  (one timing helper for the benchmarks)
from dmrules.core import results as R  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="images per task (default 1000)")
    parser.add_argument("--train-n", type=int, default=200, help="images per task for the training-image pipeline")
    parser.add_argument("--out", default=str(ROOT / "reports" / "results" / "bench_paper_protocol.parquet"),
                        help="output table")
    args = parser.parse_args(argv)
    import cv2
    import pandas as pd

    from fullscale import evaluate as ev
    from fullscale import tasks
    from fullscale.evaluate import paper_protocol as pp

    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    t_start = time.perf_counter()
    rows = []
    for task in tasks.TASKS:
        images, _ = tasks.render(task, args.n, seed=7)
        for pipeline, n in (("gen", args.n), ("train", args.train_n)):
            pp.extract_paper(task, images[:20], pipeline)  # warm-up
            s = best_of(lambda: pp.extract_paper(task, images[:n], pipeline))
            name = "paper" if pipeline == "gen" else "paper-train"
            rows.append({"benchmark": "evaluate", "protocol": name, "task": task, "n": n, "seconds": s,
                         "images_per_s": n / s, "threads": 1})
            print(f"Task {task} {name:<12} {n / s:8.0f} images/s ({n} images in {s:.2f} s, 1 thread)")
        ev.extract(task, images[:50])
        s = best_of(lambda: ev.extract(task, images))
        rows.append({"benchmark": "evaluate", "protocol": "precise", "task": task, "n": args.n, "seconds": s,
                     "images_per_s": args.n / s, "threads": 1})
        print(f"Task {task} {'precise':<12} {args.n / s:8.0f} images/s")
    df = pd.DataFrame(rows)
    R.write_table(df, Path(args.out), R.provenance(config=vars(args), wall_time_s=time.perf_counter() - t_start))
    worst = df[df.protocol == "paper"].images_per_s.min()
    print(f"paper protocol (generated-sample pipeline), slowest task: {worst:.0f} images/s on one core "
          f"(goal >= 200 on 2 cores) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
