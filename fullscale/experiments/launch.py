"""A sweep's manifest and its launchers (issue 14): a local process pool or SLURM through submitit.

OUT/manifest.json lists every run (its ClockRun spec and folder, OUT/runs/<name>) in launch order.
Runs are independent and resumable, so any launcher may run any subset, in any order, any number
of times: a finished run is skipped, a killed one resumes, and a run already held by another
process (its RUN/.lock) is reported busy and left alone.

- ``local``: ``workers`` processes (spawned, each with ``threads`` torch threads; logs in RUN/log.txt);
  ``workers = 1`` runs in this process and prints the log.
- ``slurm`` / ``submitit-local`` / ``submitit-debug``: one submitit job per run (``map_array``) on a
  SLURM cluster, as local subprocesses, or in this process (tests). ``pip install 'dmrules[sweep]'``.
  Each run may itself be a multi-GPU job: ``torchrun --nproc_per_node=G -m dmrules sweep run RUN``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from dmrules.core import results as R
from fullscale import names

from .clocks import ClockRun, RunBusy, is_done, run_one

LAUNCHERS = names.LAUNCHERS


def run_dir(out, run: ClockRun) -> Path:
    return Path(out) / "runs" / run.name


def write_manifest(out, runs: list[ClockRun], sweep: dict) -> Path:
    """OUT/manifest.json: the sweep's options and its runs, merged with runs listed earlier (in their
    order). A run listed again takes this sweep's spec: its folder refuses any other (clocks.run_one),
    so a spec can only change after the old folder was moved away, and the manifest then follows."""
    path = Path(out) / "manifest.json"
    old = R.read_json(path, "sweep manifest")["runs"] if path.exists() else []
    entry = {r.name: {"name": r.name, "dir": str(run_dir(out, r).relative_to(out)), "spec": r.to_json()} for r in runs}
    new = [entry.pop(r["name"], r) for r in old] + list(entry.values())
    R.write_json(path, {"sweep": sweep, "runs": new, "provenance": R.provenance(config=sweep)})
    return path


def load_spec(rdir) -> ClockRun:
    path = Path(rdir) / "config.json"
    if not path.exists():
        raise ValueError(f"{rdir} is not a clock run (no config.json); list runs with `dmrules sweep clocks ... --plan`")
    return ClockRun.from_json(json.loads(path.read_text())["config"])


def _perf(perf_json: dict):
    from fullscale.presets import Performance

    return Performance(**perf_json)


def execute(spec_json: dict, rdir: str, perf_json: dict, to_file: bool = True) -> dict:
    """Run one spec (the unit every launcher calls); never raises: returns a status dict."""
    run = ClockRun.from_json(spec_json)
    t0 = time.perf_counter()
    Path(rdir).mkdir(parents=True, exist_ok=True)
    log_path = Path(rdir) / "log.txt"

    def log(msg: str) -> None:  # stdout is RUN/log.txt in a pool's worker (below)
        print(msg, flush=True)

    try:
        if perf_json.get("threads"):
            os.environ.setdefault("OMP_NUM_THREADS", str(perf_json["threads"]))
        with contextlib.ExitStack() as stack:
            if to_file:  # a pool's workers keep their output in RUN/log.txt
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(log_path, "a"))))
            res = run_one(run, rdir, _perf(perf_json), log=log)
        return {"name": run.name, **res, "wall_s": time.perf_counter() - t0}
    except RunBusy as exc:
        return {"name": run.name, "status": "busy", "message": str(exc)}
    except Exception as exc:  # one failed run must not stop the others; the log keeps the traceback
        import traceback

        with open(log_path, "a") as f:
            f.write(traceback.format_exc())
        return {"name": run.name, "status": "failed", "message": f"{type(exc).__name__}: {exc}"}


def run_local(out, runs, perf_json: dict, workers: int, log=print) -> list[dict]:
    """Run the pending runs with a pool of ``workers`` spawned processes (or in-process for 1)."""
    todo = [r for r in runs if not is_done(r, run_dir(out, r))]
    log(f"[sweep] {len(runs) - len(todo)} of {len(runs)} runs finished already; {len(todo)} to run "
        f"with {workers} worker(s) x {perf_json.get('threads') or 'default'} thread(s)")
    if not todo:
        return []
    results = []
    if workers == 1:
        for r in todo:
            res = execute(r.to_json(), str(run_dir(out, r)), perf_json, to_file=False)
            log(_line(res))
            results.append(res)
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futs = [pool.submit(execute, r.to_json(), str(run_dir(out, r)), perf_json) for r in todo]
        for fut in as_completed(futs):
            res = fut.result()
            log(_line(res))
            results.append(res)
    return results


def run_submitit(out, runs, perf_json: dict, cluster: str, params: dict | None = None, log=print) -> list[dict]:
    """One submitit job per pending run; waits for all of them."""
    try:
        import submitit
    except ImportError:
        raise ValueError("the slurm / submitit launchers need submitit: pip install 'dmrules[sweep]'") from None
    todo = [r for r in runs if not is_done(r, run_dir(out, r))]
    log(f"[sweep] {len(runs) - len(todo)} of {len(runs)} runs finished already; {len(todo)} submitted via "
        f"submitit ({cluster})")
    if not todo:
        return []
    ex = submitit.AutoExecutor(folder=str(Path(out) / "submitit"), cluster=cluster.removeprefix("submitit-")
                               if cluster != "slurm" else None)
    if params:
        ex.update_parameters(**params)
    jobs = ex.map_array(execute, [r.to_json() for r in todo], [str(run_dir(out, r)) for r in todo],
                        [perf_json] * len(todo))
    results = []
    for job in jobs:
        res = job.result()
        log(_line(res))
        results.append(res)
    return results


def _line(res: dict) -> str:
    extra = f" ({res['message']})" if res.get("message") else ""
    wall = f" in {res['wall_s']:.0f} s" if res.get("wall_s") else ""
    return f"[sweep] {res['name']}: {res['status']}{wall}{extra}"


def default_workers(threads: int | None) -> int:
    """Processes that fit the cores: cores // threads per run (at least 1)."""
    return max(1, (os.cpu_count() or 1) // max(1, threads or 1))

