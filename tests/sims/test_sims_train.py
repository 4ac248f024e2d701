"""Stacked training: stacked == one by one (1e-6, float64), the exact span reduction, resume."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from sims import fl, rules
from sims.train import Checkpoint, gradient_descent, log_steps

COLS = ["signal", "signal_pos", "signal_neg", "noise", "noise_max", "signal_inc", "noise_inc", "loss"]


def _models(objective, d=40, m=4):
    # different n (padding), SNR and seeds inside one stack
    return [fl.FLModel(objective, n, snr, seed, d=d, m=m) for n, snr, seed in
            [(6, 0.3, 0), (11, 0.15, 1), (8, 0.6, 2)]]


def _setups():
    return {
        "diffusion-closed": fl.DiffusionSetup(lr=0.05, steps=25),
        "diffusion-sampled": fl.DiffusionSetup(lr=0.05, steps=25, expectation="sampled", draws=3, t=(0.1, 0.3)),
        "classification": fl.ClassificationSetup(lr=20.0, steps=25, n_test=30),
    }


def _frame(rows):
    return pd.DataFrame(rows).sort_values(["n", "snr", "seed", "step"]).reset_index(drop=True)


@pytest.mark.parametrize("name", list(_setups()))
def test_stacked_equals_one_by_one(name):
    setup = _setups()[name]
    models = _models(name.split("-")[0])
    rows, W = fl.train_group(models, setup, n_log=6, return_params=True)
    single = []
    for i, model in enumerate(models):
        r, Wi = fl.train_group([model], setup, n_log=6, return_params=True)
        single += r
        k = Wi.shape[-1]  # the stack pads coordinates with zeros beyond the model's own span
        torch.testing.assert_close(W[i, ..., :k], Wi[0], rtol=1e-6, atol=1e-12)
        assert torch.all(W[i, ..., k:] == 0)
    a, b = _frame(rows), _frame(single)
    cols = COLS + (["test_acc"] if name == "classification" else [])
    pd.testing.assert_frame_equal(a[cols], b[cols], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("objective", ["diffusion", "classification"])
def test_span_reduction_is_exact(objective):
    """GD in the coordinates of span{W0, data} is GD in R^d (sims.train.span_basis)."""
    setup = _setups()["diffusion-closed" if objective == "diffusion" else "classification"]
    models = _models(objective, d=60)
    full, reduced = fl.train_group(models, setup, n_log=6, reduce=False), fl.train_group(models, setup, n_log=6)
    assert pd.DataFrame(reduced)["loss"].notna().all()
    pd.testing.assert_frame_equal(_frame(full)[COLS], _frame(reduced)[COLS], rtol=1e-8, atol=1e-12)


def test_reduction_refused_where_not_exact():
    with pytest.raises(ValueError, match="exact only"):
        fl.train_group(_models("diffusion"), _setups()["diffusion-sampled"], reduce=True)


def test_rules_stacked_equals_one_by_one():
    sweep = rules.RulesSweep(ns=(32, 64), seeds=(0, 1), d=6, steps=12, batch=16, n_eval=64, n_log=4,
                             eval_steps=(50, 300))
    for act in ("quadratic", "relu"):
        stacked = pd.DataFrame(rules.train_group("patchwise", act, 5, sweep, dtype=torch.float64))
        single = []
        for n, s in sweep.members():
            one = dataclasses.replace(sweep, ns=(n,), seeds=(s,))
            single += rules.train_group("patchwise", act, 5, one, dtype=torch.float64)
        keys = ["n", "seed", "step", "ddpm_step"]
        a = stacked.sort_values(keys).reset_index(drop=True)
        b = pd.DataFrame(single).sort_values(keys).reset_index(drop=True)
        cols = ["psi_mean", "psi_var", "error", "loss", "q50"]
        pd.testing.assert_frame_equal(a[cols], b[cols], rtol=1e-6, atol=1e-10)
        assert (a.step.max() == 12) and a.error.notna().all()


class _Kill:
    """A progress bar that interrupts training after ``after`` updates (a killed run)."""

    def __init__(self, after):
        self.after, self.calls = after, 0

    def update(self, k):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt


def test_fl_resume_after_kill_gives_the_same_rows(tmp_path):
    setup = _setups()["diffusion-sampled"]  # with per-model noise streams to restore
    models = _models("diffusion")
    full = _frame(fl.train_group(models, setup, n_log=6))
    ckpt = Checkpoint(tmp_path / "c.pt", every_s=0.0)
    with pytest.raises(KeyboardInterrupt):
        fl.train_group(models, setup, n_log=6, checkpoint=ckpt, progress=_Kill(13))
    assert ckpt.load()["step"] == 13
    resumed = _frame(fl.train_group(models, setup, n_log=6, checkpoint=Checkpoint(tmp_path / "c.pt")))
    pd.testing.assert_frame_equal(full[COLS], resumed[COLS], rtol=1e-12, atol=0)


def test_rules_resume_after_kill_gives_the_same_rows(tmp_path):
    sweep = rules.RulesSweep(ns=(32,), d=6, steps=10, batch=8, n_eval=32, n_log=4, eval_steps=(100,))
    full = pd.DataFrame(rules.train_group("joint", "relu", 3, sweep, dtype=torch.float64))
    ckpt = Checkpoint(tmp_path / "r.pt", every_s=0.0)
    with pytest.raises(KeyboardInterrupt):
        rules.train_group("joint", "relu", 3, sweep, dtype=torch.float64, checkpoint=ckpt, progress=_Kill(6))
    again = pd.DataFrame(rules.train_group("joint", "relu", 3, sweep, dtype=torch.float64,
                                           checkpoint=Checkpoint(tmp_path / "r.pt")))
    pd.testing.assert_frame_equal(full, again)


def test_gradient_descent_is_plain_gd_per_model():
    # two quadratics with different curvature and learning rates: closed-form trajectories
    c = torch.tensor([1.0, 3.0], dtype=torch.float64)
    lr = torch.tensor([0.1, 0.05], dtype=torch.float64)
    seen = {}
    out = gradient_descent(torch.ones(2, 1, dtype=torch.float64), lambda p, s: 0.5 * c * p[:, 0] ** 2, lr, 7,
                           lambda s, p, l: seen.setdefault(s, p.clone()), log_at=[0, 7])
    torch.testing.assert_close(out[:, 0], (1 - lr * c) ** 7)
    assert set(seen) == {0, 7}


def test_log_steps():
    s = log_steps(1000, 20)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s))
    assert {1, 2}.issubset(s) and len(s) <= 21
    assert log_steps(0) == [0]
    assert math.isclose(len(log_steps(5000, 40)), 40, abs_tol=8)


@pytest.mark.parametrize("times", [{"t": (0.1, 0.4)}, {"t_range": (0.1, 0.5), "t_points": 64}])
def test_sampled_loss_estimates_the_closed_form(times):
    """Sampled eps (and t) is an unbiased estimate of the closed-form DSM loss at the same weights."""
    model = fl.FLModel("diffusion", 4, 0.5, 0, d=12, m=3, sigma0=0.4)
    losses = {}
    for expectation in ("closed", "sampled"):
        setup = fl.DiffusionSetup(expectation=expectation, draws=4000, **times)
        st = fl.build_stack([model], [model.data()], False, torch.float64, "cpu")
        fn = fl.make_loss("diffusion", setup, st, [model])
        losses[expectation] = torch.stack([fn(st.W0, s)[0] for s in range(8)])
    closed, sampled = losses["closed"], losses["sampled"]
    assert torch.all(closed == closed[0])
    se = sampled.std() / math.sqrt(len(sampled))
    assert abs(sampled.mean() - closed[0]) < 4 * se + 1e-9, (sampled, closed[0])
    assert abs(closed[0] - 2 * 12) > 20 * se  # the test can tell the loss from its constant part
