"""Writing results safely and with provenance (shared by sims, fullscale and reports).

- Every file is written atomically: to a temporary file in the same folder, then ``os.replace``;
  a killed command never leaves a half-written table or checkpoint behind.
- Every result table carries provenance: git commit, device, library versions, the command or
  config that made it, and wall time. Parquet tables keep it in their schema metadata (key
  ``dmrules``) and :func:`read_table` returns it as ``df.attrs["provenance"]``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator


# the process umask, read once (os.umask can only be read by setting it)
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes the file 0600; give it the mode a plain open() would
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
        torch.save(obj, tmp)
    return Path(path)


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
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    df = table.to_pandas()
    raw = (table.schema.metadata or {}).get(b"dmrules")
    df.attrs["provenance"] = json.loads(raw) if raw else {}
    return df
