"""Benchmark of the closed-form denoisers (issue 14, Sec. 5), run by ``make bench``.

Goal: 256 samples x 50 sampler steps of ``local`` P = 9 at n = 1024 (Task A, 32 px) in <= 2 minutes
on 2 cores and <= 8 GB. Measured through the real path (``fullscale.ladder``'s denoiser as the
eps-prediction of ``fullscale.generate.sample_images``, DDIM eta 1, per-sample seeds), with wall
and CPU time, peak resident memory (``ru_maxrss``) and the 1-minute load average before and after
(the machine may be shared: then wall time overstates what two idle cores need, CPU time does not).

``--samples`` / ``--steps`` below the goal's 256 x 50 measure a part and scale it linearly to the goal
(the work is exactly linear in samples x steps: every step costs the same); the row says so
(``extrapolated``). Also timed: empirical and gaussian at the same n, for scale.

Writes ``reports/results/bench_baselines.parquet`` (one row per denoiser, with provenance).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_SAMPLES, GOAL_STEPS, GOAL_S, GOAL_GB = 256, 50, 120.0, 8.0


def measure(name, patch, train, offset, rt, samples, steps, batch):
    import torch

    from fullscale import baselines, generate

    den = baselines.build(name, train, patch=patch)
    generate.sample_images(baselines.net_fn(den), min(batch, samples), 32, rt, steps=2, sampler="ddim", eta=1.0,
                           batch=batch, offset=offset, log=lambda m: None)  # warm-up
    load0 = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), time.process_time()
    generate.sample_images(baselines.net_fn(den), samples, 32, rt, steps=steps, sampler="ddim", eta=1.0,
                           batch=batch, offset=offset, log=lambda m: None)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    scale = (GOAL_SAMPLES * GOAL_STEPS) / (samples * steps)
    return {"denoiser": name, "patch": float(patch) if patch else float("nan"), "n_train": int(train.shape[0]),
            "samples": samples, "steps": steps, "batch": batch, "threads": torch.get_num_threads(),
            "wall_s": wall, "cpu_s": cpu, "img_steps_per_s": samples * steps / wall,
            "goal_wall_s": wall * scale, "goal_cpu_s": cpu * scale, "extrapolated": scale != 1.0,
            "load_before": load0, "load_after": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1024, help="training images (default 1024)")
    parser.add_argument("--samples", type=int, default=GOAL_SAMPLES, help="samples (default 256)")
    parser.add_argument("--steps", type=int, default=GOAL_STEPS, help="DDIM steps (default 50)")
    parser.add_argument("--batch", type=int, default=64, help="samples per batch (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the issue's 2 cores)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "results" / "bench_baselines.parquet"))
    args = parser.parse_args(argv)
    import pandas as pd
    import torch

    from dmrules.core import results as R
    from fullscale import runtime, tasks
    from fullscale.diffusion import from_uint8
    from fullscale.presets import Performance
    from fullscale.train import data_mean

    torch.set_num_threads(args.threads)
    rt = runtime.setup(Performance(device="cpu", threads=args.threads, bf16=False, compile=False), distributed=False)
    t_start = time.perf_counter()
    images, _ = tasks.render("A", args.n, seed=0)
    offset = data_mean(images)
    train = from_uint8(torch.from_numpy(images)) - offset
    rows = []
    for name, patch in (("local", 9), ("empirical", None), ("gaussian", None)):
        row = measure(name, patch, train, offset, rt, args.samples, args.steps, args.batch)
        row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
        rows.append(row)
        tag = " (extrapolated)" if row["extrapolated"] else ""
        print(f"{name}{f' P={patch}' if patch else ''}, n = {args.n}: {args.samples} samples x {args.steps} steps in "
              f"{row['wall_s']:.1f} s wall / {row['cpu_s']:.1f} s CPU on {args.threads} threads "
              f"({row['img_steps_per_s']:.0f} img-steps/s); 256 x 50: {row['goal_wall_s']:.0f} s wall{tag} "
              f"(goal <= {GOAL_S:.0f} s); peak RSS so far {row['peak_rss_gb']:.2f} GB (goal <= {GOAL_GB:.0f}); "
              f"load {row['load_before']:.1f} -> {row['load_after']:.1f}")
    df = pd.DataFrame(rows)
    R.write_table(df, args.out, R.provenance(config=vars(args), command=" ".join(["python", *sys.argv]),
                                             wall_time_s=time.perf_counter() - t_start))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
