"""`dmrules theory score | bound | check`: keys, tables, one-line errors with exit 2."""

import json

import pytest

from dmrules.results import read_table


def test_bound_json_keys_and_values(run_cli):
    rc, out, err = run_cli("theory", "bound", "--t", "0.05,0.1,1", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["t"] for r in rows] == [0.05, 0.1, 1.0]
    for r in rows:
        assert {"t", "bound", "bound_scaled"} <= set(r)
        assert r["bound"] == pytest.approx(r["bound_scaled"] * r["target"] ** 2, rel=1e-12)
    assert rows[0]["bound"] == pytest.approx(4.122, rel=1e-3)  # L_0.05, uniform zeta (ψ units)


def test_bound_table_with_mc_and_degrees(run_cli, tmp_path):
    out = tmp_path / "b.parquet"
    rc, text, err = run_cli("theory", "bound", "--t", "0.1,1", "--zeta", "0.2,0.5,0.8", "--degrees", "1,3",
                            "--mc", "20000", "--out", out)
    assert rc == 0, err
    df = read_table(out)
    assert {"bound_deg1", "bound_deg3_scaled", "bound_mc", "bound_mc_se", "dsm_gap"} <= set(df.columns)
    assert (df["dsm_gap"] > 0).all() and df.attrs["provenance"]["config"]["zeta"] == "0.2,0.5,0.8"
    assert "bound_scaled" in text


def test_score_table(run_cli, tmp_path):
    out = tmp_path / "s.parquet"
    rc, text, err = run_cli("theory", "score", "--dist", "fl", "--d", "4", "--n", "4", "--t", "0.2,1", "--mc", "20000",
                            "--json", "--out", out)
    assert rc == 0, err
    rows = json.loads(text)
    assert {r["reference"] for r in rows} == {"autograd", "monte_carlo"} and len(rows) == 4
    assert all(r["passed"] for r in rows)
    assert len(read_table(out)) == 4


@pytest.mark.parametrize("argv, match", [
    (["theory", "bound", "--t", "-1"], "OU time"),
    (["theory", "bound", "--t", "0"], "OU time"),
    (["theory", "bound", "--t", "abc"], "comma-separated"),
    (["theory", "bound", "--zeta", "gauss"], "unknown zeta law"),
    (["theory", "bound", "--zeta", "0.5,2"], r"\[0, 1\]"),
    (["theory", "bound", "--mc", "1"], "--mc"),
    (["theory", "bound", "--degrees", "-1"], "degree"),
    (["theory", "bound", "--out", "x.csv"], "parquet"),
    (["theory", "score", "--dist", "other"], "invalid choice"),
    (["theory", "score", "--d", "1"], "d must be"),
    (["theory", "score", "--dist", "fl", "--sigma-xi", "0"], "sigma_xi"),
])
def test_bad_values_one_line_exit_2(run_cli, argv, match):
    import re

    rc, out, err = run_cli(*argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and re.search(match, lines[0]), err


def test_theory_help_and_bare_group(run_cli):
    rc, out, _ = run_cli("theory", "--help")
    assert rc == 0 and "score" in out and "bound" in out and "check" in out
    rc, out, _ = run_cli("theory", "bound", "--help")
    assert rc == 0 and "example" in out


def test_check_exits_zero(run_cli):
    rc, out, err = run_cli("theory", "check")
    assert rc == 0, out + err
    assert "FAIL" not in out and "checks passed" in out
