"""``dmrules sims fl | rules | digits``: tables with the interface columns, skip / resume, errors."""

import pytest

from dmrules.results import read_table

FL_TINY = ["sims", "fl", "--ns", "6,10", "--snrs", "0.2,0.6", "--seeds", "0", "--d", "40", "--m", "4",
           "--diffusion-steps", "6", "--classification-steps", "6"]
RULES_TINY = ["sims", "rules", "--widths", "3", "--ns", "32", "--steps", "4", "--d", "6", "--seeds", "0", "--n-eval", "64"]
DIGITS_TINY = ["sims", "digits", "--ns", "10", "--snrs", "0.3", "--seeds", "0", "--diffusion-steps", "5",
               "--classification-steps", "5"]


def test_fl_table_has_interface_columns_and_rerun_skips(run_cli, tmp_path):
    out = tmp_path / "fl.parquet"
    rc, stdout, err = run_cli(*FL_TINY, "--out", out)
    assert rc == 0, err
    df = read_table(out)
    need = {"objective", "n", "d", "m", "snr", "n_snr2", "seed", "step", "signal", "noise", "loss",
            "signal_pos", "signal_neg", "noise_max", "test_acc"}
    assert need <= set(df.columns)
    assert set(df.objective) == {"diffusion", "classification"}
    assert set(df.experiment) == {"grid", "fig2"} and set(df.n_snr2.round(2)) >= {0.75, 6.75}
    assert df.attrs["provenance"]["config"]["ns"] == [6, 10]
    assert "diffusion: log-log slope" in stdout and "classification:" in stdout
    assert not list(tmp_path.glob(".fl.parquet.parts-*"))  # parts removed once the table is written
    rc, stdout, _ = run_cli(*FL_TINY, "--out", out)
    assert rc == 0 and "[skip]" in stdout and "up to date" in stdout
    rc, stdout, _ = run_cli(*FL_TINY, "--seeds", "1", "--out", out)  # another config: recomputed
    assert rc == 0 and "[skip]" not in stdout and set(read_table(out).seed) == {1}


def test_rules_table_has_interface_columns(run_cli, tmp_path):
    out = tmp_path / "r.parquet"
    rc, stdout, err = run_cli(*RULES_TINY, "--out", out)
    assert rc == 0, err
    df = read_table(out)
    assert {"network", "m", "n", "step", "t", "error", "bound", "psi_mean", "psi_var", "bias2", "variance",
            "error_scaled", "bound_scaled"} <= set(df.columns)
    assert set(df.network) == {"patchwise", "joint"} and set(df.activation) == {"quadratic", "relu"}
    assert (df.bound > 0).all() and df.error.notna().all()
    assert "E_t / L_t" in stdout


def test_digits_table(run_cli, tmp_path):
    out = tmp_path / "d.parquet"
    rc, _, err = run_cli(*DIGITS_TINY, "--out", out)
    assert rc == 0, err
    df = read_table(out)
    assert set(df.objective) == {"diffusion", "classification"} and (df.d == 64).all()
    assert set(df.classes) == {"0,1"}


def test_killed_sweep_resumes_from_finished_groups(tmp_path):
    from sims import experiments as E

    calls = []

    def group(key, fail=False):
        def run(ckpt, bar):
            calls.append(key)
            if fail:
                raise KeyboardInterrupt
            return [{"g": key, "step": 0}]
        return E.Group(key, 1, run)

    out = tmp_path / "x.parquet"
    with pytest.raises(KeyboardInterrupt):
        E.run_sweep([group("a"), group("b", fail=True)], out, {"c": 1}, log=lambda *_: None)
    logs = []
    table = E.run_sweep([group("a"), group("b")], out, {"c": 1}, log=logs.append)
    assert calls == ["a", "b", "b"]  # "a" was not retrained
    assert any("[skip] group a" in line for line in logs)
    assert list(table.g) == ["a", "b"] and E.up_to_date(out, {"c": 1}) and not E.up_to_date(out, {"c": 2})


@pytest.mark.parametrize("argv, message", [
    (["sims", "fl", "--out", "x.csv"], "must name a .parquet"),
    (["sims", "fl", "--objectives", "regression", "--out", "x.parquet"], "unknown objective"),
    (["sims", "fl", "--snrs", "-1", "--out", "x.parquet"], "SNR"),
    (["sims", "fl", "--ns", "1", "--out", "x.parquet"], "at least 2"),
    (["sims", "fl", "--activation", "relu2", "--out", "x.parquet"], "closed-form"),
    (["sims", "fl", "--activation", "tanh", "--expectation", "sampled", "--out", "x.parquet"], "unknown activation"),
    (["sims", "fl", "--diffusion-lr", "0", "--out", "x.parquet"], "learning rate"),
    (["sims", "fl", "--t", "0", "--out", "x.parquet"], "OU time"),
    (["sims", "fl", "--m", "0", "--out", "x.parquet"], "positive integer"),
    (["sims", "rules", "--networks", "conv", "--out", "x.parquet"], "unknown network"),
    (["sims", "rules", "--activations", "gelu", "--out", "x.parquet"], "unknown activation"),
    (["sims", "rules", "--eval-steps", "1000", "--out", "x.parquet"], "0-999"),
    (["sims", "digits", "--classes", "3", "--out", "x.parquet"], "two different digits"),
    (["sims", "fl", "--preset", "huge", "--out", "x.parquet"], "invalid choice"),
    (["sims", "fl"], "required"),
])
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(*argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_cuda_flag_without_cuda(run_cli, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    rc, _, err = run_cli(*FL_TINY, "--device", "cuda", "--out", tmp_path / "x.parquet")
    assert rc == 2 and "no CUDA device" in err


def test_bare_sims_names_its_actions(run_cli):
    rc, out, err = run_cli("sims")  # issue 12: a missing action is one line on stderr, exit 2 (not help on stdout)
    assert rc == 2 and not out and "fl" in err and "rules" in err and "digits" in err
