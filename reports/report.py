"""Builds ``reports/REPORT.md`` and ``reports/report.html`` from a :class:`reports.pipeline.RunReport`.

The report is first built as a list of blocks (heading, paragraph, image, table, raw markdown), then
rendered twice: to markdown here and to HTML by :mod:`reports.html`. Its parts: the run's status
and failures, one "paper reports / we measure" table over every figure's comparison rows (and the
reference numbers nothing measures yet), every figure and table of both papers with what reproduces
it, one section per figure (caption, images, tables, comparison, the commands that made it and their
provenance), and where the time went.
"""

from __future__ import annotations

import os
from pathlib import Path

from dmrules.core import results as R
from reports import reference as ref

ROOT = Path(__file__).resolve().parent
SECTIONS = [
    ("theory", "Theory: exact scores and the rule-error constant"),
    ("feature-learning", "Feature learning: diffusion vs classification (arXiv 2412.01021)"),
    ("rules-data", "Rules paper: tasks and the evaluator (arXiv 2502.04725)"),
    ("rules-sims", "Rules paper: two-layer score networks and ψ_t (Section 4)"),
    ("rules-ddpm", "Rules paper: DDPMs on Tasks A-D"),
    ("mitigation", "Rules paper: classifiers, guidance and filtering"),
    ("misc", "Other"),
]
AVAILABLE = ("drawn", "cached", "earlier")
PP_COLUMN = "the authors' evaluator (paper protocol) on our images"  # issue 11, see with_paper_protocol
STATUS_TEXT = {"drawn": "drawn in this run", "cached": "unchanged since its last drawing [cached]",
               "earlier": "from an earlier run (not selected by --only)", "empty": "drew nothing: its inputs are empty",
               "failed": "FAILED", "skipped": "skipped",
               "not-run": "not drawn yet (not selected by --only, and no earlier run of this preset)"}


# ---- blocks ---------------------------------------------------------------------------------------
def H(level: int, text: str, anchor: str = "") -> tuple:
    return ("h", level, text, anchor)


def P(text: str) -> tuple:
    return ("p", text)


def table(columns: list[str], rows: list[list]) -> tuple:
    return ("table", list(columns), [["" if v is None else str(v) for v in r] for r in rows])


def _anchor(name: str) -> str:
    return "fig-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def _module_file(rec: dict) -> str:
    """The file that defines a figure, e.g. ``reports/figures/ddpm_rules.py``."""
    module = getattr(getattr(rec.get("figure"), "draw", None), "__module__", "") or ""
    return module.replace(".", "/") + ".py" if module.startswith("reports.") else module


def _agree(v) -> str:
    return {True: "yes", False: "**no**"}.get(v, "–")


def _num(v) -> str:
    return "" if v is None or v == 0 else f"{float(v):.1f}"


def _seconds(s) -> str:
    return "" if s is None else f"{float(s):.1f} s"


# ---- content --------------------------------------------------------------------------------------
def coverage(records: list[dict]) -> list[dict]:
    """For each figure/table of both papers: the figures reproducing it and their state."""
    by_name = {r["name"]: r for r in records}
    out = []
    for item in ref.PAPER_ITEMS:
        names = [r["name"] for r in records if item.id in r.get("reproduces", ())]
        names += [n for n in item.ours if n not in names and n in by_name]
        ok = [n for n in names if by_name[n]["status"] in AVAILABLE and by_name[n]["files"]]
        if ok:
            status = "reproduced by " + ", ".join(f"[`{n}`](#{_anchor(n)}) ({_module_file(by_name[n])})" for n in ok)
            if item.partial:
                status += f" (partly: {item.partial})"
        elif names:
            status = "missing: " + "; ".join(f"`{n}` {STATUS_TEXT[by_name[n]['status']]}"
                                             + (f" ({by_name[n]['error']})" if by_name[n]["error"] else "") for n in names)
        else:
            status = f"missing: {item.why_missing or 'no figure declares it'}"
        out.append({"item": item, "figures": names, "available": bool(ok), "status": status})
    return out


