"""Fault injection, part 1 (issue 12): option fuzz generated from the parsers, OS errors injected at
the write layer, output checks before work, one writer per output, leftovers, closed pipes,
determinism of the data artefacts. No training here (tests/fullscale/test_faults_ddpm.py has that)."""

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmrules import results as R
from dmrules.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BAD_NUMBERS = ("nan", "NaN", "inf", "-inf", "1e999")


def _walk(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        elif action.option_strings and action.type is not None:
            yield path, action


def _numbers(value):
    """The numbers inside an option's parsed value (lists flattened; strings are not numbers)."""
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


OPTIONS = list(_walk(build_parser()))
IDS = [" ".join((*p, a.option_strings[-1])) for p, a in OPTIONS]


def _is_numeric(action) -> bool:
    """An option whose type turns "1" into a number (lists of names or task letters are not)."""
    try:
        return bool(_numbers(action.type("1")))
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return False


NUMERIC = [(p, a) for p, a in OPTIONS if _is_numeric(a)]
NUMERIC_IDS = [" ".join((*p, a.option_strings[-1])) for p, a in NUMERIC]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_fuzz_walks_every_command():
    commands = {p[0] for p, _ in OPTIONS}
    assert {"theory", "sims", "data", "evaluate", "train", "sample", "run", "classifier", "filter",
            "mitigate"} <= commands
    assert len(OPTIONS) > 60 and len(NUMERIC) > 40


@pytest.mark.parametrize("path, action", OPTIONS, ids=IDS)
def test_no_numeric_option_accepts_nan_inf_or_out_of_range(path, action):
    """Every typed option of every command: NaN / inf are refused by its type, and a negative value
    only passes where the type declares negative values valid (``bounds``)."""
    assert action.type not in (float, int), f"{' '.join(path)} {action.option_strings}: use dmrules.commands.number"
    for bad in BAD_NUMBERS:
        try:
            value = action.type(bad)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        for x in _numbers(value):
            assert x == x and abs(x) != float("inf"), (bad, value)
    try:
        value = action.type("-1")
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return
    lo = getattr(action.type, "bounds", (0,))[0]
    if any(x < 0 for x in _numbers(value)):
        assert lo is None or lo < 0, f"-1 accepted by {action.option_strings} without declared bounds"


@pytest.mark.parametrize("path, action", NUMERIC, ids=NUMERIC_IDS)
def test_bad_numbers_are_one_line_exit_2_before_any_work(path, action, run_cli, tmp_path):
    opt = action.option_strings[-1]
    for bad in ("nan", "inf"):
        rc, out, err = run_cli(*path, f"{opt}={bad}", "--out", tmp_path / "never")
        assert rc == 2, (path, opt, bad, out, err)
        line = _one_line(err)
        assert "error" in line and opt in line, line
    assert not (tmp_path / "never").exists()


# ---- outputs checked before work ------------------------------------------------------------------


@pytest.mark.parametrize("argv, kind", [
    (["theory", "bound", "--t", "0.1"], "file"),
    (["evaluate", "--task", "A", "IMAGES"], "file"),
    (["sims", "rules", "--preset", "quick"], "file"),
    (["data", "--task", "A", "--n", "4"], "dir"),
    (["train", "--task", "A", "--preset", "smoke"], "dir"),
    (["sample", "RUN"], "dir"),
    (["classifier", "train", "--task", "A", "--preset", "smoke"], "dir"),
    (["mitigate", "--tasks", "A", "--preset", "smoke"], "file"),
])
def test_unwritable_or_wrong_kind_outputs_fail_before_work(argv, kind, run_cli, tmp_path, monkeypatch):
    import numpy as np

    np.save(tmp_path / "imgs.npy", np.zeros((2, 32, 32, 3), np.uint8))
    argv = [str(tmp_path / "imgs.npy") if a == "IMAGES" else str(tmp_path) if a == "RUN" else a for a in argv]
    a_file = tmp_path / "plain"
    a_file.write_text("keep")
    a_dir = tmp_path / "folder.parquet"
    a_dir.mkdir()
    wrong = a_dir if kind == "file" else a_file
    cases = [(wrong, "is a directory" if kind == "file" else "is an existing file"),
             (a_file / ("x.parquet" if kind == "file" else "x"), "is a file, not a directory")]
    for out, msg in cases:
        rc, _, err = run_cli(*argv, "--out", out)
        assert rc == 2 and msg in _one_line(err), (argv, err)
    # read-only file system / permission denied (injected: CI runs as root, where chmod does not stop a write)
    for code in (errno.EROFS, errno.EACCES):
        def refuse(*a, code=code, **k):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(R, "_mkstemp", refuse)
        target = tmp_path / ("new.parquet" if kind == "file" else "new")
        rc, _, err = run_cli(*argv, "--out", target)
        assert rc == 2 and os.strerror(code) in _one_line(err) and "--out" in err, err
        assert not target.exists()
        monkeypatch.undo()
    assert a_file.read_text() == "keep"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EIO])
