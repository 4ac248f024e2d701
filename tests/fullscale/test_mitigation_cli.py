"""The mitigation CLI: `dmrules classifier train|sweep`, `dmrules sample --guide`, `dmrules filter`,
`dmrules mitigate` (smoke presets), and one-line errors with exit code 2 on bad input."""

import json

import numpy as np
import pytest
import torch

from dmrules import results as R
from dmrules.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")


def _ok(*argv):
    rc = main([str(a) for a in argv])
    assert rc == 0, argv


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A smoke DDPM run of Task A (trained on centred images, so guides need its mean image), samples,
    and smoke classifiers (A noisy / clean, B noisy, A at 16 px)."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("mitigation")
    _ok("train", "--task", "A", "--preset", "smoke", "--center", "--device", "cpu", "--out", d / "run")
    assert torch.load(d / "run" / "checkpoint.pt", weights_only=True).get("offset") is not None
    _ok("sample", d / "run", "--n", 4, "--sampler", "ddim", "--steps", 3, "--no-png", "--device", "cpu",
        "--out", d / "samples")
    for name, extra in (("A-noisy", ["--task", "A", "--noisy"]),
                        ("A-clean", ["--task", "A", "--clean", "--arch", "mlp"]),
                        ("B-noisy", ["--task", "B", "--noisy"]),
                        ("A-noisy16", ["--task", "A", "--noisy", "--size", 16]),
                        ("A-clean16", ["--task", "A", "--clean", "--size", 16])):
        _ok("classifier", "train", *extra, "--preset", "smoke", "--device", "cpu", "--out", d / name)
    return d


def test_classifier_train_prints_and_saves_the_held_out_accuracy(made, run_cli):
    saved = json.loads((made / "A-noisy" / "metrics.json").read_text())
    assert saved["kind"] == "noisy" and saved["arch"] == "unet" and 0 <= saved["acc"] <= 1
    assert set(saved["acc_t"]) >= {"0", "500", "999"} and saved["acc_clean"] == saved["acc_t"]["0"]
    rc, out, _ = run_cli("classifier", "train", "--task", "A", "--noisy", "--preset", "smoke", "--device", "cpu",
                         "--out", made / "A-noisy")
    assert rc == 0 and "finished" in out and f"held-out accuracy: {saved['acc']:.4f}" in out
    table = R.read_table(made / "A-noisy" / "accuracy.parquet")
    assert set(table.noise_t) >= {"uniform", "0", "999"} and table.attrs["provenance"]["config"]["task"] == "A"


def test_guidance_with_scale_zero_reproduces_unguided_samples_through_the_cli(made):
    base = ["sample", made / "run", "--n", 3, "--no-png", "--device", "cpu"]
    _ok(*base, "--sampler", "ddim", "--steps", 3, "--out", made / "s-plain")
    _ok(*base, "--sampler", "ddim", "--steps", 3, "--guide", made / "A-noisy", "--scale", 0, "--out", made / "s-zero")
    _ok(*base, "--sampler", "ddim", "--steps", 3, "--guide", made / "A-noisy", "--scale", 3000, "--out", made / "s-big")
    plain, zero, big = (np.load(made / s / "images.npy") for s in ("s-plain", "s-zero", "s-big"))
    assert np.array_equal(plain, zero)
    assert not np.array_equal(plain, big)
    meta = json.loads((made / "s-big" / "meta.json").read_text())["request"]
    assert meta["scale"] == 3000 and meta["schedule"] == "constant" and meta["guide"].endswith("A-noisy")


def test_filter_keeps_exactly_the_rule_conforming_predictions(made, run_cli):
    rc, out, _ = run_cli("filter", "--task", "A", "--classifier", made / "A-clean", made / "samples",
                         "--min-prob", 0.2, "--device", "cpu", "--out", made / "filtered")
    assert rc == 0
    pred = R.read_table(made / "filtered" / "predictions.parquet")
    probs = pred[["p0", "p1", "p2"]].to_numpy()
    expect = (probs.argmax(1) == 1) & (probs[:, 1] > 0.2)
    assert (pred.kept.to_numpy() == expect).all() and len(pred) == 4
    kept = np.load(made / "filtered" / "images.npy")
    assert np.array_equal(kept, np.load(made / "samples" / "images.npy")[expect])
    assert json.loads(out.strip().splitlines()[-1])["kept"] == int(expect.sum())
    rc, out, _ = run_cli("filter", "--task", "A", "--classifier", made / "A-clean", made / "samples",
                         "--min-prob", 0.2, "--device", "cpu", "--out", made / "filtered")
    assert rc == 0 and "skipped" in out
    # a noisy classifier filters too (read at t = 0)
    rc, out, _ = run_cli("filter", "--task", "A", "--classifier", made / "A-noisy", made / "samples", "--device", "cpu",
                         "--out", made / "filtered-noisy")
    assert rc == 0 and len(R.read_table(made / "filtered-noisy" / "predictions.parquet")) == 4