def _comparison_blocks(records: list[dict], cov: list[dict]) -> list:
    rows = [r for rec in records for r in rec["rows"]]
    blocks = [H(2, "Paper reports / we measure", "paper-vs-ours"),
              P("Every comparison row the figures provide (`Figure.paper_vs_ours`, see docs/reports.md). Paper numbers "
                "come from `reports/reference.py`, copied from the specs with their tags: [C-out] numbers were printed "
                "by the authors' notebooks (whether the paper prints exactly them is mostly unknown), [3rd] comes from "
                "third-party summaries, [SIM] is the spec author's own simulation, not the paper.")]
    rows = with_paper_protocol(rows)
    if rows:
        pp = any(r.get("paper_protocol") for r in rows)  # issue 11: the authors' evaluator on the same samples
        blocks.append(table(["figure", "quantity", "paper reports", "source", "we measure"]
                            + ([PP_COLUMN] if pp else []) + ["agrees", "why / note"],
                            [[f"[`{r['figure']}`](#{_anchor(r['figure'])})", r["quantity"], r["paper"], r["source"],
                              r["ours"]] + ([r.get("paper_protocol", "")] if pp else []) + [_agree(r["agrees"]),
                              r["note"] or ("**no reason given**" if r["agrees"] is False else "")] for r in rows]))
    else:
        blocks.append(P("No figure of this run compares itself with the papers yet."))
    used = {r["ref"] for r in rows if r.get("ref")}
    why = {}
    for c in cov:
        for key in c["item"].refs:
            if c["available"]:
                shown = ", ".join(f"[`{n}`](#{_anchor(n)})" for n in c["figures"])
                why.setdefault(key, f"{c['item'].label} is drawn by {shown}, which gives no comparison row for it yet")
            else:
                why.setdefault(key, f"{c['item'].label}: {c['status']}")
    rest = [r for k, r in ref.REFERENCE.items() if k not in used]
    if rest:
        blocks += [H(3, "Reported numbers no figure compares with yet", "not-measured"),
                   table(["quantity", "paper reports", "source", "status"],
                         [[r.quantity, r.text, f"{r.source} {r.tag}", why.get(r.key, "no figure compares with it yet")]
                          for r in rest])]
    return blocks


def with_paper_protocol(rows: list[dict]) -> list[dict]:
    """Rows with ``annotates`` (issue 11) lend their ``paper_protocol`` text to the rows of the same ``ref``
    whose ``ours`` contains the ``annotates`` text, and are dropped when they found one; the rest pass."""
    notes = [r for r in rows if r.get("annotates")]
    used, out = set(), []
    for r in rows:
        if r.get("annotates"):
            continue
        hits = [i for i, a in enumerate(notes) if a.get("ref") == r.get("ref") and a["annotates"] in r.get("ours", "")]
        if hits and not r.get("paper_protocol"):
            r = {**r, "paper_protocol": "; ".join(notes[i]["paper_protocol"] for i in hits)}
        used.update(hits)
        out.append(r)
    return out + [a for i, a in enumerate(notes) if i not in used]


def _coverage_blocks(cov: list[dict]) -> list:
    n_ok = sum(c["available"] for c in cov)
    return [H(2, "Every figure and table of both papers", "coverage"),
            P(f"{n_ok} of {len(cov)} items have a figure here. Items are listed in `reports/reference.py` "
              "(`PAPER_ITEMS`); a figure claims one with `Figure(reproduces=(id,))`."),
            table(["paper", "item", "what", "here"],
                  [[c["item"].paper.split(" (")[0], c["item"].label, c["item"].what, c["status"]] for c in cov])]


def _prov_rows(rec: dict) -> list[list]:
    rows = []
    for key, p in rec["provenance"].items():
        cmd = p.get("command", "?")
        rows.append([key, f"`{cmd}`", p.get("status", ""), p.get("commit", ""), p.get("device", ""),
                     _seconds(p.get("wall_time_s")), p.get("created", "")])
    return rows


def _figure_blocks(rec: dict, base: Path) -> list:
    fig_cmd = f"python -m reports --preset {rec['preset']} --only {rec['name']}"
    status = STATUS_TEXT.get(rec["status"], rec["status"])
    if rec["status"] == "drawn":
        status += f" ({rec['draw_s']:.1f} s)"
    elif rec.get("cached_from"):
        status += f" (drawn {rec['cached_from']})"
    blocks = [H(3, rec["title"], _anchor(rec["name"])),
              P(f"`{rec['name']}`, preset `{rec['preset']}`: {status}. Redraw: `{fig_cmd}`.")]
    if rec["error"]:
        log = f" Traceback: `{os.path.relpath(rec['log'], base)}`." if rec["log"] else ""
        blocks.append(P(f"**{rec['status'].upper()}**: {rec['error']}.{log}"))
    if rec["caption"]:
        blocks.append(P(rec["caption"]))
    for f in rec["files"]:
        f = Path(f)
        if f.suffix in (".png", ".svg", ".jpg"):
            blocks.append(("img", os.path.relpath(f, base), rec["title"]))
        elif f.suffix == ".md" and f.exists():
            blocks.append(("md", f.read_text().rstrip()))
    if rec["rows"]:
        pp = any(r.get("paper_protocol") for r in rec["rows"])
        blocks += [P("**Paper reports / we measure**"),
                   table(["quantity", "paper reports", "source", "we measure"]
                         + ([PP_COLUMN] if pp else []) + ["agrees", "why / note"],
                         [[r["quantity"], r["paper"], r["source"], r["ours"]] + ([r.get("paper_protocol", "")] if pp else [])
                          + [_agree(r["agrees"]), r["note"] or ("**no reason given**" if r["agrees"] is False else "")]
                          for r in rec["rows"]])]
    if rec["provenance"]:
        blocks += [P("**Made by**"), table(["result", "command", "status", "commit", "device", "wall time", "created"],
                                           _prov_rows(rec))]
    elif rec["figure"] is not None and not rec["figure"].needs:
        blocks.append(P("Made by drawing alone (no computed result)."))
    return blocks


