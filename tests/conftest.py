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
