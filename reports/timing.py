"""Where the time of a ``python -m reports`` run went: rows for the report and the closing summary."""

from __future__ import annotations


def timing_rows(report) -> list[dict]:
    """Where the time went, largest first: one row per computed result and drawn figure, then totals."""
    rows = [{"step": "result", "name": r["key"], "status": r["status"], "seconds": r["run_s"],
             "cpu_seconds": r.get("cpu_s", 0.0), "made_seconds": r.get("made_s"), "made_cpu_seconds": r.get("made_cpu_s")}
            for r in report.results.values()]
    rows += [{"step": "figure", "name": f["name"], "status": f["status"], "seconds": f["draw_s"],
              "cpu_seconds": f.get("cpu_s", 0.0), "made_seconds": f.get("last_draw_s", f["draw_s"]),
              "made_cpu_seconds": None}
             for f in report.figures if f["status"] in ("drawn", "cached", "empty", "failed")]
    rows.sort(key=lambda r: (-r["seconds"], -(r["made_seconds"] or 0.0)))
    none = {"cpu_seconds": None, "made_seconds": None, "made_cpu_seconds": None}
    tail = [{"step": "import", "name": "figure modules", "status": "", "seconds": report.import_s, **none}]
    if report.setup_s is not None:
        tail.insert(0, {"step": "set-up", "name": "make venv", "status": "", "seconds": report.setup_s, **none})
    return rows + tail


def timing_summary(report) -> str:
    """The lines printed at the end of ``python -m reports``."""
    res = list(report.results.values())
    figs = report.figures
    count = lambda items, s: sum(1 for i in items if i["status"] == s)  # noqa: E731
    lines = [f"timing (preset {report.preset}): {report.total_s:.0f} s in the pipeline"
             + (f" + {report.setup_s:.0f} s set-up" if report.setup_s is not None else "")]
    lines.append(f"  results: {count(res, 'computed')} computed "
                 f"({sum(r['run_s'] for r in res):.0f} s), {count(res, 'cached')} cached, "
                 f"{count(res, 'reused')} committed, {count(res, 'failed')} failed, {count(res, 'skipped')} skipped")
    lines.append(f"  figures: {count(figs, 'drawn')} drawn ({sum(f['draw_s'] for f in figs):.0f} s), "
                 f"{count(figs, 'cached')} cached, {count(figs, 'empty')} empty, {count(figs, 'earlier')} from "
                 f"earlier runs, {count(figs, 'not-run')} not run, {count(figs, 'failed')} failed, "
                 f"{count(figs, 'skipped')} skipped")
    slow = [r for r in timing_rows(report) if r["seconds"] >= 1.0]
    for r in slow[:12]:
        cpu = f"CPU {r['cpu_seconds']:7.1f} s" if r["cpu_seconds"] else " " * 13
        lines.append(f"  {r['seconds']:8.1f} s  {cpu}  {r['step']:<7} {r['name']}"
                     + (f" ({r['status']})" if r["status"] else ""))
    return "\n".join(lines)