def _bad_cases(d):
    run, samples = d / "run", d / "samples"
    sample = ["sample", run, "--n", 2, "--no-png", "--device", "cpu", "--out", d / "never"]
    return [
        (["classifier", "train", "--task", "A", "--arch", "conv", "--noisy", "--preset", "smoke", "--out", d / "x"],
         "no noisy conv"),
        (["classifier", "train", "--task", "E", "--preset", "smoke", "--out", d / "x"], "unknown task 'E'"),
        (["classifier", "train", "--task", "A", "--preset", "smoke", "--lr", "-1", "--out", d / "x"], "--lr"),
        ([*sample, "--guide", d / "B-noisy"], "classifier for Task B"),
        ([*sample, "--guide", d / "A-noisy16"], "16 px"),
        ([*sample, "--guide", d / "A-clean"], "clean mlp classifier"),
        ([*sample, "--guide", d / "A-noisy", "--schedule", "cosine"], "unknown guidance schedule 'cosine'"),
        ([*sample, "--scale", "3"], "need --guide"),
        ([*sample, "--guide", d / "nowhere"], "is not a classifier"),
        (["filter", "--task", "B", "--classifier", d / "A-clean", samples, "--out", d / "never"],
         "classifier for Task A"),
        (["filter", "--task", "A", "--classifier", d / "A-clean16", samples, "--out", d / "never"], "16 px"),
        (["filter", "--task", "A", "--classifier", d / "A-clean", d / "nowhere", "--out", d / "never"],
         "does not exist"),
        (["filter", "--task", "A", "--classifier", d / "A-clean", samples, "--min-prob", "1.5", "--out", d / "never"],
         "min-prob"),
        (["mitigate", "--tasks", "A", "--preset", "smoke", "--arms", "cosine:1", "--out", d / "m.parquet"],
         "unknown guidance schedule"),
        (["mitigate", "--tasks", "A,B", "--run", d / "run", "--out", d / "m.parquet"], "pattern"),
        (["mitigate", "--tasks", "A,Q", "--out", d / "m.parquet"], "unknown task 'Q'"),
        (["mitigate", "--tasks", "A", "--preset", "smoke", "--out", d / "m.csv"], "parquet"),
    ]


def test_bad_inputs_give_one_line_and_exit_2(made, run_cli):
    for argv, msg in _bad_cases(made):
        rc, out, err = run_cli(*argv)
        assert rc == 2, (argv, out, err)
        assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not (made / "never").exists()


def test_mitigate_smoke_writes_one_row_per_arm_and_resumes(made, run_cli, tmp_path):
    argv = ["mitigate", "--tasks", "A", "--preset", "smoke", "--run", made / "run", "--work", tmp_path / "w",
            "--device", "cpu", "--out", tmp_path / "m.parquet"]
    rc, out, err = run_cli(*argv)
    assert rc == 0, err
    df = R.read_table(tmp_path / "m.parquet")
    assert list(df.arm) == ["unguided", "unguided+filtered", "guided", "guided+filtered", "guided", "guided+filtered"]
    assert list(df.schedule) == ["none", "none", "constant", "constant", "piecewise", "piecewise"]
    assert {"r2", "slope", "conform_pct", "coarse_violation_rate", "kept_frac", "clean_p1", "n"} <= set(df.columns)
    assert (df[~df.filtered].n == 4).all() and df.attrs["provenance"]["config"]["tasks"] == ["A"]
    rc, out, _ = run_cli(*argv)  # everything is there: skips and rewrites the same table
    assert rc == 0 and "skipped" in out
    assert R.read_table(tmp_path / "m.parquet")[["arm", "n", "kept_frac"]].equals(df[["arm", "n", "kept_frac"]])


def test_sweep_tabulates_accuracy_beside_the_paper(tmp_path, run_cli):
    rc, out, err = run_cli("classifier", "sweep", "--tasks", "C", "--preset", "smoke", "--device", "cpu",
                           "--out", tmp_path / "acc.parquet")
    assert rc == 0, err
    df = R.read_table(tmp_path / "acc.parquet")
    assert (tmp_path / "acc.work" / "C-clean-resnet8" / "classifier.pt").exists()
    clean = df[df.kind == "clean"].set_index("arch")
    assert clean.loc["resnet8", "paper_acc"] == pytest.approx(0.8017) and clean.loc["mlp", "paper_acc"] == 0.4583
    assert set(df[df.kind == "noisy"].arch) == {"unet", "mlp"} and df[df.kind == "noisy"].paper_acc.isna().all()


def test_paired_deltas_match_the_metrics_and_bracket_a_clear_gain():
    import pandas as pd

    from fullscale.classify.experiment import paired_deltas

    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 0.2, 400)

    def table(noise):
        return pd.DataFrame({"parsed": np.ones(400, bool), "rule_x": x, "rule_y": x + noise * rng.standard_normal(400),
                             "coarse_ok": np.ones(400, bool), "reason": ""})

    base = table(0.03)
    same = base.copy()
    assert paired_deltas("A", base, same) == pytest.approx({k: 0.0 for k in paired_deltas("A", base, same)})
    better = table(0.01)  # a tighter fit: R^2 rises clearly
    d = paired_deltas("A", base, better)
    from fullscale import evaluate as ev

    assert d["r2_delta"] == pytest.approx(ev.summarize("A", better)["r2"] - ev.summarize("A", base)["r2"])
    assert d["conform_delta"] == pytest.approx(ev.summarize("A", better)["conform_pct"]
                                               - ev.summarize("A", base)["conform_pct"])
    assert 0 < d["r2_delta_lo"] < d["r2_delta"] < d["r2_delta_hi"]
    keep = x > 0.1  # a filter's mask: the metrics of the kept rows
    kept = paired_deltas("A", base, better, keep)
    assert kept["r2_delta"] == pytest.approx(ev.summarize("A", better[keep])["r2"] - ev.summarize("A", base)["r2"])
