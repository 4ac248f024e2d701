"""The CLI frame: help, one-line errors with exit code 2, fast start."""

import subprocess
import sys


def test_help_lists_commands(run_cli):
    rc, out, _ = run_cli("--help")
    assert rc == 0
    for name in ("theory", "sims", "data", "evaluate", "train", "sample", "run"):
        assert name in out


def test_unknown_command_is_one_line_exit_2(run_cli):
    rc, out, err = run_cli("no-such-command")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "error" in err


def test_python_dash_m_and_fast_start():
    proc = subprocess.run([sys.executable, "-m", "dmrules", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "dmrules" in proc.stdout
    # --help must not import torch (the CLI imports heavy packages lazily)
    code = "import sys; from dmrules.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr
