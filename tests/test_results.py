"""Atomic writes and provenance of result tables."""

import pandas as pd
import pytest

from dmrules import results as R


def test_write_table_roundtrip_with_provenance(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    path = R.write_table(df, tmp_path / "t.parquet", R.provenance(config={"x": 1}, command="dmrules test"))
    back = R.read_table(path)
    pd.testing.assert_frame_equal(back, df)
    prov = back.attrs["provenance"]
    assert prov["command"] == "dmrules test" and prov["config"] == {"x": 1}
    assert {"commit", "device", "created"} <= set(prov)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    R.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with R.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert not list(tmp_path.glob(".*tmp"))


def test_config_hash_is_order_independent():
    assert R.config_hash({"a": 1, "b": 2}) == R.config_hash({"b": 2, "a": 1})
    assert R.config_hash({"a": 1}) != R.config_hash({"a": 2})
