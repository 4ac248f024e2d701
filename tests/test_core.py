"""The ground floor (issue 13): dmrules.core imports no science package and no CLI; named streams;
the resumable loop skeleton gives the same stats and state whether or not it was interrupted."""

import json
import subprocess
import sys

import pytest

from dmrules.core import streams
from dmrules.core.loop import ResumableLoop


def test_core_imports_no_science_package_and_no_cli():
    code = ("import sys; import dmrules.core.results, dmrules.core.locks, dmrules.core.streams, dmrules.core.loop; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('theory', 'sims', 'fullscale', 'reports', 'torch', "
            "'numpy', 'pandas') or m.startswith(('dmrules.commands', 'dmrules.cli'))]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_old_names_are_the_ground_floor_modules():
    import dmrules.core.locks
    import dmrules.core.results
    import dmrules.locks
    import dmrules.results

    assert dmrules.results is dmrules.core.results
    assert dmrules.locks is dmrules.core.locks
    assert dmrules.results.lock is dmrules.core.locks.lock


def test_derive_is_stable_and_separates_purposes():
    # the value sims.streams has always used: SHA-256 of the JSON of [seed, purpose, *parts], 32 bits
    assert streams.derive(3, "noise", 1, "x") == 3209274568
    seeds = {streams.derive(0, p, k) for p in ("data", "noise", "sample") for k in range(20)}
    assert len(seeds) == 60
    assert streams.derive(0, "data", "A") != streams.derive(0, "data", "B")
    assert streams.derive(1, "data") < 2**32 and streams.derive(1, "data", bits=128) >= 2**32
    for bad in ((1.5, "data"), (0, ""), (0, "data", 1.5), (True, "data")):
        with pytest.raises(ValueError):
            streams.derive(*bad)


def test_generators_follow_derive():
    import numpy as np
    import torch

    from sims.streams import stream

    a, b = stream(5, "sample", 2), streams.torch_generator(5, "sample", 2)
    assert torch.equal(torch.randn(8, generator=a), torch.randn(8, generator=b))
    x = streams.numpy_rng(5, "data", "A").random(4)
    assert np.array_equal(x, np.random.default_rng(streams.derive(5, "data", "A", bits=128)).random(4))
    assert not np.array_equal(x, streams.numpy_rng(5, "data", "B").random(4))


class _Counter:
    """A toy 'training' state: a running value driven by a seeded stream (saved and restored)."""

    def __init__(self):
        import numpy as np

        self.rng = np.random.default_rng(7)
        self.value = 0.0

    def step(self, i):
        self.value += float(self.rng.random()) + i
        return 3  # progress made: 3 "images" per step

    def save(self, path, step, progress):
        from dmrules import results as R

        R.write_json(path, {"step": step, "progress": progress, "value": self.value,
                            "rng": self.rng.bit_generator.state})

    def load(self, path):
        from dmrules import results as R

        state = R.read_json(path, "checkpoint")
        self.value = state["value"]
        self.rng.bit_generator.state = state["rng"]
        return state


def _run(folder, stop_after=None):
    c = _Counter()
    loop = ResumableLoop(folder, checkpoint="ckpt.json", progress_key="images")
    state = loop.resume(c.load)
    start = (state["step"], state["progress"]) if state else (0, 0)
    out = loop.run(c.step, start_step=start[0], start_progress=start[1], end=60, every_log=2, every_ckpt=4,
                   record=lambda i, p: {"value": c.value}, save=c.save, stop_after=stop_after)
    return c, out


def test_loop_resume_equals_uninterrupted(tmp_path):
    whole, out = _run(tmp_path / "whole")
    assert out == {"step": 20, "progress": 60, "done": True}
    part = tmp_path / "part"
    _run(part, stop_after=21)  # stops at step 7 (21 images) with a checkpoint there
    with open(part / "stats.jsonl", "a") as fh:  # a line logged after the checkpoint, then a torn one
        fh.write(json.dumps({"images": 27, "value": -1.0}) + "\n" + '{"images": 3')
    resumed, out2 = _run(part)
    assert out2["done"] and resumed.value == whole.value
    assert (part / "stats.jsonl").read_text() == (tmp_path / "whole" / "stats.jsonl").read_text()


def test_loop_logs_with_checkpoints_and_can_keep_quiet(tmp_path):
    """log_with_checkpoint adds a stats line at each checkpoint step; write_stats=False (a DDP worker)
    still calls record (it may all-reduce) but writes no line; a record that raises stops the run
    before that step's checkpoint (the DDPM trainer's divergence check)."""
    seen = []

    def run(folder, **kw):
        c = _Counter()
        return c, ResumableLoop(folder, checkpoint="ckpt.json", progress_key="images").run(
            c.step, end=30, every_log=3, every_ckpt=2, save=c.save,
            record=lambda i, p: seen.append(i) or {"value": c.value}, **kw)

    run(tmp_path / "a", log_with_checkpoint=True)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 3, 4, 6, 8, 9, 10] and seen == steps
    seen.clear()
    run(tmp_path / "b", write_stats=False)
    assert seen == [3, 6, 9, 10] and not (tmp_path / "b" / "stats.jsonl").exists()

    def diverge(i, p):
        if i == 6:
            raise RuntimeError("loss became nan")
        return {}

    c = _Counter()
    with pytest.raises(RuntimeError, match="nan"):
        ResumableLoop(tmp_path / "c", checkpoint="ckpt.json").run(c.step, end=30, every_log=3, every_ckpt=2,
                                                                  save=c.save, record=diverge)
    assert json.loads((tmp_path / "c" / "ckpt.json").read_text())["step"] == 4


def test_loop_refuses_a_foreign_checkpoint(tmp_path):
    (tmp_path / "checkpoint.pt").write_text("{}")
    with pytest.raises(ValueError, match="not a checkpoint"):
        ResumableLoop(tmp_path).resume(lambda p: json.loads(p.read_text()))


def test_science_packages_do_not_import_the_cli():
    """theory, sims and fullscale reach shared plumbing through dmrules.core, never through the CLI."""
    code = ("import importlib, pkgutil, sys\n"
            "for pkg in ('theory', 'sims', 'fullscale'):\n"
            "    m = importlib.import_module(pkg)\n"
            "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
            "        importlib.import_module(info.name)\n"
            "print(','.join(m for m in sys.modules if m.startswith(('dmrules.cli', 'dmrules.commands'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
