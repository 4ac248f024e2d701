"""The fullscale benchmark runs end to end (tiny sizes; no timings are asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_fullscale_writes_a_table(tmp_path):
    from dmrules import results as R

    out = tmp_path / "bench.parquet"
    proc = subprocess.run([sys.executable, "benchmarks/bench_fullscale.py", "--device", "cpu", "--seconds", "0.1",
                           "--ref-images", "32", "--ref-workers", "0", "--sample-batch", "4", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = R.read_table(out)
    assert set(df.loop) == {"ours", "reference"} and set(df.phase) == {"train", "sample"}
    assert (df.img_per_s > 0).all() and (df.flop_per_img > 0).all()
    assert df.attrs["provenance"]["device"].startswith("cpu")
    assert "speedup_vs_reference" in proc.stdout