def test_os_errors_at_the_write_layer_are_one_line_and_keep_the_old_file(code, run_cli, tmp_path, monkeypatch):
    out = tmp_path / "b.parquet"
    assert run_cli("theory", "bound", "--t", "0.5", "--out", out)[0] == 0
    before = out.read_bytes()

    def fail(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(R, "_replace", fail)
    rc, _, err = run_cli("theory", "bound", "--t", "0.1", "--out", out)
    line = _one_line(err)
    assert rc == 1 and f"cannot write {out}" in line and os.strerror(code) in line, line
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file, no lock file


def test_a_full_disk_mid_data_set_loses_nothing_and_a_rerun_completes(run_cli, tmp_path, monkeypatch):
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert run_cli("data", "--task", "B", "--n", "6", "--out", ref)[0] == 0
    real, calls = os.replace, []

    def full_after_one(src, dst):
        calls.append(dst)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, dst)

    monkeypatch.setattr(R, "_replace", full_after_one)
    rc, _, err = run_cli("data", "--task", "B", "--n", "6", "--out", out)
    assert rc == 1 and "No space left on device" in _one_line(err)
    assert not (out / "meta.json").exists()  # the set is not marked complete
    monkeypatch.undo()
    assert run_cli("data", "--task", "B", "--n", "6", "--out", out)[0] == 0
    for name in ("images.npy", "features.parquet", "meta.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


@pytest.mark.parametrize("case", ["EISDIR", "EEXIST", "ENOTDIR"])
def test_write_layer_maps_real_os_errors_to_write_error(case, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    target = {"EISDIR": tmp_path / "d", "EEXIST": tmp_path / "f" / "sub" / "x.json",
              "ENOTDIR": tmp_path / "f" / "x.json"}[case]
    with pytest.raises(R.WriteError, match=f"cannot write {target}"):
        R.write_json(target, {"a": 1})
    assert (tmp_path / "f").read_text() == "x" and (tmp_path / "d").is_dir()


# ---- corrupt state, leftovers ---------------------------------------------------------------------


def test_truncated_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"config": {"task": ')
    with pytest.raises(ValueError, match=str(path)):
        R.read_json(path, "run config")
    assert path.read_text() == '{"config": {"task": '  # left in place


def test_a_truncated_table_names_the_file(tmp_path):
    import pandas as pd

    path = tmp_path / "t.parquet"
    R.write_table(pd.DataFrame({"a": [1, 2]}), path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"{path} is not a readable parquet table"):
        R.read_table(path)


def test_truncated_or_empty_torch_files_are_one_sentence(tmp_path):
    import torch

    good = tmp_path / "good.pt"
    R.torch_save({"a": torch.arange(100.0), "b": torch.zeros(3000)}, good)
    data = good.read_bytes()
    cuts = [(f"cut{k}.pt", data[:k]) for k in (1, 200, 5000, len(data) // 2, len(data) - 10)]
    for name, data in (("empty.pt", b""), *cuts, ("junk.pt", b"junk" * 50)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"{tmp_path / name} is not a readable checkpoint"):
            R.torch_load(tmp_path / name)
        assert (tmp_path / name).read_bytes() == data
    with pytest.raises(ValueError, match="no c"):
        R.torch_load(good, keys=("a", "c"))


def test_torch_load_interns_keys_and_keeps_state_dict_metadata(tmp_path):
    """Keys come back interned (a stop and resume then writes the same checkpoint bytes as an
    uninterrupted run) and nothing else changes: values, key order, a state_dict's _metadata."""
    import sys

    import torch

    bn = torch.nn.BatchNorm1d(3)
    opt = torch.optim.Adam(bn.parameters())
    bn(torch.randn(4, 3)).sum().backward()
    opt.step()
    obj = {"model": bn.state_dict(), "opt": opt.state_dict(), "step": 7, "names": ["a", "b"]}
    R.torch_save(obj, tmp_path / "c.pt")
    got = R.torch_load(tmp_path / "c.pt", keys=("model", "opt"))
    for st in got["opt"]["state"].values():
        assert all(k is sys.intern(k) for k in st)
    assert list(got["model"]) == list(obj["model"]) and got["model"]._metadata == obj["model"]._metadata
    assert all(torch.equal(got["model"][k], v) for k, v in obj["model"].items())
    assert got["opt"]["param_groups"] == obj["opt"]["param_groups"] and got["step"] == 7 and got["names"] == ["a", "b"]


def test_a_full_disk_during_torch_save_names_the_cause_and_keeps_the_old_file(tmp_path, monkeypatch):
    """torch.save reports a failed write as a RuntimeError ("file write failed"); the write layer
    recovers the OSError behind it."""
    import torch

    path = tmp_path / "checkpoint.pt"
    R.torch_save({"a": torch.arange(10.0)}, path)
    before = path.read_bytes()

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(R._Recorder, "write", full)
    with pytest.raises(R.WriteError, match=f"cannot write {path}: No space left on device"):
        R.torch_save({"a": torch.arange(1e5)}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_temp_files_of_a_killed_write_are_cleaned_on_the_next_start(run_cli, tmp_path):
    out = tmp_path / "d"
    assert run_cli("data", "--task", "A", "--n", "4", "--out", out)[0] == 0
    leftover = out / ".images.npy.ab12cd_9.tmp"
    leftover.write_bytes(b"half")
    keep = out / ".notes.tmp"  # not one of ours: kept
    keep.write_text("mine")
    (out / "meta.json").unlink()
    assert run_cli("data", "--task", "A", "--n", "4", "--out", out)[0] == 0
    assert not leftover.exists() and keep.exists()


def test_cleaning_leaves_a_nested_output_alone(tmp_path):
    """train cleans RUN and RUN/data, not RUN/s: that may be a live `sample RUN --out RUN/s`'s."""
    (tmp_path / "data").mkdir()
    (tmp_path / "s").mkdir()
    mine = [tmp_path / ".checkpoint.pt.ab12cd34.tmp", tmp_path / "data" / ".images.npy.zz99yy88.tmp"]
    other = tmp_path / "s" / ".images.npy.qq11ww22.tmp"
    for p in (*mine, other):
        p.write_bytes(b"x")
    assert R.clean_temps(tmp_path, also=("data",)) == 2
    assert other.exists() and not any(p.exists() for p in mine)


def test_truncated_images_are_rendered_again(run_cli, tmp_path):
    out = tmp_path / "d"
    assert run_cli("data", "--task", "C", "--n", "5", "--out", out)[0] == 0
    good = (out / "images.npy").read_bytes()
    (out / "images.npy").write_bytes(good[: len(good) // 2])
    rc, stdout, _ = run_cli("data", "--task", "C", "--n", "5", "--out", out)
    assert rc == 0 and "rendering it again" in stdout and (out / "images.npy").read_bytes() == good


def test_data_same_seed_same_bytes(run_cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_cli("data", "--task", "D", "--n", "5", "--seed", "3", "--out", out, "--png")[0] == 0
    names = ["images.npy", "features.parquet", "meta.json", *(f"png/{i:06d}.png" for i in range(5))]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    prov = json.loads((a / "provenance.json").read_text())
    assert {"commit", "device", "created", "command"} <= set(prov)


def test_mitigate_run_must_exist(run_cli, tmp_path):
    missing = tmp_path / "nonexistent"
    rc, _, err = run_cli("mitigate", "--tasks", "A", "--preset", "smoke", "--run", missing,
                         "--out", tmp_path / "m.parquet")
    assert rc == 2 and "is not a DDPM run" in _one_line(err) and not missing.exists()


def test_bare_groups_are_one_line_on_stderr(run_cli):
    for group in ("theory", "sims", "classifier"):
        rc, out, err = run_cli(group)
        assert rc == 2 and not out and "choose an action" in _one_line(err)
    rc, out, _ = run_cli()
    assert rc == 0 and "COMMAND" in out


# ---- one writer per output, closed pipes ----------------------------------------------------------


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_a_second_writer_is_refused_and_the_lock_dies_with_its_process(run_cli, tmp_path):
    out = tmp_path / "t.parquet"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dmrules import results as R\n"
         f"with R.lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, _, err = run_cli("theory", "bound", "--t", "0.1", "--out", out)
        line = _one_line(err)
        assert rc == 2 and f"in use by another dmrules process (pid {holder.pid})" in line, line
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run_cli("theory", "bound", "--t", "0.1", "--out", out)[0] == 0  # the kernel dropped the lock
    assert not R.lock_file_of(out).exists()  # and the next holder removed the file on release


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with R.lock(tmp_path / "x"):
        with R.lock(tmp_path / "x"):
            pass
        assert R.lock_file_of(tmp_path / "x").exists()
    assert not R.lock_file_of(tmp_path / "x").exists()


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dmrules", "theory", "bound", "--t", "0.1,0.2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path)
    proc.stdout.close()  # like `| head` that has read enough
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_workers_die_with_their_launcher(tmp_path):
    """torchrun workers call runtime.die_with_parent(): after kill -9 of the launcher they stop."""
    child = ("import time; from fullscale.runtime import die_with_parent; assert die_with_parent(); "
             "print('armed', flush=True); time.sleep(120)")
    launcher = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]]); "
                "print(p.pid, flush=True); p.wait()")
    proc = subprocess.Popen([sys.executable, "-c", launcher, child], stdout=subprocess.PIPE, text=True, env=_env())
    pid = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "armed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:  # gone, or a zombie waiting for init to reap it
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                break
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the worker outlived its launcher")
