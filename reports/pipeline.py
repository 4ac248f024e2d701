"""The figure pipeline behind ``make figures``: results (cached) -> figures (cached) -> REPORT.md.

A :class:`Result` is a table made by one ``dmrules`` command, e.g.
``Result("sims_fl", {"default": ["sims", "fl", "--preset", "quick"], "full": [...]})``. The pipeline
runs the command in-process with ``--out reports/cache/<key>-<hash>-<code><suffix>``: the hash is
taken over the command line and <code> over the source of the packages that compute it
(:func:`code_hash`), so a re-run recomputes exactly the results whose command or code changed. A result
counts as made once its provenance file ``<out>.json`` exists (written last): a killed run leaves
none, and the next run calls the command again, which resumes or redoes its own atomic writes.

A :class:`Figure` names the results it needs and a ``draw(inputs, out_dir)`` function that reads
them and returns the files it wrote. A figure is redrawn only when its fingerprint changes: its
inputs (path and creation time of each result), the source of its module (and the
``reports.figures`` helpers it uses, ``reports/style.py``, and ``reports/reference.py`` when it
compares with the papers), and the committed files it watches (:mod:`reports.stamps`). Otherwise it
is "[cached]".

Failures are contained: a figure module that does not import, a result whose command fails, or a
``draw`` that raises is recorded (one line in the report, the traceback in
``reports/cache/logs/<name>.log``) and the run goes on; ``python -m reports`` exits 1 at the end.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import pkgutil
import shlex
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dmrules.core import results as R
from reports import stamps

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "cache"
FIGURE_DIR = ROOT / "plots"  # drawn PNG/MD files; the modules that draw them stay in reports/figures/
OLD_FIGURE_DIR = ROOT / "figures"  # where drawn files lived before issue 13 (stamps may still name it)
COMMITTED = ROOT / "results"
PRESETS = ("default", "full")


# The packages whose code computes a result, by the first word of its command (the CLI, dmrules/, serves
# them all). A result made by older code is not reused: editing sims/ recomputes the sims tables only.
CODE_OF = {"theory": ("dmrules", "theory"), "sims": ("dmrules", "theory", "sims")}
DEFAULT_CODE = ("dmrules", "theory", "fullscale")  # data, run, ceiling, ...: the full-scale stack


@functools.lru_cache(maxsize=None)
def code_hash(packages: tuple, root: Path = ROOT.parent) -> str:
    """10 hex digits over the path and bytes of every ``*.py`` file of ``packages`` under ``root``."""
    h = hashlib.sha256()
    for pkg in packages:
        for f in sorted((Path(root) / pkg).rglob("*.py")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:10]


@dataclass(frozen=True)
class Result:
    key: str
    argv: dict  # preset -> dmrules argv without the output flag ("full" falls back to "default")
    suffix: str = ".parquet"  # "" when the command writes a directory
    out_flag: str = "--out"
    # for the "full" preset: a committed result under reports/results/ used when there is no GPU
    committed: str | None = None
    needs_gpu_for: tuple = ("full",)

    def command(self, preset: str) -> list[str]:
        if preset not in self.argv:
            preset = "default"
        return list(self.argv[preset])

    def path(self, preset: str, cache: Path | None = None) -> Path:
        argv = self.command(preset)
        code = code_hash(CODE_OF.get(argv[0], DEFAULT_CODE))
        return Path(cache or CACHE) / f"{self.key}-{R.config_hash(argv, 10)}-{code}{self.suffix}"

    def needs_gpu(self, preset: str) -> bool:
        """A GPU is needed only for a preset with its own (paper-scale) command that asks for one."""
        return preset in self.argv and preset != "default" and preset in self.needs_gpu_for


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    caption: str
    needs: tuple = ()
    draw: Callable = None  # draw(inputs: dict[key, Path], out_dir: Path) -> list[Path]
    section: str = "misc"  # "theory" | "feature-learning" | "rules-data" | "rules-ddpm" | "mitigation"
    # optional: inputs -> list of rows (dicts or reports.reference.Comparison), see docs/reports.md
    paper_vs_ours: Callable | None = None
    extra: dict = field(default_factory=dict)
    reproduces: tuple = ()  # ids of reports.reference.PAPER_ITEMS this figure reproduces
    watch: tuple = ()  # further files or folders whose change means a redraw (committed results)


@dataclass(frozen=True)
class Layout:
    """Where the pipeline reads and writes (tests point it at a temporary folder)."""

    cache: Path
    figures: Path
    committed: Path

    @property
    def stamps(self) -> Path:
        return self.cache / "figures"

    @property
    def logs(self) -> Path:
        return self.cache / "logs"


def default_layout() -> Layout:
    """The repository's folders (read at call time, so tests can point the module globals elsewhere)."""
    return Layout(CACHE, FIGURE_DIR, COMMITTED)


