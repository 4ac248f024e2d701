"""Benchmark of ``dmrules data`` and ``dmrules evaluate`` (issue 5, Sec. 4), run by ``make bench``.

Measures, side by side in one run:
1. our renderer: 4000 Task A images at 32 px (best of 3);
2. the authors' way (rules-paper protocol Sec. 1.0): a 10 x 10 inch matplotlib figure per image,
   saved as PNG with ``bbox_inches='tight', pad_inches=0, dpi=100`` (~770 px), decoded and
   area-downscaled to 32 px; timed on a subset and scaled to 4000;
3. ``dmrules data --task A --n 4000`` as a fresh process (start-up included), median of 3;
4. evaluation throughput (``fullscale.evaluate.extract``) per task at 32 px, one process;
5. as a cross-check, our evaluator on the authors'-way images.

Writes ``reports/results/bench_data.parquet`` (tidy: one row per measurement, with provenance).
Goals: rendering >= 100x faster, ``dmrules data`` <= 3 s, evaluation >= 500 images/s on 2 cores.
Timings on a shared machine are noisy; ratios are taken within this run.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dmrules.core import results as R  # noqa: E402
from fullscale import evaluate as ev  # noqa: E402
from fullscale import tasks  # noqa: E402
from fullscale.tasks import task_a  # noqa: E402


def authors_way(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, "object"]:
    """Task A the authors' way: matplotlib figure -> ~770 px PNG -> decode -> INTER_AREA to ``size``."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, 0]))
    shapes, feats, _ = task_a.sample(rng, n)
    sun, pole, shadow = shapes
    S = tasks.S
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        fig = plt.figure(figsize=(10, 10))
        ax = fig.gca()
        ax.set_xlim(0, S)
        ax.set_ylim(0, S)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.add_patch(Circle((sun.cx[i], sun.cy[i]), sun.r[i], color=sun.color[i] / 255))
        for r in (pole, shadow):
            ax.add_patch(Rectangle((r.x0[i], r.y0[i]), r.x1[i] - r.x0[i], r.y1[i] - r.y0[i], color=r.color[i] / 255))
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0, dpi=100)
        plt.close(fig)
        big = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        out[i] = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return out, feats


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="Task A images rendered (default 4000)")
    parser.add_argument("--authors-subset", type=int, default=20, help="images rendered the authors' way")
    parser.add_argument("--eval-n", type=int, default=2000, help="images per task for evaluation throughput")
    parser.add_argument("--out", default=str(ROOT / "reports" / "results" / "bench_data.parquet"))
    args = parser.parse_args(argv)
    import pandas as pd

    t_start = time.perf_counter()
    rows = []

    tasks.render("A", 50)  # warm-up
    ours = best_of(lambda: tasks.render("A", args.n))
    rows.append({"benchmark": "render", "method": "ours", "task": "A", "n": args.n, "seconds": ours})
    authors_way(2)  # warm-up (matplotlib import and font cache)
    t0 = time.perf_counter()
    theirs, theirs_truth = authors_way(args.authors_subset)
    sub = time.perf_counter() - t0
    scaled = sub / args.authors_subset * args.n
    rows.append({"benchmark": "render", "method": "authors (matplotlib 770 px + downscale)", "task": "A",
                 "n": args.n, "seconds": scaled, "measured_n": args.authors_subset, "measured_seconds": sub})
    print(f"render 4000 Task A @32px: ours {ours:.3f} s, authors' way {scaled:.0f} s "
          f"(measured {args.authors_subset} in {sub:.1f} s) -> {scaled / ours:.0f}x")

    walls = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "dmrules", "data", "--task", "A", "--n", str(args.n),
                                   "--out", str(Path(tmp) / "A")], capture_output=True, text=True, cwd=ROOT)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
    wall = float(np.median(walls))
    rows.append({"benchmark": "dmrules data (process)", "method": "ours", "task": "A", "n": args.n, "seconds": wall})
    print(f"`dmrules data --task A --n {args.n}` wall time incl. process start: median {wall:.2f} s "
          f"(runs: {', '.join(f'{w:.2f}' for w in walls)})")

    for task in tasks.TASKS:
        images, _ = tasks.render(task, args.eval_n, seed=7)
        ev.extract(task, images[:50])  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        table = ev.extract(task, images)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"benchmark": "evaluate", "method": "ours", "task": task, "n": args.eval_n, "seconds": secs,
                     "cpu_seconds": cpu, "parsed_frac": float(table.parsed.mean())})
        print(f"evaluate Task {task} @32px: {args.eval_n / secs:.0f} images/s ({args.eval_n / cpu:.0f} per CPU-second)")

    res = ev.evaluate("A", theirs)
    rows.append({"benchmark": "evaluate authors'-way renders", "method": "ours", "task": "A",
                 "n": args.authors_subset, "seconds": np.nan, "parsed_frac": res["parsed"] / res["n"],
                 "slope": res["slope"], "r2": res["r2"]})
    print(f"our evaluator on the authors'-way renders: parsed {res['parsed']}/{res['n']}, "
          f"slope {res['slope']}, R^2 {res['r2']}")

    df = pd.DataFrame(rows)
    df["per_image_ms"] = 1000 * df["seconds"] / df["n"]
    df["images_per_s"] = df["n"] / df["seconds"]
    R.write_table(df, args.out, R.provenance(config=vars(args), command="python benchmarks/bench_data.py",
                                             wall_time_s=time.perf_counter() - t_start))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
