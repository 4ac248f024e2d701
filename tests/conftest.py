"""Shared test set-up: CPU only, float64 where maths is checked, one torch thread per xdist worker."""

import os

import pytest
import torch

# `make test` runs two xdist workers on two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test (tiny tensors; two threads on a loaded 2-core machine are
    much slower), restored afterwards. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def gen():
    """A seeded torch generator (CPU)."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def run_cli(capsys):
    """Run the dmrules CLI in-process: returns (exit code, stdout, stderr)."""
    from dmrules.cli import main

    def _run(*argv):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse exits on --help and on bad flags
            rc = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return rc, out.out, out.err

    return _run


def garbage_images() -> list:
    """The evaluators' fuzz set (one owner: tests/fullscale/test_evaluate.py and test_paper_protocol.py):
    item 0 a good Task A render, 1-11 things no evaluator may read as a point."""
    import numpy as np

    from fullscale import tasks

    rng = np.random.default_rng(0)
    good, _ = tasks.render("A", 2, seed=0)
    return [
        good[0],
        np.full((32, 32, 3), 255, np.uint8),  # blank
        np.zeros((32, 32, 3), np.uint8),  # black
        rng.integers(0, 256, (32, 32, 3)).astype(np.uint8),  # noise
        good[1].mean(-1).astype(np.uint8),  # grayscale
        np.zeros((5, 5, 3), np.uint8),  # tiny
        np.zeros((32, 48, 3), np.uint8),  # not square
        np.full((32, 32, 3), np.nan),  # NaN floats
        None,  # unreadable
        np.dstack([good[1], np.full((32, 32), 255, np.uint8)]),  # RGBA, opaque
        np.zeros((0, 0, 3), np.uint8),  # empty
        np.full((1, 1, 3), 7, np.uint8),  # one pixel
    ]


@pytest.fixture
def garbage():
    return garbage_images()


def same_state(a, b) -> bool:
    """Nested checkpoint states equal bit for bit: same keys, lengths, tensor dtypes and values."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.fixture
def same():
    """:func:`same_state` for tests (checkpoint states compared bit for bit)."""
    return same_state
