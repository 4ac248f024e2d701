"""Issue 12's case list, run for real as a user (and a hostile one) would: one shell command per case,
in a fresh folder, with the expected and the observed outcome. Not part of pytest (it takes minutes and,
for the real read-only / full-disk / permission-denied cases, root with ``mount`` and ``setpriv``);
tests/test_faults.py and tests/fullscale/test_faults_ddpm.py check the same classes fast, with OS errors
injected at the write layer.

    .venv/bin/python tests/fault_cases.py --out reports/results/fault_cases.parquet --md docs/reliability.md

Each case: a bash command (``$D`` = dmrules, ``$C`` = --device cpu --threads 1), the expected exit code,
a text the output must hold (and one it must not), and an optional check run afterwards (files left
as they were, nothing created, ...). A failing exit code is expected to come with exactly one line on
stderr and no traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SM = "--n 4 --sampler ddim --steps 2 --no-png $C"
TR = "train --task A --preset smoke $C"
SLOW_SAMPLE = "--n 6 --batch 1 --sampler ddim --steps 30 --no-png $C"


@dataclass
class Case:
    cls: str  # the class (1-8)
    what: str
    cmd: str
    rc: int | str = 2  # an exit code, or "nonzero"
    has: str = ""  # text the output (stderr, else stdout) must contain
    lacks: str = ""  # text it must not contain
    post: str = ""  # a bash check that must succeed afterwards
    needs: str = ""  # "root-mount" / "setpriv": skipped (and said so) where unavailable


def _cases() -> list[Case]:
    c = []
    # 1. non-finite or out-of-range values: refused before any work, nothing created
    for flag, v in [("--ema-halflife-kimg", "nan"), ("--ema-halflife-kimg", "-1"), ("--ema-halflife-kimg", "inf"),
                    ("--warmup-kimg", "nan"), ("--warmup-kimg", "-1"), ("--lr", "nan"), ("--epochs", "inf"),
                    ("--seed", "-1"), ("--ckpt-every-kimg", "0"), ("--sample-eta", "nan")]:
        c.append(Case("1", f"train {flag} {v}", f"$D {TR} {flag}={v} --out n1", has=flag, post="test ! -e n1"))
    for flag, v in [("--eta", "nan"), ("--eta", "5"), ("--eta", "-1"), ("--steps", "1000"), ("--n", "0"),
                    ("--seed", "-1")]:
        c.append(Case("1", f"sample {flag} {v}", f"$D sample R {SM} {flag}={v} --out n2", has=flag,
                      post="test ! -e n2"))
    c += [
        Case("1", "guided sample --scale nan", f"$D sample R {SM} --guide CA --scale=nan --out n3", has="--scale",
             post="test ! -e n3"),
        Case("1", "filter --min-prob nan", "$D filter --task A --classifier CAc S --min-prob=nan --out n4 --device cpu",
             has="--min-prob", post="test ! -e n4"),
        Case("1", "classifier train --lr inf", "$D classifier train --task A --preset smoke --lr=inf --out n5",
             has="--lr", post="test ! -e n5"),
        Case("1", "sims fl --snrs nan", "$D sims fl --snrs=nan --out n6.parquet", has="--snrs",
             post="test ! -e n6.parquet"),
        Case("1", "sims rules --lr -1", "$D sims rules --lr=-1 --out n7.parquet", has="--lr"),
        Case("1", "theory bound --t inf", "$D theory bound --t=inf --out n8.parquet", has="--t"),
        Case("1", "theory score --mu-norm nan", "$D theory score --dist fl --mu-norm=nan", has="--mu-norm"),
        Case("1", "data --n nan", "$D data --task A --n=nan --out n9", has="--n", post="test ! -e n9"),
        Case("1", "mitigate --arms constant:nan", "$D mitigate --tasks A --preset smoke --arms constant:nan "
             "--out n10.parquet", has="--arms", post="test ! -e n10.parquet"),
        Case("1", "mitigate --n -4", "$D mitigate --tasks A --preset smoke --n=-4 --out n11.parquet", has="--n"),
        Case("1", "evaluate --trim nan", "$D evaluate --task A S --trim=nan", has="--trim"),
    ]
    # 2. sampling (and filter, guidance, mitigate) check what they use
    c += [
        Case("2", "Task B checkpoint in a Task A run: sample", f"cp -r R X1 && cp RB/checkpoint.pt X1/ && "
             f"$D sample X1 {SM} --out X1/s", has="trained with another config than X1/config.json (task", post="test ! -e X1/s"),
        Case("2", "Task B checkpoint in a Task A run: train", f"$D {TR} --out X1", has="another config"),
        Case("2", "checkpoint of another --lr: sample", f"cp -r R X2 && cp RLR/checkpoint.pt X2/ && "
             f"$D sample X2 {SM} --out X2/s", has="lr 0.0005 -> 0.001"),
        Case("2", "checkpoint of another architecture: sample", f"cp -r R X3 && cp RP2/checkpoint.pt X3/ && "
             f"$D sample X3 {SM} --out X3/s", has="model 'unet-small-p2' -> 'unet-small'"),
        Case("2", "Task B checkpoint in a Task A run: mitigate --run", "$D mitigate --tasks A --preset smoke --run X1 "
             "--work W --out m.parquet --device cpu", has="trained with another config", post="test ! -e W"),
        Case("2", "swapped classifier.pt: guided sample", f"cp -r CA K1 && cp CB/classifier.pt K1/ && "
             f"$D sample R {SM} --guide K1 --out g1", has="another config", post="test ! -e g1"),
        Case("2", "swapped classifier.pt: filter", "cp -r CAc K2 && cp CA/classifier.pt K2/ && "
             "$D filter --task A --classifier K2 S --out f1 --device cpu", has="another config", post="test ! -e f1"),
        Case("2", "guide of another task", f"$D sample R {SM} --guide CB --out g2", has="classifier for Task B"),
    ]
    # 3. sample sets record the weights they came from
    kill_train = ("($D train --task A --preset smoke --epochs 30 --out {r} $C >/dev/null 2>&1 & P=$!; "
                  "while [ ! -e {r}/checkpoint.pt ]; do sleep 0.02; done; kill -9 $P; wait $P 2>/dev/null) ; ")
    c += [
        Case("3", "sample killed after its first part, training continues, same sample re-run",
             kill_train.format(r="R3")
             + f"($D sample R3 {SLOW_SAMPLE} --out S3 >/dev/null 2>&1 & Q=$!; "
             "until ls S3/parts-*/part-* >/dev/null 2>&1; do sleep 0.01; done; kill -9 $Q; wait $Q 2>/dev/null) ; "
             "$D train --task A --preset smoke --epochs 30 --out R3 $C >/dev/null && "
             f"$D sample R3 {SLOW_SAMPLE} --out S3",
             rc=0, has="discarding", lacks="resuming",
             post=f"$D sample R3 {SLOW_SAMPLE} --batch 6 --out S3b >/dev/null && cmp S3/images.npy S3b/images.npy"),
        Case("3", "finished sample, training continues, same sample re-run",
             kill_train.format(r="R4") + f"$D sample R4 {SM} --out S4 >/dev/null && cp S4/images.npy keep4.npy && "
             "$D train --task A --preset smoke --epochs 30 --out R4 $C >/dev/null && "
             f"$D sample R4 {SM} --out S4", has="its checkpoint is now at", post="cmp S4/images.npy keep4.npy"),
        Case("3", "same sample, same weights: skipped", f"$D sample R {SM} --out S", rc=0, has="skipped"),
        Case("3", "images.npy without meta.json in --out", f"mkdir F1 && cp S/images.npy F1/ && "
             f"$D sample R {SM} --seed 5 --out F1", has="not written by `dmrules sample`",
             post="cmp S/images.npy F1/images.npy"),
    ]
    # 4. file-system faults: checked before the work, one line, nothing lost
    dir_out = {"data": "$D data --task A --n 4", "train": f"$D {TR}", "run": "$D run --task A --preset smoke $C",
               "sample": f"$D sample R {SM}", "classifier train": "$D classifier train --task A --preset smoke",
               "filter": "$D filter --task A --classifier CAc S --device cpu"}
    file_out = {"theory bound": "$D theory bound --t 0.1", "sims rules": "$D sims rules",
                "evaluate": "$D evaluate --task A S", "classifier sweep": "$D classifier sweep --preset smoke",
                "mitigate": "$D mitigate --tasks A --preset smoke"}
    for name, cmd in dir_out.items():
        c.append(Case("4", f"{name} --out an existing file", f"echo keep > ef && {cmd} --out ef",
                      has="is an existing file", post="grep -q keep ef"))
    for name, cmd in file_out.items():
        c.append(Case("4", f"{name} --out a directory named .parquet", f"mkdir -p dd.parquet && {cmd} --out dd.parquet",
                      has="is a directory"))
    for name, cmd in (("data", dir_out["data"]), ("train", dir_out["train"]), ("theory bound", file_out["theory bound"])):
        out = "ef/x.parquet" if name == "theory bound" else "ef/x"
        c.append(Case("4", f"{name} --out below a file", f"echo keep > ef && {cmd} --out {out}",
                      has="is a file, not a directory"))
    for name, cmd, out in (("theory bound", file_out["theory bound"], "ro/x.parquet"),
                           ("evaluate", file_out["evaluate"], "ro/e.parquet"), ("data", dir_out["data"], "ro/d"),
                           ("train", dir_out["train"], "ro/r"), ("sample", dir_out["sample"], "ro/s")):
        c.append(Case("4", f"{name} --out on a read-only file system", f"{cmd} --out {out}",
                      has="Read-only file system", needs="root-mount"))
    eacces = "setpriv --bounding-set=-dac_override,-dac_read_search"
    for name, cmd, out in (("theory bound", file_out["theory bound"], "locked/x.parquet"),
                           ("data", dir_out["data"], "locked/d"), ("train", dir_out["train"], "locked/r")):
        c.append(Case("4", f"{name} --out permission denied (root without CAP_DAC_OVERRIDE)",
                      f"mkdir -p locked && chown 12345 locked && chmod 755 locked && "
                      f"{eacces} {cmd.replace('$D', '$PY -m dmrules')} --out {out}",
                      has="Permission denied", post="test -z \"$(ls -A locked)\"", needs="setpriv"))
    c += [
        Case("4", "train on a full disk (a 256 KiB file system)", f"$D {TR} --out full/r", rc=1,
             has="No space left on device", post="test -z \"$(find full -name '.*.tmp')\"", needs="root-mount"),
        Case("4", "data on a full disk: not marked complete, no temp file", "$D data --task A --n 200 --out full/d", rc=1,
             has="No space left on device", post="test ! -e full/d/meta.json && test -z \"$(find full -name '.*.tmp')\"",
             needs="root-mount"),
    ]
    # 5. corrupt state: one line naming the file and what to do, file left in place
    c += [
        Case("5", "zero-byte checkpoint.pt: train", f"cp -r R Z1 && : > Z1/checkpoint.pt && $D {TR} --out Z1",
             has="Z1/checkpoint.pt is not a readable DDPM checkpoint (empty)", post="test -e Z1/checkpoint.pt"),
        Case("5", "zero-byte checkpoint.pt: sample", f"$D sample Z1 {SM} --out Z1/s", has="move it away"),
        Case("5", "truncated checkpoint.pt: train", f"cp -r R Z2 && head -c 5000 R/checkpoint.pt > Z2/checkpoint.pt && "
             f"$D {TR} --out Z2", has="truncated or corrupt", post="test $(stat -c %s Z2/checkpoint.pt) = 5000"),
        Case("5", "truncated checkpoint.pt: sample", f"$D sample Z2 {SM} --out Z2/s", has="truncated or corrupt"),
        Case("5", "truncated classifier.pt: classifier train resumes", "cp -r CA K3 && head -c 300 CA/classifier.pt > "
             "K3/classifier.pt && rm K3/metrics.json && $D classifier train --task A --arch mlp --noisy --preset smoke "
             "--steps 2 --out K3 --device cpu", has="K3/classifier.pt is not a readable classifier checkpoint"),
        Case("5", "truncated classifier.pt: guided sample", f"$D sample R {SM} --guide K3 --out g3",
             has="K3/classifier.pt"),
        Case("5", "truncated config.json: train", f"cp -r R Z3 && head -c 30 R/config.json > Z3/config.json && "
             f"$D {TR} --out Z3", has="Z3/config.json"),
        Case("5", "truncated config.json: sample", f"$D sample Z3 {SM} --out Z3/s", has="Z3/config.json"),
        Case("5", "truncated sample meta.json", f"cp -r S S5 && head -c 20 S/meta.json > S5/meta.json && "
             f"$D sample R {SM} --out S5", has="S5/meta.json is not a readable"),
        Case("5", "truncated data meta.json", "$D data --task A --n 4 --out D5 >/dev/null && head -c 9 D5/meta.json > m "
             "&& mv m D5/meta.json && $D data --task A --n 4 --out D5", has="D5/meta.json is not a readable"),
    ]
    # 6. one writer per run; torchrun workers die with their launcher
    c += [
        Case("6", "two train processes on one run", f"($D {TR} --epochs 40 --out T2 >/dev/null 2>&1 & P=$!; "
             f"while [ ! -e T2/checkpoint.pt ]; do sleep 0.02; done; $D {TR} --epochs 40 --out T2; rc=$?; "
             "kill -9 $P; wait $P 2>/dev/null; exit $rc)", has="in use by another dmrules process"),
        Case("6", "the killed writer's run resumes", f"$D {TR} --epochs 40 --out T2", rc=0, has="resuming"),
        Case("6", "two sample processes on one folder", f"($D sample R {SLOW_SAMPLE} --out T3 >/dev/null 2>&1 & P=$!; "
             "until ls T3/parts-* >/dev/null 2>&1; do sleep 0.01; done; "
             f"$D sample R {SLOW_SAMPLE} --out T3; rc=$?; kill -9 $P; wait $P 2>/dev/null; exit $rc)",
             has="in use by another dmrules process"),
        Case("6", "kill -9 of a torchrun launcher: its workers stop",
             "($PY -m torch.distributed.run --standalone --nproc_per_node=2 -m dmrules train --task A --preset smoke "
             "--epochs 400 --device cpu --threads 1 --out TR >/dev/null 2>&1 & L=$!; "
             "while [ ! -e TR/checkpoint.pt ]; do sleep 0.05; done; W=$(pgrep -P $L | tr '\\n' ' '); kill -9 $L; "
             "for i in $(seq 100); do alive=0; for w in $W; do kill -0 $w 2>/dev/null && alive=1; done; "
             "[ $alive = 0 ] && break; sleep 0.1; done; echo workers $W alive $alive; exit $alive)",
             rc=0, has="alive 0"),
    ]
    # 7. leftovers and overreach
    c += [
        Case("7", "temp file of a killed checkpoint write: removed on the next start",
             f"cp -r R L1 && echo x > L1/.checkpoint.pt.abcd1234.tmp && $D {TR} --out L1", rc=0,
             has="removed 1 temporary file", post="test ! -e L1/.checkpoint.pt.abcd1234.tmp"),
        Case("7", "mitigate --run /nonexistent", "$D mitigate --tasks A --preset smoke --run /nonexistent-dmrules "
             "--out m7.parquet", has="is not a DDPM run", post="test ! -e /nonexistent-dmrules"),
        Case("7", "data re-run over a truncated images.npy", "$D data --task A --n 6 --out D7 >/dev/null && "
             "cp D7/images.npy ref7.npy && head -c 4000 ref7.npy > D7/images.npy && $D data --task A --n 6 --out D7",
             rc=0, has="rendering it again", post="cmp D7/images.npy ref7.npy"),
        Case("7", "dmrules ... --json into a closed pipe", "$D theory bound --t 0.1 --json 2>err7 | true; "
             "cat err7", rc=0, lacks="Traceback"),
        Case("7", "dmrules theory (no action)", "$D theory 2>err8 >out8; rc=$?; cat err8 >&2; test ! -s out8 && exit $rc",
             has="choose an action"),
    ]
    # kills at random points: the resumed result equals an uninterrupted one, byte for byte
    rnd = "sleep 0.$((RANDOM % 10))$((RANDOM % 10))"
    c += [
        Case("6", "train killed at a random point, then resumed", f"$D {TR} --epochs 12 --out KT0 >/dev/null && "
             f"($D {TR} --epochs 12 --out KT1 >/dev/null 2>&1 & P=$!; until [ -e KT1/config.json ]; do sleep 0.01; done; "
             f"{rnd}; kill -9 $P; wait $P 2>/dev/null); $D {TR} --epochs 12 --out KT1 >/dev/null && "
             "cmp KT0/checkpoint.pt KT1/checkpoint.pt && echo identical", rc=0, has="identical"),
        Case("6", "classifier train killed at a random point, then resumed",
             "A='classifier train --task A --arch mlp --clean --preset smoke --steps 40 --device cpu'; "
             "$D $A --out Q0 >/dev/null && ($D $A --out Q1 >/dev/null 2>&1 & P=$!; "
             f"until [ -e Q1/config.json ]; do sleep 0.01; done; {rnd}; kill -9 $P; wait $P 2>/dev/null); "
             "$D $A --out Q1 >/dev/null && cmp Q0/classifier.pt Q1/classifier.pt && echo identical", rc=0,
             has="identical"),
        Case("6", "sims sweep killed at a random point, then resumed",
             "A='sims rules --widths 5,10 --ns 16 --steps 100 --networks patchwise,joint --activations quadratic "
             "--seeds 0 --n-eval 32'; $D $A --out w0.parquet >/dev/null && ($D $A --out w1.parquet >/dev/null 2>&1 & "
             f"P=$!; until ls .w1.parquet.parts-* >/dev/null 2>&1; do sleep 0.01; done; {rnd}; kill -9 $P; "
             "wait $P 2>/dev/null); $D $A --out w1.parquet >/dev/null && $PY -c \"import sys; "
             "from dmrules.results import read_table as r; sys.exit(0 if r('w0.parquet').equals(r('w1.parquet')) "
             "else 1)\" && echo identical", rc=0, has="identical"),
        Case("4", "theory bound on a full disk keeps the earlier table", "$D theory bound --t 0.1 --out full/b.parquet "
             ">/dev/null && (dd if=/dev/zero of=full/filler bs=4k >/dev/null 2>&1; "
             "$D theory bound --t 0.2 --out full/b.parquet; rc=$?; rm -f full/filler; exit $rc)", rc=1, has="No space left on device", post="$PY -c \"from dmrules.results import read_table as r; "
             "assert r('full/b.parquet').t.tolist() == [0.1]\"", needs="root-mount"),
        Case("4", "run --export to a read-only file system", "$D run --task A --preset smoke $C --out R --export ro/x",
             has="Read-only file system", needs="root-mount"),
    ]
    # 8. determinism as documented
    c += [
        Case("8", "data twice: same bytes", "$D data --task B --n 8 --seed 3 --out A8 --png >/dev/null && "
             "$D data --task B --n 8 --seed 3 --out B8 --png >/dev/null && "
             "for f in images.npy features.parquet meta.json png/000007.png; do cmp A8/$f B8/$f || exit 1; done; "
             "echo identical", rc=0, has="identical"),
        Case("8", "identical training runs: byte-identical checkpoints", f"$D {TR} --out P1 >/dev/null && "
             f"$D {TR} --out P2 >/dev/null && cmp P1/checkpoint.pt P2/checkpoint.pt && echo identical", rc=0,
             has="identical"),
    ]
    return c


SETUP = f"""
$D {TR} --out R
$D train --task B --preset smoke $C --out RB
$D {TR} --lr 5e-4 --out RLR
$D {TR.replace('--preset smoke', '--model unet-small-p2 --preset smoke')} --out RP2
$D classifier train --task A --arch mlp --noisy --preset smoke --steps 2 --out CA --device cpu
$D classifier train --task B --arch mlp --noisy --preset smoke --steps 2 --out CB --device cpu
$D classifier train --task A --arch mlp --clean --preset smoke --steps 2 --out CAc --device cpu
$D sample R {SM} --out S
"""


def _bash(cmd: str, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _mounts(work: Path) -> bool:
    """A read-only file system at WORK/ro and a 256 KiB one at WORK/full (root only)."""
    (work / "ro").mkdir()
    (work / "full").mkdir()
    cmds = [["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(work / "ro")],
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(work / "full")]]
    return all(subprocess.run(c, capture_output=True).returncode == 0 for c in cmds)


def run_cases(work: Path, only: str | None = None, log=print):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PY": sys.executable,
           "D": f"{sys.executable} -m dmrules", "C": "--device cpu --threads 1"}
    for line in SETUP.strip().splitlines():
        p = _bash(line, work, env)
        if p.returncode != 0:
            raise SystemExit(f"set-up failed: {line}\n{p.stderr[-2000:]}")
    mounted = _mounts(work)
    have_setpriv = shutil.which("setpriv") is not None and os.geteuid() == 0
    rows = []
    try:
        for i, case in enumerate(_cases(), 1):
            if only and only not in case.what:
                continue
            expected = f"exit {case.rc}" + (f', "{case.has}"' if case.has else "") + (
                f', no "{case.lacks}"' if case.lacks else "") + (f"; then `{case.post}`" if case.post else "")
            row = {"id": i, "class": case.cls, "case": case.what, "command": case.cmd, "expected": expected}
            if (case.needs == "root-mount" and not mounted) or (case.needs == "setpriv" and not have_setpriv):
                rows.append({**row, "observed": f"skipped: needs {case.needs}", "passed": None, "seconds": 0.0})
                continue
            t0 = time.perf_counter()
            p = _bash(case.cmd, work, env)
            secs = time.perf_counter() - t0
            text = p.stderr.strip() if p.returncode != 0 else (p.stdout + p.stderr).strip()
            lines = [ln for ln in text.splitlines() if ln.strip()]
            shown = (lines[0] if p.returncode != 0 and lines else next((ln for ln in lines if case.has and case.has in ln),
                                                                       lines[-1] if lines else ""))
            ok_rc = p.returncode != 0 if case.rc == "nonzero" else p.returncode == case.rc
            one_line = p.returncode == 0 or (len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr)
            ok = (ok_rc and one_line and (not case.has or case.has in text)
                  and (not case.lacks or case.lacks not in p.stdout + p.stderr))
            post_ok = True
            if case.post:
                post_ok = _bash(case.post, work, env).returncode == 0
            observed = f"exit {p.returncode}, {len(p.stderr.strip().splitlines())} stderr line(s): {shown[:200]}"
            if case.post:
                observed += f"; check {'ok' if post_ok else 'FAILED'}"
            rows.append({**row, "observed": observed, "passed": bool(ok and post_ok), "seconds": round(secs, 2)})
            log(f"[{'PASS' if ok and post_ok else 'FAIL'}] {i:3d} class {case.cls}: {case.what}: {observed}")
    finally:
        for m in ("ro", "full"):
            subprocess.run(["umount", str(work / m)], capture_output=True)
    return rows


def markdown(rows) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| # | class | case | command | expected | observed | pass |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "skipped" if r["passed"] is None else ("yes" if r["passed"] else "**NO**")
        out.append(f"| {r['id']} | {r['class']} | {esc(r['case'])} | `{esc(r['command'])}` | {esc(r['expected'])} | "
                   f"{esc(r['observed'])} | {mark} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the cases as a parquet table (with provenance)")
    ap.add_argument("--md", help="replace the generated case table in this markdown file (between markers)")
    ap.add_argument("--only", help="run only cases whose description contains this text")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from dmrules import results as R

    work = Path(tempfile.mkdtemp(prefix="dmrules-faults-"))
    t0 = time.perf_counter()
    try:
        rows = run_cases(work, args.only)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    run = df[df.passed.notna()]
    summary = f"{int(run.passed.sum())} of {len(run)} cases pass ({len(df) - len(run)} skipped), {wall:.0f} s"
    print(summary)
    if args.out:
        R.write_table(df, args.out, R.provenance(config={"cases": len(df)}, wall_time_s=wall, summary=summary))
    if args.md:
        path = Path(args.md)
        text = path.read_text()
        start, end = "<!-- fault-cases:start -->", "<!-- fault-cases:end -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        prov = R.provenance(wall_time_s=wall)
        body = (f"{start}\n{summary}; commit {prov['commit']}, {prov['device']}, {prov['created']} "
                f"(`{' '.join(['python tests/fault_cases.py', *(argv or sys.argv[1:])])}`).\n\n{markdown(rows)}\n{end}")
        R.write_text(path, head + body + tail)
    return 0 if run.passed.all() else 1


if __name__ == "__main__":
    sys.exit(main())
