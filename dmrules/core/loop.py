"""The resumable loop skeleton (issue 13): checkpoint, resume, stats trimming, in one place.

    loop = ResumableLoop(folder, progress_key="kimg", scale=1000)
    state = loop.resume(load)                 # None on a fresh start; trims stats.jsonl to the checkpoint
    loop.run(step, start=..., end=..., every_log=..., every_ckpt=..., record=..., save=...)

What every training loop of the toolkit needs and used to write itself (toolkit's own design):

- a checkpoint written atomically (the caller's ``save(path)`` goes through
  :func:`dmrules.core.results.atomic_path` / ``torch_save``) every ``every_ckpt`` steps and at the
  end, so a killed run loses at most that much work;
- on resume, ``stats.jsonl`` keeps only the lines at or before the checkpoint's progress (later
  ones are redone) and drops a line torn by a kill mid-append;
- stats lines appended every ``every_log`` steps (and at the end), one JSON object each.

The loop knows nothing of torch or of what a step does: ``step(i)`` does the work of step ``i``
and returns the progress made (images, examples; default 1). A run stopped after ``stop_after``
progress and resumed gives the same stats lines and final state as an uninterrupted one when the
caller's ``save``/``load`` keep every random state (tested in ``tests/test_core.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from dmrules.core import results as R


class ResumableLoop:
    """Checkpoint / resume / stats bookkeeping for one output folder."""

    def __init__(self, folder, *, checkpoint: str = "checkpoint.pt", stats: str = "stats.jsonl",
                 progress_key: str = "step", scale: float = 1.0):
        self.folder = Path(folder)
        self.checkpoint = self.folder / checkpoint
        self.stats = self.folder / stats
        self.progress_key = progress_key  # the stats key that measures progress (e.g. "kimg")
        self.scale = float(scale)  # progress units per stats unit (1000 images per kimg)

    def resume(self, load: Callable[[Path], dict]) -> dict | None:
        """The checkpoint's state (``load(path)``; it must hold ``step`` and ``progress``) or None.

        On resume the stats file is trimmed to the checkpoint's progress."""
        if not self.checkpoint.exists():
            return None
        state = load(self.checkpoint)
        if "step" not in state or "progress" not in state:
            raise ValueError(f"{self.checkpoint} holds no step/progress: not a checkpoint of this loop")
        self.trim_stats(state["progress"])
        return state

    def trim_stats(self, progress: float) -> int:
        """Keep the stats lines at or before ``progress`` (a torn last line is dropped); returns how many."""
        if not self.stats.exists():
            return 0
        keep = []
        for line in self.stats.read_text().splitlines():
            try:
                rec = json.loads(line) if line.strip() else None
            except ValueError:  # a line cut by a kill mid-append: redone
                continue
            if isinstance(rec, dict) and float(rec.get(self.progress_key, 0)) * self.scale <= progress + 0.5:
                keep.append(line)
        R.write_text(self.stats, "".join(ln + "\n" for ln in keep))
        return len(keep)

    def append(self, record: dict) -> None:
        """Append one stats line (a single ``write`` of one line: a kill tears at most that line)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.stats, "a") as fh:
            fh.write(json.dumps(record, default=R._json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def run(self, step: Callable[[int], float | None], *, start_step: int = 0, start_progress: float = 0,
            end: float, every_log: int, every_ckpt: int, record: Callable[[int, float], dict] | None = None,
            save: Callable[[Path, int, float], None], stop_after: float | None = None,
            log_with_checkpoint: bool = False, write_stats: bool = True) -> dict:
        """Run steps until ``end`` progress (or ``stop_after``, for tests); returns step and progress.

        ``record(step, progress)`` gives the stats line every ``every_log`` steps and at ``end``
        (``progress_key`` and ``step`` are filled in); ``save(path, step, progress)`` writes the
        checkpoint (atomically) every ``every_ckpt`` steps and at the stop. Either may raise to stop
        the run (a divergence check) before the checkpoint of that step is written.

        log_with_checkpoint: also call ``record`` at every checkpoint step (the DDPM trainer logs
        there, so each checkpoint has the stats line of its own step).
        write_stats: append the records to the stats file; False on the non-main processes of a
        distributed run, whose ``record`` must still be called (it may all-reduce) but who write nothing.
        """
        if every_log < 1 or every_ckpt < 1:
            raise ValueError(f"every_log and every_ckpt must be >= 1, got {every_log}, {every_ckpt}")
        stop = end if stop_after is None else min(end, stop_after)
        i, progress = int(start_step), start_progress
        self.folder.mkdir(parents=True, exist_ok=True)
        while progress < stop:
            made = step(i)
            i += 1
            progress += 1 if made is None else made
            last = progress >= stop
            # the stats log at the true end only (a stop for tests writes a checkpoint, no extra line)
            if record is not None and (i % every_log == 0 or progress >= end
                                       or (log_with_checkpoint and i % every_ckpt == 0)):
                rec = dict(record(i, progress))
                rec.setdefault(self.progress_key, progress / self.scale)
                rec.setdefault("step", i)
                if write_stats:
                    self.append(rec)
            if i % every_ckpt == 0 or last:
                save(self.checkpoint, i, progress)
        return {"step": i, "progress": progress, "done": progress >= end}
