"""The evaluator-ceiling experiment (issue 11): structure, the ceiling's meaning, determinism, CLI, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fullscale import tasks
from fullscale.evaluate import ceiling as C


@pytest.fixture(scope="module")
def table():
    gen, _ = tasks.render("D", 80, seed=9)
    noisy = np.clip(gen + np.random.default_rng(0).normal(0, 12, gen.shape), 0, 255).astype(np.uint8)
    runs = [("noisy renders", "D", noisy, {"n": 80, "preview": False, "source": "test", "model": "m", "preset": "p"})]
    return C.run_ceiling("D", seeds=(0, 1), n=300, runs=runs, n_boot=40, log=lambda m: None)


def _get(df, **kw):
    sel = np.ones(len(df), dtype=bool)
    for k, v in kw.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, kw
    return df[sel].iloc[0]


def test_rows_intervals_and_gaps(table):
    assert set(table.kind) == {"exact", "ceiling", "generated"}
    assert set(table.protocol) == {"precise", "paper", "paper-train"}
    assert set(table[table.kind == "generated"].protocol) == {"precise", "paper"}
    # the authors' training-image pipeline on exact renders (spec Sec. 8: D-train parses few 32-px images)
    assert _get(table, kind="ceiling", protocol="paper-train", metric="parse_rate").value < 0.3
    for protocol in ("precise", "paper"):
        s0 = _get(table, set="exact renders, seed 0", protocol=protocol, metric="r2")
        s1 = _get(table, set="exact renders, seed 1", protocol=protocol, metric="r2")
        ceil = _get(table, kind="ceiling", protocol=protocol, metric="r2")
        assert ceil.value == pytest.approx((s0.value + s1.value) / 2)
        for r in (s0, s1, ceil):
            assert r.ci_lo <= r.ci_hi and r.n_boot >= 30
        gen = _get(table, kind="generated", protocol=protocol, metric="r2")
        gap = _get(table, kind="generated", protocol=protocol, metric="gap_r2")
        assert gap.value == pytest.approx(gen.value - ceil.value)
        assert gap.ci_lo <= gap.ci_hi
    # the meaning of the ceiling: the precise evaluator reads exact renders (almost) perfectly, the
    # authors' evaluator does not (spec Sec. 8: D-94 R² ~0.87, about half the images parsed)
    assert _get(table, kind="ceiling", protocol="precise", metric="r2").value > 0.999
    assert _get(table, kind="ceiling", protocol="paper", metric="r2").value < 0.95
    assert 0.3 < _get(table, kind="ceiling", protocol="paper", metric="parse_rate").value < 0.7
    s = C.summary(table)
    assert len(s) == 1 and s.paper_ceiling.iloc[0] < s.precise_ceiling.iloc[0]


def test_deterministic_and_bootstrap_matches_point():
    images, _ = tasks.render("B", 120, seed=4)
    m = C.measure("B", images, "paper")
    a, b = C.bootstrap("B", "paper", m, 25, 3), C.bootstrap("B", "paper", m, 25, 3)
    for k in C.METRICS:
        np.testing.assert_array_equal(a[k], b[k])
    # an identity "resample" gives the point estimate
    assert C.statistics("B", "paper", m, np.arange(120)) == C.statistics("B", "paper", m)


def test_cli_writes_a_table_and_resumes(tmp_path, capsys):
    from dmrules.cli import main
    from dmrules.results import read_table
    from fullscale.evaluate import stored

    run = tmp_path / "run"
    run.mkdir()
    images, _ = tasks.render("C", 64, seed=2)
    np.save(run / "preview.npy", images)
    (run / "config.json").write_text(json.dumps({"config": {"task": "C", "model": "unet", "preset": "paper"}}))
    out = tmp_path / "c.parquet"
    argv = ["ceiling", "--tasks", "C", "--seeds", "0", "--n", "200", "--bootstrap", "20", "--runs", str(run),
            "--out", str(out)]
    parts = tmp_path / "c.parquet.parts"
    # a killed run leaves its measurements: the next run reads them back (remove one to see it re-made)
    from fullscale.evaluate.ceiling import _measure_cached

    _measure_cached("C", "paper", "exact-C-200-32-0", lambda: tasks.render("C", 200, seed=0)[0], parts)
    assert (parts / "exact-C-200-32-0-paper.npz").exists()
    assert main(argv) == 0
    df = read_table(out)
    assert not parts.exists() and df.attrs["provenance"]["config"]["n"] == 200
    gen = df[(df.kind == "generated") & (df.metric == "r2")]
    assert len(gen) == 2 and gen.preview.all() and "first 64 samples" in gen.set.iloc[0]
    assert "C unet, paper preset" in capsys.readouterr().out
    first = df.copy()
    stored.save_atlas(run / "samples.png", images[:50])  # stored samples win over the preview
    assert main(argv) == 0
    df = read_table(out)
    assert (df[(df.kind == "generated")].n_images == 50).all()
    pd.testing.assert_frame_equal(first[first.kind != "generated"].reset_index(drop=True),
                                  df[df.kind != "generated"].reset_index(drop=True))
    for bad in (["--tasks", "E"], ["--runs", str(tmp_path)], ["--seeds", "-1"], ["--bootstrap", "x"]):
        with pytest.raises(SystemExit) as exc:
            raise SystemExit(main(["ceiling", "--out", str(tmp_path / "x.parquet"), *bad]))
        assert exc.value.code == 2


def test_report_lends_the_paper_protocol_column():
    """REPORT.md: a fine-rule row gains the authors'-evaluator value of the same run (issue 11)."""
    from reports.report import with_paper_protocol, to_markdown, _comparison_blocks

    rows = [{"figure": "ddpm_fig4", "ref": "rules.gen_fit.A", "ours": "y = 0.9x, R² 0.99 (unet, paper preset)",
             "quantity": "q", "paper": "p", "source": "s", "note": "", "agrees": None},
            {"figure": "ddpm_fig4", "ref": "rules.gen_fit.A", "ours": "R² 0.9 (unet-small-p2, cpu preset)",
             "quantity": "q", "paper": "p", "source": "s", "note": "", "agrees": None},
            {"figure": "evaluator_ceiling", "ref": "rules.gen_fit.A", "ours": "both", "quantity": "q", "paper": "p",
             "source": "s", "note": "", "agrees": None, "paper_protocol": "R² 0.83 [0.29, 0.92]",
             "annotates": "unet, paper preset"},
            {"figure": "evaluator_ceiling", "ref": "rules.gen_fit.B", "ours": "alone", "quantity": "q", "paper": "p",
             "source": "s", "note": "", "agrees": None, "paper_protocol": "R² 0.93", "annotates": "unet, cpu preset"}]
    out = with_paper_protocol(rows)
    assert [r["ours"] for r in out] == [rows[0]["ours"], rows[1]["ours"], "alone"]
    assert out[0]["paper_protocol"] == "R² 0.83 [0.29, 0.92]" and not out[1].get("paper_protocol")
    text = to_markdown(_comparison_blocks([{"rows": rows}], []))
    assert "the authors' evaluator (paper protocol) on our images" in text and "R² 0.83 [0.29, 0.92]" in text


def test_an_undefined_statistic_has_no_interval():
    """A set where the authors' B pipeline parses 2 images: no fit, so no R² interval either (a few
    resamples that happen to fit must not make one)."""
    images, _ = tasks.render("B", 60, seed=1)
    blank = np.full_like(images, 255)
    blank[:2] = images[:2]
    m = C.measure("B", blank, "paper")
    point = C.statistics("B", "paper", m)
    rows = {r["metric"]: r for r in C._rows({}, point, C.bootstrap("B", "paper", m, 50, 0))}
    assert point["r2"] is None and np.isnan(rows["r2"]["value"]) and np.isnan(rows["r2"]["ci_lo"])
    assert rows["parse_rate"]["ci_lo"] <= rows["parse_rate"]["value"] <= rows["parse_rate"]["ci_hi"]
