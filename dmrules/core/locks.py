"""One writer per output (issue 12): an OS-level lock that dies with its process.

``dmrules.cli`` locks every command's ``--out`` for the command's duration; the writers underneath
(``fullscale.train.train``, ``generate.sample_run``, ``classify.train_classifier``,
``filtering.filter_samples``) lock the folder they write as well, so a library call is guarded too.
The lock is ``flock`` on ``.NAME.dmrules-lock`` beside the output: the kernel drops it when the
process dies (``kill -9`` included), so a killed run never blocks its resume.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)  # read once (os.umask can only be read by setting it)
os.umask(_UMASK)

_HELD: dict[str, list] = {}  # resolved lock file -> [fd, depth]; the lock is re-entrant within a process


def lock_file_of(target: str | os.PathLike) -> Path:
    """The lock file of an output (a folder or a file): ``.NAME.dmrules-lock`` beside it."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.dmrules-lock"


@contextlib.contextmanager
def lock(target: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``target`` (a run, sample or classifier folder, a table) while
    writing it. A second process asking for it gets a ValueError (one line: "in use by pid N"). The
    kernel drops the lock when the process dies (kill -9 included), so a stale lock never blocks a
    resume; the lock file is removed on release. Re-entrant within one process."""
    import fcntl

    lf = lock_file_of(target)
    key = str(lf)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    lf.parent.mkdir(parents=True, exist_ok=True)  # an OSError names the path (the CLI: one line)
    while True:
        fd = os.open(lf, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise ValueError(f"{Path(target)} is in use by another dmrules process (pid {pid}); wait for it "
                             f"to finish (or stop it) and re-run, or use another {what}") from None
        try:  # the holder we waited for may have removed the file: lock the file that is there now
            same = os.fstat(fd).st_ino == os.stat(lf).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:  # the holder's pid, for the message a second writer gets (informative: a full disk may refuse it)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            del _HELD[key]
            try:
                os.unlink(lf)
            except OSError:
                pass
            os.close(fd)