class Skipped(Exception):
    """A result that cannot be made here (e.g. it needs a GPU and no committed copy exists)."""


@dataclass
class RunReport:
    """What one ``run`` did: one record per figure, one per result, and the time each step took."""

    preset: str
    figures: list = field(default_factory=list)
    results: dict = field(default_factory=dict)
    import_s: float = 0.0
    total_s: float = 0.0
    setup_s: float | None = None

    @property
    def failures(self) -> list[dict]:
        return [f for f in self.figures if f["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures


# ---- discovery ------------------------------------------------------------------------------------
def discover(errors: list | None = None, package: str = "reports.figures") -> list[Figure]:
    """All figures declared by the modules of ``package``, in module order. A module that fails to
    import is skipped; pass a list as ``errors`` to collect ``(module, exception, traceback)``."""
    pkg = importlib.import_module(package)
    figures = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        try:
            module = importlib.import_module(f"{package}.{info.name}")
        except Exception as exc:  # a module being written breaks only itself
            if errors is None:
                raise
            errors.append((f"{package}.{info.name}", exc, traceback.format_exc()))
            continue
        figures.extend(getattr(module, "FIGURES", []))
    return figures


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _committed_meta(path: Path) -> dict:
    """Provenance of a committed result (parquet metadata, or a run folder's JSON), best effort."""
    meta = {"command": f"committed result {_rel(path)}"}
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            raw = (pq.read_schema(path).metadata or {}).get(b"dmrules")
            if raw:
                made = json.loads(raw)
                meta = {**made, **meta, "made_by": made.get("command", "")}
        elif path.is_dir():
            for name in ("provenance.json", "meta.json"):
                if (path / name).exists():
                    meta = {**json.loads((path / name).read_text()), **meta}
                    break
    except Exception:  # provenance is informative only
        pass
    meta["stat"] = R.config_hash(stamps.stat_fp(path), 12)
    return meta


# ---- results --------------------------------------------------------------------------------------
def _call_cli(cmd: list[str]) -> tuple[int, str]:
    """``dmrules CMD`` in-process: (exit code, the device as the command left it, e.g. its thread count).
    torch's thread count is restored afterwards: a command that sets it (``sims --threads 1``) must not
    slow down the next one."""
    import torch  # every heavy command imports it anyway

    from dmrules.cli import main

    threads = torch.get_num_threads()
    try:
        try:
            rc = main(cmd)
        except SystemExit as exc:  # argparse errors
            rc = exc.code if isinstance(exc.code, int) else 1
        return rc, R.device_name()
    finally:
        torch.set_num_threads(threads)


def ensure_result(result: Result, preset: str, log=print, force: bool = False, allow_cpu: bool = False,
                  layout: Layout | None = None, plan: bool = False) -> tuple[Path, dict]:
    """Make (or reuse) one result; returns its path and provenance (with ``status`` and ``run_s``).
    ``plan``: only say what would be done (status ``planned`` for a result that would be computed)."""
    layout = layout or default_layout()
    if result.needs_gpu(preset) and not _has_gpu():
        if result.committed and (layout.committed / result.committed).exists():
            path = layout.committed / result.committed
            log(f"[reuse] {result.key}: no GPU here, using committed {path}")
            return path, {**_committed_meta(path), "status": "reused", "run_s": 0.0}
        if not allow_cpu:
            where = f"no committed reports/results/{result.committed}" if result.committed else "no committed copy"
            raise Skipped(f"{result.key} needs a GPU for preset {preset!r}: none here and {where} "
                          f"(run on a GPU machine, or pass --allow-cpu)")
        log(f"[warn] {result.key}: no GPU and no committed result; computing the {preset} preset on the CPU")
    path = result.path(preset, layout.cache)
    meta_path = path.with_name(path.name + ".json")
    argv = result.command(preset)
    command = shlex.join(["dmrules", *argv])
    if plan and (force or not (path.exists() and meta_path.exists())):
        log(f"[plan] would run {command}" + (" (resuming what is there)" if path.exists() and not force else ""))
        return path, {"command": command, "status": "planned", "run_s": 0.0}
    if force:
        meta_path.unlink(missing_ok=True)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if path.exists() and meta_path.exists():
        log(f"[cached] {result.key} ({_short(command)})")
        return path, {**json.loads(meta_path.read_text()), "status": "cached", "run_s": 0.0}
    cmd = [*argv, result.out_flag, str(path)]
    log(f"[run] dmrules {shlex.join(cmd)}")
    t0, c0 = time.perf_counter(), time.process_time()
    rc, device = _call_cli(cmd)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if rc != 0:
        raise RuntimeError(f"`dmrules {shlex.join(cmd)}` failed with exit code {rc}")
    if not path.exists():
        raise RuntimeError(f"`dmrules {shlex.join(cmd)}` succeeded but wrote no {path.name}")
    # CPU time (all threads of this process): on a shared machine it says what the step costs better
    # than the wall time does
    meta = {**R.provenance(command=command, wall_time_s=wall, preset=preset, cpu_time_s=round(cpu, 3)), "device": device}
    R.write_json(meta_path, meta)
    log(f"[done] {result.key} in {wall:.1f} s (CPU {cpu:.1f} s)")
    return path, {**meta, "status": "computed", "run_s": wall, "cpu_s": cpu}


# ---- the run --------------------------------------------------------------------------------------
def _record(fig: Figure | None, name: str, preset: str, **kw) -> dict:
    rec = {"name": name, "figure": fig, "preset": preset, "status": "failed", "files": [], "rows": [],
           "provenance": {}, "draw_s": 0.0, "error": "", "log": "", "cached_from": ""}
    if fig is not None:
        rec.update(title=fig.title, caption=fig.caption, section=fig.section, reproduces=tuple(fig.reproduces))
    else:
        rec.update(title=name, caption="", section="misc", reproduces=())
    rec.update(kw)
    return rec


def _fail(rec: dict, exc: BaseException, tb: str, layout: Layout, log) -> dict:
    first = (str(exc).strip().splitlines() or [""])[0]
    rec["error"] = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    log_path = layout.logs / f"{rec['name'].replace(' ', '_')}.log"
    R.write_text(log_path, tb)
    rec["log"] = str(log_path)
    rec["status"] = "failed"
    log(f"[FAILED] {rec['name']}: {rec['error']} (traceback: {log_path})")
    return rec


def _rows(fig: Figure, inputs: dict) -> list[dict]:
    from reports.reference import comparison

    if fig.paper_vs_ours is None:
        return []
    return [comparison(r, fig.name).to_dict() for r in (fig.paper_vs_ours(inputs) or [])]


def _moved(path: Path, layout: Layout) -> Path:
    """A drawn file a stamp names under the old ``reports/figures/`` folder, now under ``layout.figures``
    (issue 13 moved the outputs apart from the modules; cached figures stay cached)."""
    if path.parent == OLD_FIGURE_DIR and not path.exists() and (layout.figures / path.name).exists():
        return layout.figures / path.name
    return path


def _draw(fig: Figure, inputs: dict, provs: dict, preset: str, layout: Layout, redraw: bool, log) -> dict:
    fp = stamps.fingerprint(fig, preset, provs, layout.committed, extra_roots=(COMMITTED,))
    stamp_path = layout.stamps / f"{fig.name}.json"
    rec = _record(fig, fig.name, preset, provenance=provs, fingerprint=fp)
    if not redraw and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        files = [_moved(Path(f), layout) for f in stamp.get("files", [])]
        if stamp.get("fingerprint") == fp and all(f.exists() for f in files):
            log(f"[cached] figure {fig.name}")
            rec.update(status="cached" if files else "empty", files=files, rows=stamp.get("rows", []),
                       draw_s=0.0, cached_from=stamp.get("created", ""), last_draw_s=stamp.get("draw_s", 0.0))
            return rec
    t0, c0 = time.perf_counter(), time.process_time()
    layout.figures.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in (fig.draw(inputs, layout.figures) or [])]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"draw returned files it did not write: {', '.join(missing)}")
    rows = _rows(fig, inputs)
    rec.update(status="drawn" if files else "empty", files=files, rows=rows, draw_s=time.perf_counter() - t0,
               cpu_s=time.process_time() - c0)
    R.write_json(stamp_path, {"fingerprint": fp, "files": [str(f) for f in files], "rows": rows, "preset": preset,
                              "draw_s": rec["draw_s"], "created": R.provenance()["created"], "name": fig.name,
                              "provenance": provs})
    shown = ", ".join(_rel(f) for f in files) or "nothing (its inputs are empty)"
    log(f"[figure] {fig.name}: {shown} ({rec['draw_s']:.1f} s)")
    return rec


