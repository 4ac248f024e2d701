"""The pipeline behind `make figures`: caching, failure reporting, the GPU fallback, the report."""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dmrules import results as R
from reports import pipeline, report
from reports.pipeline import Figure, Layout, Result

TINY = Result("tiny_b", {"default": ["data", "--task", "B", "--n", "6", "--seed", "1"]}, suffix="")
OTHER = Result("tiny_c", {"default": ["data", "--task", "C", "--n", "5", "--seed", "2"]}, suffix="")
BROKEN = Result("broken", {"default": ["data", "--task", "Z", "--n", "5"]}, suffix="")


@pytest.fixture
def layout(tmp_path, monkeypatch):
    lay = Layout(cache=tmp_path / "cache", figures=tmp_path / "figures", committed=tmp_path / "results")
    # module globals too, for `python -m reports` (reports.__main__) and the report's location
    monkeypatch.setattr(pipeline, "CACHE", lay.cache)
    monkeypatch.setattr(pipeline, "FIGURE_DIR", lay.figures)
    monkeypatch.setattr(pipeline, "COMMITTED", lay.committed)
    monkeypatch.setattr(report, "ROOT", tmp_path)
    return lay


def table_figure(name, needs=(TINY,), calls=None, fail=False, rows=None, reproduces=()):
    """A figure that counts its drawings and writes a one-row table of each input's image count."""

    def draw(inputs, out_dir):
        import numpy as np

        if calls is not None:
            calls.append(name)
        if fail:
            raise ZeroDivisionError("deliberate failure in draw")
        counts = [len(np.load(Path(p) / "images.npy")) for p in inputs.values()]
        return [R.write_text(out_dir / f"{name}.md", "| input | images |\n|---|---|\n"
                             + "".join(f"| {k} | {c} |\n" for k, c in zip(inputs, counts)))]

    return Figure(name=name, title=f"Title of {name}", caption=f"Caption of {name}.", needs=tuple(needs), draw=draw,
                  section="rules-data", paper_vs_ours=(lambda inputs: rows) if rows is not None else None,
                  reproduces=reproduces)


def png_figure(name="picture"):
    def draw(inputs, out_dir):
        from reports import style

        fig, axes = style.subplots(1, 2)
        axes[0, 0].plot([0, 1], [0, 1], color=style.COLORS["diffusion"])
        style.paper_marker(axes[0, 1], [0.5], [0.5])
        style.textbox(axes[0, 1], "R² = 0.85")
        return [style.save(fig, out_dir / f"{name}.png")]

    return Figure(name=name, title="A picture", caption="Lines.", draw=draw, section="theory")


def quiet(lines):
    return lambda msg: lines.append(msg)


def test_second_run_does_nothing(layout):
    calls, log = [], []
    figs = [table_figure("t1", calls=calls), png_figure()]
    first = pipeline.run(figures=figs, layout=layout, log=quiet(log))
    assert [f["status"] for f in first.figures] == ["drawn", "drawn"]
    assert first.results["tiny_b"]["status"] == "computed" and calls == ["t1"]
    assert (layout.figures / "t1.md").read_text().splitlines()[-1] == "| tiny_b | 6 |"

    log.clear()
    second = pipeline.run(figures=figs, layout=layout, log=quiet(log))
    assert [f["status"] for f in second.figures] == ["cached", "cached"]
    assert second.results["tiny_b"]["status"] == "cached"
    assert calls == ["t1"], "a figure with unchanged inputs was redrawn"
    assert not any(m.startswith(("[run]", "[figure]")) for m in log), log
    assert "[cached] figure t1" in log


def test_a_changed_command_recomputes_only_what_depends_on_it(layout):
    calls = []
    figs = [table_figure("uses_b", calls=calls), table_figure("uses_c", needs=(OTHER,), calls=calls)]
    pipeline.run(figures=figs, layout=layout, log=quiet([]))
    changed = Result("tiny_b", {"default": ["data", "--task", "B", "--n", "7", "--seed", "1"]}, suffix="")
    figs = [table_figure("uses_b", needs=(changed,), calls=calls), table_figure("uses_c", needs=(OTHER,), calls=calls)]
    again = pipeline.run(figures=figs, layout=layout, log=quiet([]))
    assert again.results["tiny_b"]["status"] == "computed" and again.results["tiny_c"]["status"] == "cached"
    assert calls == ["uses_b", "uses_c", "uses_b"]
    assert (layout.figures / "uses_b.md").read_text().splitlines()[-1] == "| tiny_b | 7 |"