def _timing_blocks(run) -> list:
    from reports.timing import timing_rows

    rows = timing_rows(run)
    total = run.total_s + (run.setup_s or 0.0)
    scratch = sum(r["made_seconds"] or 0.0 for r in rows if r["step"] in ("result", "figure"))
    return [H(2, "Where the time went", "timing"),
            P(f"Pipeline {run.total_s:.0f} s" + (f", set-up (venv) {run.setup_s:.0f} s" if run.setup_s is not None else "")
              + f", total {total:.0f} s. From scratch the steps cost {scratch:.0f} s of wall time when they were made "
              "(plus the set-up). Cached steps cost nothing here; their first computation is in the provenance "
              "tables. CPU seconds count every thread of the process: on a shared machine they say what a step "
              "costs better than the wall time."),
            table(["step", "name", "status", "wall s (this run)", "CPU s (this run)", "wall s (when made)",
                   "CPU s (when made)"],
                  [[r["step"], r["name"], r["status"], f"{r['seconds']:.1f}", _num(r["cpu_seconds"]),
                    _num(r["made_seconds"]), _num(r["made_cpu_seconds"])] for r in rows])]


def build(run, wall_time_s: float, base: Path | None = None) -> list:
    """The report as a list of blocks (see :func:`H`, :func:`P`, :func:`table`)."""
    base = Path(base or ROOT)
    prov = R.provenance(command=f"python -m reports --preset {run.preset}", wall_time_s=wall_time_s)
    records = run.figures
    counts = {s: sum(1 for r in records if r["status"] == s) for s in STATUS_TEXT}
    make = "make figures-full" if run.preset == "full" else "make figures"
    blocks = [H(1, "dmrules: the figures and tables of both papers"),
              P(f"Generated by `{make}` (preset `{run.preset}`) at commit `{prov['commit']}` on `{prov['device']}`, "
                f"{prov['created']}, in {wall_time_s:.0f} s"
                + (f" plus {run.setup_s:.0f} s of set-up" if run.setup_s is not None else "") + ". "
                "Papers: *On the Feature Learning in Diffusion Models* (arXiv 2412.01021) and *Can Diffusion Models "
                "Learn Hidden Inter-Feature Rules Behind Images?* (arXiv 2502.04725)."),
              P(f"**{len(records)} figures**: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".")]
    bad = [r for r in records if r["status"] in ("failed", "skipped", "empty")]
    if bad:
        blocks += [H(2, "Failed, skipped or empty", "failures"),
                   table(["figure", "status", "error", "traceback"],
                         [[r["name"], r["status"], r["error"], f"`{os.path.relpath(r['log'], base)}`" if r["log"] else ""]
                          for r in bad])]
    cov = coverage(records)
    blocks += _comparison_blocks(records, cov)
    blocks += _coverage_blocks(cov)
    for section, heading in SECTIONS:
        recs = [r for r in records if r["section"] == section and r["figure"] is not None]
        if section == "misc":
            recs += [r for r in records if r["section"] not in dict(SECTIONS)]
        if not recs:
            continue
        blocks.append(H(2, heading, "sec-" + section))
        for rec in recs:
            blocks += _figure_blocks(rec, base)
    blocks += _timing_blocks(run)
    return blocks


# ---- markdown -------------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            out.append(b[1])
        elif kind == "img":
            out.append(f"![{b[2]}]({Path(b[1]).as_posix()})")
        elif kind == "md":
            out.append(b[1])
        elif kind == "table":
            cols, rows = b[1], b[2]
            lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
            out.append("\n".join(lines))
        out.append("")
    return "\n".join(out)


def write(run, wall_time_s: float, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write REPORT.md and report.html into ``out_dir`` (default reports/); returns both paths."""
    from reports import html

    out_dir = Path(out_dir or ROOT)
    blocks = build(run, wall_time_s, base=out_dir)
    md = R.write_text(out_dir / "REPORT.md", to_markdown(blocks))
    page = R.write_text(out_dir / "report.html", html.render(blocks, title="dmrules report"))
    return md, page


def listing(figures: list, errors: list) -> str:
    """``python -m reports --list``: the figures, and which paper item each reproduces."""
    lines = ["figures (reports/figures/*.py):"]
    for f in figures:
        needs = ", ".join(r.key for r in f.needs) or "-"
        lines.append(f"  {f.name:<24} [{f.section}] needs: {needs}")
    for module, exc, _ in errors:
        lines.append(f"  {module}: FAILS TO IMPORT: {type(exc).__name__}: {exc}")
    lines.append("\nfigures and tables of both papers:")
    names = {f.name for f in figures}
    for item in ref.PAPER_ITEMS:
        ours = [f.name for f in figures if item.id in f.reproduces] + [n for n in item.ours if n in names]
        lines.append(f"  {item.id:<16} {item.label:<40} -> {', '.join(dict.fromkeys(ours)) or 'missing: ' + item.why_missing}")
    return "\n".join(lines)
