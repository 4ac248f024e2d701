"""Writing results safely and with provenance (shared by sims, fullscale and reports).

- Every file is written atomically: to a temporary file in the same folder, then ``os.replace``;
  a killed command never leaves a half-written table or checkpoint behind.
- Writes go through one layer (issue 12): an OS error becomes :class:`WriteError` naming the file
  and the cause; output locations are checked before work (:func:`check_output`); temporary files of
  killed writes are removed on the next start (:func:`clean_temps`); state is read through
  :func:`read_json` / :func:`torch_load` (a damaged file is one sentence naming it); one writer per
  output (:func:`lock`, from :mod:`dmrules.core.locks`).
- Every result table carries provenance: git commit, device, library versions, the command or
  config that made it, and wall time. Parquet tables keep it in their schema metadata (key
  ``dmrules``) and :func:`read_table` returns it as ``df.attrs["provenance"]``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from dmrules.core.locks import lock, lock_file_of  # noqa: F401 - one writer per output (re-exported)


# the process umask, read once (os.umask can only be read by setting it)
_UMASK = os.umask(0)
os.umask(_UMASK)


class WriteError(OSError):
    """A file could not be written (disk full, read-only, permission denied, ...): the CLI prints
    ``str(exc)`` (it names the file and the cause) on one line and exits 1; nothing already there
    was replaced (issue 12)."""

    def __init__(self, path, exc: OSError):
        super().__init__(exc.errno, exc.strerror or _why(exc, path), str(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}"


def _why(exc: BaseException, path) -> str:
    """The cause of a failed write, for errors that carry no errno (numpy's "N requested and M
    written", torch's "file write failed"): a full file system is named as such."""
    try:
        st = os.statvfs(Path(path).parent if not Path(path).is_dir() else path)
        if st.f_bavail * st.f_frsize < 1 << 20 or st.f_favail == 0:
            return f"{os.strerror(errno.ENOSPC)} ({exc})"
    except OSError:
        pass
    return str(exc) or type(exc).__name__


class _Recorder:
    """A binary file wrapper that remembers the OSError of a failed write (torch.save reports it as
    a RuntimeError without the cause)."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data):
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self):
        try:
            return self.fh.flush()
        except OSError as exc:
            self.error = exc
            raise


# the write layer's OS calls, module attributes so that tests can inject faults (CI runs as root,
# where chmod does not stop a write): ENOSPC, EACCES, EROFS, ... (tests/test_faults.py)
_mkstemp = tempfile.mkstemp
_replace = os.replace
TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # names of atomic_path's temporary files


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    An OS error (no space, read-only file system, permission denied, a directory in the way)
    becomes :class:`WriteError` naming ``path``; the old ``path`` is left as it was and the
    temporary file is removed (a killed process leaves it behind: :func:`clean_temps`)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        yield tmp
        if tmp.exists():  # mkstemp makes the file 0600; give it the mode a plain open() would
            os.chmod(tmp, 0o666 & ~_UMASK)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a directory is in the way", str(path))
        _replace(tmp, path)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def clean_temps(folder: str | os.PathLike, also=(), recursive: bool = False, log=None) -> int:
    """Remove temporary files that a killed :func:`atomic_path` left in ``folder`` and in its
    subfolders named in ``also`` (or in the whole tree with ``recursive``); returns how many.

    Call it only while holding the folder's :func:`lock`, and only for folders this writer owns: a
    subfolder may be another output with its own lock and a live writer (``dmrules sample RUN --out
    RUN/s`` while ``train`` restarts), hence not recursive by default."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    if recursive:
        candidates = list(folder.rglob(".*.tmp"))
    else:
        candidates = [p for d in (folder, *(folder / a for a in also)) if d.is_dir() for p in d.glob(".*.tmp")]
    found = [p for p in candidates if TEMP_RE.match(p.name) and p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    if found and log:
        log(f"[clean] removed {len(found)} temporary file(s) left by an interrupted write in {folder}")
    return len(found)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file (load back with ``weights_only=True``)."""
    import torch

    with atomic_path(path) as tmp:
        # through a file object: the zip's inner folder is then always "archive" (torch names it after
        # the file otherwise, here a random temporary name), so identical states give identical bytes
        with open(tmp, "wb") as fh:
            rec = _Recorder(fh)
            try:
                torch.save(obj, rec)
            except RuntimeError as exc:  # torch's wording of a failed write: name the cause
                if rec.error is not None:
                    raise rec.error from None
                raise OSError(errno.EIO, _why(exc, path)) from None
    return Path(path)


def torch_load(path: str | os.PathLike, what: str = "checkpoint", keys=(), map_location="cpu") -> dict:
    """``torch.load(path, weights_only=True)`` of a dict holding ``keys``; a zero-byte, truncated, garbled
    or foreign file is a ValueError naming it and what to do (the CLI: one line, exit 2), and the file
    is left in place (issue 12)."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as exc:  # a truncated zip makes torch seek past the end: EINVAL; keep real I/O errors
        if exc.errno not in (errno.EINVAL, None):
            raise
        raise ValueError(f"{path} is not a readable {what} (truncated or corrupt: {exc.strerror or exc}); it was "
                         "left in place: move it away to start over, or restore it") from None
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError, TypeError, AttributeError,
            pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        kind = "empty" if path.stat().st_size == 0 else f"truncated or corrupt: {type(exc).__name__}"
        raise ValueError(f"{path} is not a readable {what} ({kind}); it was left in place: move it away to start "
                         "over, or restore it") from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise ValueError(f"{path} is not a dmrules {what} (no {', '.join(missing[:3])}); it was left in place: "
                         "move it away to start over, or restore it")
    return _interned(obj)


def _interned(obj):
    """``obj`` with every string dict key interned. Pickle memoises by object identity: an optimiser
    state rebuilt from unpickled keys ("step", "exp_avg", ...) holds fresh strings beside the interned
    ones the optimiser writes itself, and a resumed run's next checkpoint came out some bytes longer
    than an uninterrupted run's (9 for the DDPM trainer, 12 for the classifier). Interned on load,
    a stop and resume writes the same bytes."""
    if isinstance(obj, dict):
        out = type(obj)((sys.intern(k) if isinstance(k, str) else k, _interned(v)) for k, v in obj.items())
        if hasattr(obj, "__dict__"):  # a state_dict's _metadata (module versions) rides on the OrderedDict
            out.__dict__.update(obj.__dict__)
        return out
    if isinstance(obj, list):
        return [_interned(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The current commit (with ``+dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name() -> str:
    """A human description of where this runs: the GPU name, or the CPU and its thread count."""
    try:
        # issue 5: a process that never imported torch (e.g. `dmrules data`) ran on the CPU; do not
        # pay torch's multi-second import just to say so.
        torch = sys.modules.get("torch")
        if torch is None:
            raise ImportError("torch not imported by this process")
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except Exception:  # torch missing or broken: still describe the CPU
        threads = os.cpu_count()
    cpu = platform.processor() or platform.machine()
    return f"cpu:{cpu} ({threads} threads)"


def provenance(config: Any = None, command: str | None = None, wall_time_s: float | None = None, **extra) -> dict:
    """A provenance record for a result: commit, device, versions, command, config and wall time."""
    versions = {"python": platform.python_version()}
    for mod in ("torch", "numpy", "pandas"):
        if mod in sys.modules:
            versions[mod] = getattr(sys.modules[mod], "__version__", "?")
    record = {
        "commit": git_commit(),
        "device": device_name(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "command": command if command is not None else " ".join(["dmrules", *sys.argv[1:]]),
    }
    if config is not None:
        record["config"] = json.loads(json.dumps(config, default=_json_default))
    if wall_time_s is not None:
        record["wall_time_s"] = round(float(wall_time_s), 3)
    record.update(extra)
    return record


def config_hash(config: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-serialisable config (keys sorted)."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def claim_dir(path: str | os.PathLike, cfg, from_json, what: str, write: bool = True) -> None:
    """Refuse an output folder made with another config, in one sentence (ValueError); record ``cfg`` there.

    ``cfg`` has ``identity()`` (the fields that decide what the folder holds) and ``to_json()``;
    ``from_json`` rebuilds the recorded config. Shared by DDPM runs and classifier folders: a re-run
    with the same config resumes, anything else is refused."""
    folder = Path(path)
    path = folder / "config.json"
    new = cfg.identity()
    if path.exists():
        try:
            old = from_json(json.loads(path.read_text())["config"]).identity()
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a dmrules {what} config ({exc}); use a new --out") from None
        diff = sorted(k for k in new if old.get(k) != new.get(k))
        if diff:
            shown = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
            raise ValueError(f"{folder} holds a {what} of another config ({shown}); use a new --out or the same options")
    if write:
        write_json(path, {"config": cfg.to_json(), "provenance": provenance(config=new)})


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """``json.loads`` of a file; a truncated or garbled file is a ValueError naming it (the CLI: one line,
    exit 2), never a bare JSONDecodeError. The file is left in place."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable {what} (truncated or corrupt: {exc}); move it away "
                         "(or delete it) to start that part over") from None


# ---------------------------------------------------------------------------------------------------
# Output locations are checked before any work (issue 12): a file where a folder is wanted, a folder
# where a file is wanted, a read-only or permission-denied place are one line and exit 2.

FILE_SUFFIXES = (".parquet", ".json", ".csv", ".npy", ".npz", ".png", ".md", ".txt", ".jsonl", ".pt")


def output_kind(path: str | os.PathLike) -> str:
    """``file`` when ``path`` ends in a known file suffix (``F.parquet``), else ``dir``."""
    return "file" if Path(path).suffix.lower() in FILE_SUFFIXES else "dir"


def _probe(folder: Path) -> None:
    """Create and remove a temporary file in ``folder`` (OSError when it cannot be written)."""
    fd, name = _mkstemp(prefix=".dmrules-probe.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_output(path: str | os.PathLike, kind: str | None = None, flag: str = "--out") -> Path:
    """Raise ValueError (one sentence) unless ``path`` can be written as a ``kind`` (file | dir)."""
    path = Path(path)
    kind = kind or output_kind(path)
    if path.exists():
        if kind == "file" and path.is_dir():
            raise ValueError(f"{flag} {path} is a directory; give a file name (such as {path / ('out' + (path.suffix or '.parquet'))})")
        if kind == "dir" and not path.is_dir():
            raise ValueError(f"{flag} {path} is an existing file; give a directory")
    folder = path if (kind == "dir" and path.is_dir()) else path.parent
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"cannot create {flag} {path}: {probe} is a file, not a directory")
    try:
        _probe(probe)
    except OSError as exc:
        raise ValueError(f"cannot write {flag} {path}: {exc.strerror or exc} ({probe})") from None
    return path


def write_table(df, path: str | os.PathLike, provenance_record: dict | None = None) -> Path:
    """Write a pandas DataFrame as parquet, atomically, with provenance in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix != ".parquet":
        raise ValueError(f"result tables are parquet files: {path} should end in .parquet")
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"dmrules"] = json.dumps(provenance_record or provenance(), default=_json_default).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_table(path: str | os.PathLike):
    """Read a parquet table written by :func:`write_table`; provenance in ``df.attrs['provenance']``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, ValueError) as exc:  # truncated or not parquet: name the file (issue 12)
        raise ValueError(f"{path} is not a readable parquet table (truncated or corrupt: {exc}); move it away "
                         "(or delete it) to make it again") from None
    df = table.to_pandas()
    raw = (table.schema.metadata or {}).get(b"dmrules")
    df.attrs["provenance"] = json.loads(raw) if raw else {}
    return df