def test_missing_output_redraws_and_force_recomputes(layout):
    calls = []
    figs = [table_figure("t1", calls=calls)]
    pipeline.run(figures=figs, layout=layout, log=quiet([]))
    (layout.figures / "t1.md").unlink()
    assert pipeline.run(figures=figs, layout=layout, log=quiet([])).figures[0]["status"] == "drawn"
    forced = pipeline.run(figures=figs, layout=layout, log=quiet([]), force=True)
    assert forced.results["tiny_b"]["status"] == "computed" and calls == ["t1"] * 3
    assert pipeline.run(figures=figs, layout=layout, log=quiet([]), redraw=True).results["tiny_b"]["status"] == "cached"
    assert calls == ["t1"] * 4


def test_a_result_made_by_other_code_is_not_reused(layout, tmp_path, monkeypatch):
    """The cache key holds the source of the packages that compute a result: an edit there recomputes
    it (the old cache kept results of older code), an edit elsewhere does not."""
    src = tmp_path / "src"
    for pkg in ("dmrules", "theory", "fullscale", "sims"):
        (src / pkg).mkdir(parents=True)
        (src / pkg / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(pipeline, "code_hash", pipeline.functools.partial(pipeline.code_hash.__wrapped__, root=src))
    theory_only = Result("t", {"default": ["theory", "bound"]})
    before = TINY.path("default", layout.cache), theory_only.path("default", layout.cache)
    (src / "sims" / "m.py").write_text("x = 2\n")  # neither result's code
    assert (TINY.path("default", layout.cache), theory_only.path("default", layout.cache)) == before
    (src / "fullscale" / "m.py").write_text("x = 2\n")  # TINY's (`data`), not theory's
    assert TINY.path("default", layout.cache) != before[0]
    assert theory_only.path("default", layout.cache) == before[1]
    (src / "dmrules" / "m.py").write_text("x = 2\n")  # the CLI serves both
    assert theory_only.path("default", layout.cache) != before[1]
    old = pipeline.code_hash(("theory",))
    (src / "theory" / "new.py").write_text("")  # a new (even empty) file counts too
    assert pipeline.code_hash(("theory",)) != old


def test_an_interrupted_result_is_made_again(layout):
    """The provenance file is written last: without it the result counts as unmade (a killed run)."""
    pipeline.run(figures=[table_figure("t1")], layout=layout, log=quiet([]))
    path = TINY.path("default", layout.cache)
    path.with_name(path.name + ".json").unlink()
    again = pipeline.run(figures=[table_figure("t1")], layout=layout, log=quiet([]))
    assert again.results["tiny_b"]["status"] == "computed"
    assert not list(layout.cache.rglob("*.tmp")), "a temporary file was left behind"


def test_failures_are_reported_and_the_run_goes_on(layout):
    log = []
    figs = [table_figure("bad_draw", fail=True), table_figure("bad_input", needs=(BROKEN,)), table_figure("good")]
    run = pipeline.run(figures=figs, layout=layout, log=quiet(log))
    status = {f["name"]: f for f in run.figures}
    assert status["good"]["status"] == "drawn"
    assert status["bad_draw"]["status"] == "failed"
    assert status["bad_draw"]["error"] == "ZeroDivisionError: deliberate failure in draw"
    assert "ZeroDivisionError" in Path(status["bad_draw"]["log"]).read_text()
    assert status["bad_input"]["status"] == "failed" and "input broken" in status["bad_input"]["error"]
    assert not run.ok and {f["name"] for f in run.failures} == {"bad_draw", "bad_input"}
    md, html = report.write(run, 1.0, out_dir=layout.cache.parent)
    text = md.read_text()
    assert "## Failed, skipped or empty" in text and "deliberate failure in draw" in text
    assert "bad_draw" in html.read_text()


def test_a_broken_figure_module_is_listed_not_fatal(tmp_path, monkeypatch, layout):
    pkg = tmp_path / "fakefigs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "aa_broken.py").write_text("raise ImportError('half-written module')\n")
    (pkg / "bb_good.py").write_text(
        "from reports.pipeline import Figure\n"
        "from reports import style\n"
        "def draw(inputs, out_dir):\n"
        "    fig, ax = style.subplots()\n"
        "    return [style.save(fig, out_dir / 'good.png')]\n"
        "FIGURES = [Figure(name='good', title='Good', caption='c', draw=draw)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = pipeline.run(layout=layout, log=quiet([]), package="fakefigs")
    by = {f["name"]: f for f in run.figures}
    assert by["good"]["status"] == "drawn"
    assert by["fakefigs.aa_broken"]["status"] == "failed" and "half-written module" in by["fakefigs.aa_broken"]["error"]
    for name in list(sys.modules):
        if name.startswith("fakefigs"):
            monkeypatch.delitem(sys.modules, name)


def test_full_preset_without_gpu_reuses_committed_results_or_skips(layout, monkeypatch):
    monkeypatch.setattr(pipeline, "_has_gpu", lambda: False)
    gpu = Result("gpu_b", {"default": ["data", "--task", "B", "--n", "6", "--seed", "1"],
                           "full": ["data", "--task", "B", "--n", "9", "--seed", "1"]}, suffix="",
                 committed="gpu_b_full")
    log = []
    skipped = pipeline.run("full", figures=[table_figure("g", needs=(gpu,))], layout=layout, log=quiet(log))
    assert skipped.figures[0]["status"] == "skipped" and "needs a GPU" in skipped.figures[0]["error"]
    assert skipped.ok, "a result that needs a GPU is skipped, not failed"
    # a committed copy (made here with the CLI; on a GPU machine, `dmrules ... --out reports/results/...`)
    from dmrules.cli import main

    assert main(["data", "--task", "B", "--n", "9", "--seed", "1", "--out", str(layout.committed / "gpu_b_full")]) == 0
    log.clear()
    reused = pipeline.run("full", figures=[table_figure("g", needs=(gpu,))], layout=layout, log=quiet(log))
    assert reused.figures[0]["status"] == "drawn" and reused.results["gpu_b"]["status"] == "reused"
    assert any("no GPU here, using committed" in m for m in log)
    assert (layout.figures / "g.md").read_text().splitlines()[-1] == "| gpu_b | 9 |"
    # the default preset never needs a GPU
    assert pipeline.run("default", figures=[table_figure("g", needs=(gpu,))], layout=layout,
                        log=quiet([])).results["gpu_b"]["status"] == "computed"


def test_torch_threads_survive_a_command_that_changes_them(monkeypatch):
    import torch

    import dmrules.cli

    before = torch.get_num_threads()
    monkeypatch.setattr(dmrules.cli, "main", lambda argv: torch.set_num_threads(max(1, before + 1)) or 0)
    rc, device = pipeline._call_cli(["anything"])
    assert rc == 0
    assert torch.get_num_threads() == before
    if not torch.cuda.is_available():  # provenance says what the command ran with, not what was restored
        assert device.endswith(f"({before + 1} threads)")


def test_paper_vs_ours_rows_and_coverage_reach_the_report(layout):
    rows = [{"ref": "rules.gen_fit.A", "ours": "y = 0.70x + 0.01, R² 0.62", "agrees": False,
             "note": "cpu preset: a 0.6M-parameter U-Net trained for minutes"},
            {"quantity": "a number of our own", "paper": "—", "ours": 3.14159},
            {"ref": "rules.conform_gen.A", "ours": "50 %", "agrees": False}]
    figs = [table_figure("cmp", rows=rows, reproduces=("rules:fig4",)), png_figure()]
    run = pipeline.run(figures=figs, layout=layout, log=quiet([]))
    assert run.ok
    got = run.figures[0]["rows"]
    assert got[0]["paper"].startswith("y = 0.81x + 0.00, R² = 0.85") and "§4.1" in got[0]["source"]
    assert got[1]["ours"] == "3.142"
    md, html = report.write(run, 2.0, out_dir=layout.cache.parent)
    text = md.read_text()
    assert "## Paper reports / we measure" in text and "cpu preset: a 0.6M-parameter U-Net" in text
    assert "**no reason given**" in text, "a differing row without a note must be flagged"
    assert "reproduced by [`cmp`](#fig-cmp)" in text
    assert "![A picture](figures/picture.png)" in text
    assert "| input | images |" in text  # the figure's own table is inlined
    assert "## Where the time went" in text
    page = html.read_text()
    assert '<img src="figures/picture.png"' in page and "<table>" in page
    _assert_balanced(page)


def test_a_bad_comparison_row_fails_its_figure(layout):
    run = pipeline.run(figures=[table_figure("cmp", rows=[{"ref": "no.such.key", "ours": "1"}])], layout=layout,
                       log=quiet([]))
    assert run.figures[0]["status"] == "failed" and "no.such.key" in run.figures[0]["error"]


def test_only_keeps_the_other_figures_from_their_last_run(layout):
    figs = [table_figure("t1"), png_figure()]
    pipeline.run(figures=figs, layout=layout, log=quiet([]))
    run = pipeline.run(only=["t1"], figures=[*figs, png_figure("never")], layout=layout, log=quiet([]))
    assert [(f["name"], f["status"]) for f in run.figures] == [("t1", "cached"), ("picture", "earlier"),
                                                                ("never", "not-run")]
    text = report.to_markdown(report.build(run, 0.0, base=layout.cache.parent))
    assert "![A picture](figures/picture.png)" in text and "not drawn yet" in text
    with pytest.raises(ValueError, match="unknown figure"):
        pipeline.run(only=["nope"], figures=figs, layout=layout, log=quiet([]))


def test_command_line_errors_and_exit_codes(layout, monkeypatch, capsys):
    from reports.__main__ import main

    assert main(["--only", "no_such_figure"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m reports: error: unknown figure") and "\n" not in err
    with pytest.raises(SystemExit) as exc:
        main(["--preset", "huge"])
    assert exc.value.code == 2
    monkeypatch.setattr(pipeline, "discover", lambda errors=None, package=None: [table_figure("bad", fail=True)])
    assert main([]) == 1
    out = capsys.readouterr()
    assert "[FAILED] 1 figure(s): bad: ZeroDivisionError" in out.err
    assert "timing (preset default)" in out.out
    assert (layout.cache.parent / "REPORT.md").exists() and (layout.cache.parent / "report.html").exists()
    assert (layout.cache / "logs" / "bad.log").read_text().startswith("Traceback")


class _Balance(HTMLParser):
    VOID = {"img", "meta", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


def _assert_balanced(page: str) -> None:
    parser = _Balance()
    parser.feed(page)
    assert parser.stack == [], f"unclosed tags: {parser.stack}"


def test_html_renders_the_markdown_the_figures_write():
    from reports import html

    assert html.inline("[`fl_fig2`](#fig-fl-fig2) is *the* **analogue** of `a<b`") == (
        '<a href="#fig-fl-fig2"><code>fl_fig2</code></a> is <em>the</em> <strong>analogue</strong> of <code>a&lt;b</code>')
    page = html.markdown("| a | b \\| c |\n|---|---|\n| 1 | x |\n\nSome text\ncontinued.\n\n- one\n- two\n")
    page = " ".join(page.split()).replace("> <", "><")  # markdown-it-py puts newlines between tags
    assert "<th>b | c</th>" in page and "<td>1</td><td>x</td>" in page
    assert "<p>Some text continued.</p>" in page and "<ul><li>one</li><li>two</li></ul>" in page
    _assert_balanced(html.render([report.H(1, "T"), report.P("p"), report.H(2, "S", "s"), ("md", "| a |\n|---|\n| 1 |")]))


def test_plan_runs_and_draws_nothing(layout):
    calls, log = [], []
    run = pipeline.run(figures=[table_figure("t1", calls=calls)], layout=layout, log=quiet(log), plan=True)
    assert run.results["tiny_b"]["status"] == "planned" and run.figures[0]["status"] == "planned"
    assert calls == [] and not layout.cache.exists()
    assert log == ["[plan] would run dmrules data --task B --n 6 --seed 1"]


def test_a_change_in_watched_committed_files_redraws(layout):
    import dataclasses

    calls = []
    committed = layout.committed / "gpu_runs"
    committed.mkdir(parents=True)
    (committed / "a.json").write_text("{}")
    fig = dataclasses.replace(table_figure("w", calls=calls), watch=(committed,))
    pipeline.run(figures=[fig], layout=layout, log=quiet([]))
    assert pipeline.run(figures=[fig], layout=layout, log=quiet([])).figures[0]["status"] == "cached"
    (committed / "b.json").write_text("{}")  # a new committed run
    assert pipeline.run(figures=[fig], layout=layout, log=quiet([])).figures[0]["status"] == "drawn"
    assert calls == ["w", "w"]