def _short(text: str, width: int = 140) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).relative_to(ROOT.parent))
    except ValueError:
        return str(path)


def _earlier(fig: Figure, preset: str, layout: Layout) -> dict | None:
    """A figure not selected by ``--only``: its record from the last run that drew it, if any."""
    stamp_path = layout.stamps / f"{fig.name}.json"
    if not stamp_path.exists():
        return None
    stamp = json.loads(stamp_path.read_text())
    files = [_moved(Path(f), layout) for f in stamp.get("files", [])]
    if stamp.get("preset") != preset or not all(f.exists() for f in files):
        return None
    return _record(fig, fig.name, preset, status="earlier", files=files, rows=stamp.get("rows", []),
                   provenance=stamp.get("provenance", {}), cached_from=stamp.get("created", ""))


def run(preset: str = "default", only: list[str] | None = None, log=print, force: bool = False,
        redraw: bool = False, allow_cpu: bool = False, layout: Layout | None = None,
        figures: list[Figure] | None = None, package: str = "reports.figures", plan: bool = False) -> RunReport:
    """Make every figure (or those named in ``only``). Never raises for a failing figure: see
    :attr:`RunReport.failures`. Raises ``ValueError`` for a bad preset or an unknown figure name.
    ``figures``: use these instead of discovering the modules of ``package``. ``plan``: compute and draw
    nothing, only log what would be done (``--plan``)."""
    layout = layout or default_layout()
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    t_start = time.perf_counter()
    report = RunReport(preset)
    errors: list = []
    if figures is None:
        figures = discover(errors, package)
    report.import_s = time.perf_counter() - t_start
    names = [f.name for f in figures]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"figure names must be unique; repeated: {', '.join(dupes)}")
    if only:
        unknown = set(only) - set(names)
        if unknown:
            hint = f" ({len(errors)} figure module(s) failed to import)" if errors else ""
            raise ValueError(f"unknown figure(s) {sorted(unknown)}{hint}; known: {', '.join(sorted(names))}")
    for module, exc, tb in errors:
        report.figures.append(_fail(_record(None, module, preset), exc, tb, layout, log))

    made: dict = {}  # result key -> (path, meta) or the exception it raised
    for fig in figures:
        if only and fig.name not in only:
            report.figures.append(_earlier(fig, preset, layout)
                                  or _record(fig, fig.name, preset, status="not-run"))
            continue
        inputs, provs = {}, {}
        failed_input = None
        for res in fig.needs:
            if res.key not in made:
                try:
                    made[res.key] = ensure_result(res, preset, log=log, force=force, allow_cpu=allow_cpu,
                                                  layout=layout, plan=plan)
                except Exception as exc:
                    made[res.key] = (exc, traceback.format_exc())
                report.results[res.key] = _result_record(res, preset, made[res.key])
            got = made[res.key]
            if isinstance(got[0], BaseException):
                failed_input = (res.key, *got)
                break
            inputs[res.key], provs[res.key] = got[0], {**got[1], "path": str(got[0])}
        if failed_input is not None:
            key, exc, tb = failed_input
            if isinstance(exc, Skipped):
                log(f"[skipped] {fig.name}: {exc}")
                report.figures.append(_record(fig, fig.name, preset, status="skipped", error=str(exc)))
            else:
                wrapped = RuntimeError(f"input {key}: {type(exc).__name__}: {exc}")
                report.figures.append(_fail(_record(fig, fig.name, preset, provenance=provs), wrapped, tb, layout, log))
            continue
        if plan:
            report.figures.append(_record(fig, fig.name, preset, status="planned", provenance=provs))
            continue
        try:
            report.figures.append(_draw(fig, inputs, provs, preset, layout, redraw or force, log))
        except Exception as exc:
            report.figures.append(_fail(_record(fig, fig.name, preset, provenance=provs), exc,
                                        traceback.format_exc(), layout, log))
    report.total_s = time.perf_counter() - t_start
    return report


def _result_record(res: Result, preset: str, got: tuple) -> dict:
    if isinstance(got[0], BaseException):
        status = "skipped" if isinstance(got[0], Skipped) else "failed"
        return {"key": res.key, "status": status, "run_s": 0.0, "error": str(got[0]),
                "command": shlex.join(["dmrules", *res.command(preset)])}
    meta = got[1]
    return {"key": res.key, "status": meta["status"], "run_s": meta.get("run_s", 0.0), "cpu_s": meta.get("cpu_s", 0.0),
            "made_s": meta.get("wall_time_s"), "made_cpu_s": meta.get("cpu_time_s"), "path": str(got[0]),
            "command": meta.get("command", ""), "wall_time_s": meta.get("wall_time_s"),
            "device": meta.get("device", ""), "commit": meta.get("commit", "")}
