"""Samplers by name (issue 13): ddpm bit for bit as before, ddim, dpm++2m, euler, heun, guidance, seeds."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fullscale import diffusion, objectives, samplers
from fullscale.models import build
from theory import ddpm_schedule
from theory.schedules import FlowProcess, VPProcess

REF = Path(__file__).parent / "data" / "sampler_reference.npz"
VP = VPProcess()


def _reference_setup():
    """The net, seeds and x_T of tests/fullscale/data/make_sampler_reference.py (made with the code
    before issue 13 at commit e58c3f0)."""
    torch.manual_seed(0)
    base = build("unet-small", 16).eval()
    sab = (1 - ddpm_schedule().alpha_bar).sqrt().float()

    def net(x, t):
        c = sab[t.long()].view(-1, 1, 1, 1)
        return 0.97 * c * x + 0.3 * base(x, t)

    seeds = torch.tensor([3, 11], dtype=torch.int64)
    return net, seeds, samplers.initial_noise(seeds, (3, 16, 16))


def _guide(x, t):
    return torch.tanh(x) * 0.1


@pytest.mark.slow
def test_ddpm_is_bit_for_bit_the_sampler_before_issue_13():
    ref = np.load(REF)
    net, seeds, x = _reference_setup()
    assert np.array_equal(x.numpy(), ref["x_T"])
    assert np.array_equal(diffusion.ddpm_sample(net, x, seeds).numpy(), ref["ddpm"])
    out = samplers.ddpm(net, x, VP, seeds, variance="posterior", guide=_guide,
                        weight=lambda i: 2.0 if i < 500 else 0.5)
    assert np.array_equal(out.numpy(), ref["ddpm_post_guided"])


def test_ddim_is_bit_for_bit_the_sampler_before_issue_13():
    ref = np.load(REF)
    net, seeds, x = _reference_setup()
    assert np.array_equal(diffusion.ddim_sample(net, x, seeds, steps=10, eta=1.0).numpy(), ref["ddim10_eta1"])
    out = samplers.ddim(net, x, VP, seeds, steps=7, eta=0.0, guide=_guide, weight=1.5)
    assert np.array_equal(out.numpy(), ref["ddim7_eta0_guided"])
    # the same through the name table and with the eps objective given explicitly
    out2 = samplers.sample("ddim", net, x, VP, seeds, steps=10, eta=1.0, objective=objectives.get("eps"))
    assert np.array_equal(out2.numpy(), ref["ddim10_eta1"])


C = 0.3  # data = a point mass at C: every exact predictor sends every sampler to C


def _exact(name, process):
    """The exact network output of objective ``name`` for data = point mass at C (x = a C + s eps)."""
    obj = objectives.get(name, process)

    def net(x, cond):
        if process.kind == "vp":
            a, s = process.coefficients(cond)
        else:
            a, s = process.coefficients(cond.double() / process.cond_scale)
        a, s = a.float().view(-1, 1, 1, 1), s.float().view(-1, 1, 1, 1)
        x0 = torch.full_like(x, C)
        eps = (x - a * x0) / s
        return obj.target(x0, eps, a, s)

    return net, obj


@pytest.mark.parametrize("sampler,objective,steps", [
    ("ddim", "eps", 10), ("ddim", "x0", 10), ("ddim", "v", 10), ("dpm++2m", "eps", 5), ("dpm++2m", "x0", 5),
    ("dpm++2m", "v", 5), ("euler", "flow", 8), ("heun", "flow", 4)])
def test_every_sampler_reaches_a_point_mass_with_the_exact_predictor(sampler, objective, steps):
    process = FlowProcess() if objective == "flow" else VP
    net, obj = _exact(objective, process)
    seeds = torch.arange(4)
    x = samplers.initial_noise(seeds, (3, 4, 4))
    kw = {"steps": steps} | ({"eta": 0.0} if sampler == "ddim" else {})
    out = samplers.sample(sampler, net, x, process, seeds, objective=obj, **kw)
    assert torch.allclose(out, torch.full_like(out, C), atol=2e-4), float((out - C).abs().max())


def test_ddpm_with_the_exact_predictor_of_each_vp_objective_agrees():
    seeds = torch.arange(2)
    x = samplers.initial_noise(seeds, (3, 4, 4))
    outs = []
    for name in ("eps", "x0", "v"):
        net, obj = _exact(name, VP)
        outs.append(samplers.ddpm(net, x, VP, seeds, objective=obj, steps=list(range(60, 0, -1))))
    assert torch.allclose(outs[0], outs[1], atol=1e-4) and torch.allclose(outs[0], outs[2], atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "dpm++2m", "euler", "heun"])
def test_a_sample_does_not_depend_on_its_batch(sampler):
    flow = sampler in ("euler", "heun")
    process = FlowProcess() if flow else VP
    net, obj = _exact("flow" if flow else "eps", process)
    kw = {"steps": 4} | ({"eta": 1.0} if sampler == "ddim" else {})
    seeds = torch.arange(10, 16)
    full = samplers.sample(sampler, net, samplers.initial_noise(seeds, (3, 4, 4)), process, seeds, objective=obj, **kw)
    part = samplers.sample(sampler, net, samplers.initial_noise(seeds[2:4], (3, 4, 4)), process, seeds[2:4],
                           objective=obj, **kw)
    assert torch.equal(full[2:4], part)


def _gauss(name, process, sd=0.5):
    """The exact output of objective ``name`` for data ~ N(0, sd^2 I): the posterior means
    x0_hat = a sd^2 x / (a^2 sd^2 + s^2), eps_hat = s x / (a^2 sd^2 + s^2)."""
    obj = objectives.get(name, process)

    def net(x, cond):
        tt = cond if process.kind == "vp" else cond.double() / process.cond_scale
        a, s = (c.float().view(-1, 1, 1, 1) for c in process.coefficients(tt))
        den = a * a * sd * sd + s * s
        return obj.target(a * sd * sd * x / den, s * x / den, a, s)

    return net, obj


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++2m", "euler", "heun"])
def test_guidance_hook_moves_every_sampler_towards_the_guide(sampler):
    """A guide pushing every pixel up (grad log p = +1) raises the mean of the samples; weight 0 is the
    unguided sampler exactly."""
    flow = sampler in ("euler", "heun")
    process = FlowProcess() if flow else VP
    net, obj = _gauss("flow" if flow else "eps", process)
    calls = []

    def up(x, t):
        calls.append(t)
        return torch.ones_like(x)

    seeds = torch.arange(3)
    x = samplers.initial_noise(seeds, (3, 4, 4))
    kw = {} if sampler == "ddpm" else {"steps": 20}  # (at 6 steps 2M's extrapolation of the weight's jump overshoots)
    if sampler == "ddpm":
        kw["steps"] = list(range(40, 0, -1))
    plain = samplers.sample(sampler, net, x, process, seeds, objective=obj, **kw)
    zero = samplers.sample(sampler, net, x, process, seeds, objective=obj, guide=up, weight=0.0, **kw)
    # weight on the less noisy half only (DDPM index < 500, like the authors' piecewise schedule): at the
    # noisiest steps a constant push becomes a huge data-prediction shift (s^2 / a), which the 2M
    # multistep extrapolation overshoots (docs/ddpm.md, "Samplers")
    half = lambda i: 0.5 if i < 500 else 0.0  # noqa: E731
    guided = samplers.sample(sampler, net, x, process, seeds, objective=obj, guide=up, weight=half, **kw)
    assert torch.equal(plain, zero)
    assert calls and float(guided.mean()) > float(plain.mean()) + 1e-2


def test_network_calls():
    assert samplers.network_calls("ddpm", 0) == VP.t_max
    assert samplers.network_calls("heun", 25) == 49 and samplers.network_calls("dpm++2m", 20) == 20


@pytest.mark.parametrize("sampler,objective", [("ddpm", "flow"), ("ddim", "flow"), ("dpm++2m", "flow"),
                                               ("euler", "eps"), ("heun", "v")])
def test_a_sampler_objective_mismatch_is_one_sentence(sampler, objective):
    import re

    with pytest.raises(ValueError, match=re.escape(f"the {sampler} sampler cannot sample a model trained with the "
                                                   f"{objective} objective")):
        samplers.check_pair(sampler, objective)
    process = FlowProcess() if objective == "flow" else VP
    with pytest.raises(ValueError, match="sampler needs a"):
        samplers.sample(sampler, lambda x, t: x, torch.zeros(1, 3, 4, 4), process, torch.arange(1),
                        objective=objectives.get(objective, process), steps=2)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """An eps and a flow run at the smoke preset (seconds)."""
    from dmrules.cli import main

    root = tmp_path_factory.mktemp("objectives")
    for obj in ("eps", "flow"):
        assert main(["train", "--task", "A", "--preset", "smoke", "--objective", obj, "--out", str(root / obj),
                     "--device", "cpu", "--threads", "1"]) == 0
    return root


@pytest.mark.parametrize("run,argv", [
    ("eps", ["--sampler", "dpm++2m", "--steps", "3"]), ("eps", ["--sampler", "ddim", "--steps", "3", "--eta", "1"]),
    ("flow", []), ("flow", ["--sampler", "heun", "--steps", "2"])])
def test_cli_samples_every_sampler_of_its_objective(smoke_runs, tmp_path, run_cli, run, argv):
    rc, out, err = run_cli("sample", smoke_runs / run, "--n", 3, "--no-png", "--out", tmp_path / "s", *argv)
    assert rc == 0, err
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert np.load(tmp_path / "s" / "images.npy").shape == (3, 32, 32, 3)
    assert meta["request"]["sampler"] == (argv[1] if argv else "euler")
    assert ("objective" in meta["request"]) == (run == "flow")  # eps requests keep their old form


@pytest.mark.parametrize("run,argv,msg", [
    ("flow", ["--sampler", "ddpm"], "the ddpm sampler cannot sample a model trained with the flow objective"),
    ("eps", ["--sampler", "heun"], "the heun sampler cannot sample a model trained with the eps objective"),
    ("eps", ["--sampler", "dpm++2m", "--eta", "0.5"], "--eta is DDIM's"),
    ("eps", ["--sampler", "ddim", "--steps", "1000"], "ddim steps must be an integer in 1..999"),
    ("eps", ["--steps", "nan"], "argument --steps"),
])
def test_cli_refuses_a_mismatch_in_one_line(smoke_runs, tmp_path, run_cli, run, argv, msg):
    rc, _, err = run_cli("sample", smoke_runs / run, "--n", 2, "--out", tmp_path / "s", *argv)
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s" / "images.npy").exists()


def test_sampler_table_command_and_figure(smoke_runs, tmp_path, run_cli, monkeypatch):
    import pandas as pd

    out = tmp_path / "t.parquet"
    rc, _, err = run_cli("sampler-table", smoke_runs / "eps", smoke_runs / "flow", "--rows", "ddim:2:1,dpm++2m:2,heun:2",
                         "--n", 3, "--threads", 1, "--work", tmp_path / "w", "--out", out)
    assert rc == 0, err
    df = pd.read_parquet(out)
    assert sorted(zip(df.objective, df.sampler, df.network_calls)) == [("eps", "ddim", 2), ("eps", "dpm++2m", 2),
                                                                       ("flow", "heun", 3)]
    assert {"parse_rate", "coarse_violation_rate", "r2", "slope", "conform_pct", "residual_std",
            "wall_time_s"} <= set(df.columns)
    import reports.figures.sampler_table as fig

    monkeypatch.setattr(fig, "TABLE", out)
    monkeypatch.setattr(fig, "FLOW_TABLE", tmp_path / "absent.parquet")
    files = fig._draw({}, tmp_path / "fig")
    assert [f.name for f in files] == ["sampler_table.png", "sampler_table.md"]
    assert "DPM++2M 2" in files[1].read_text() and "Heun 2" in files[1].read_text()
    rc, _, err = run_cli("sampler-table", smoke_runs / "eps", "--rows", "ddim:2:7", "--work", tmp_path / "w",
                         "--out", out)
    assert rc == 2 and "bad sampler row 'ddim:2:7'" in err


def test_a_vp_classifier_guides_a_flow_model_through_the_same_snr_state():
    """ClassifierGuide(process=FlowProcess): the classifier sees x_tau / sqrt(a^2 + s^2) at the SNR-matched
    DDPM index, and the gradient is taken through that map (toolkit's derivation)."""
    import math

    from fullscale.guidance import ClassifierGuide

    seen = []

    class Clf(torch.nn.Module):
        def forward(self, x, t):
            seen.append((x.detach().clone(), t.clone()))
            s = x.flatten(1).sum(1, keepdim=True)
            return torch.cat([-s, s], 1)

    flow = FlowProcess()
    guide = ClassifierGuide(Clf(), process=flow)
    x = torch.randn(2, 3, 4, 4)
    tau = 0.3
    g = guide(x, torch.full((2,), tau))
    r = math.hypot(1 - tau, tau)
    assert torch.allclose(seen[-1][0], x / r, atol=1e-6)
    assert int(seen[-1][1][0]) == flow.guidance_index(tau) and seen[-1][1].dtype == torch.int64
    g_vp = ClassifierGuide(Clf())(x / r, torch.full((2,), flow.guidance_index(tau), dtype=torch.int64))
    assert torch.allclose(g, g_vp / r, atol=1e-6)


def test_sampler_goal_check_reads_the_two_seeds_spread():
    """goal_check: a row passes only with >= 20x fewer calls and both metrics' seed means inside the
    ancestral sampler's per-seed [min, max]; one seed cannot pass."""
    import pandas as pd

    from reports.figures.sampler_table import goal_check, seed_summary

    def row(seed, sampler, calls, viol, conf, steps=None, eta=None, objective="eps"):
        return {"task": "A", "train_seed": seed, "objective": objective, "sampler": sampler, "steps": steps, "eta": eta,
                "network_calls": calls, "n_samples": 256, "coarse_violation_rate": viol, "conform_pct": conf,
                "parse_rate": 1.0, "r2": 0.5, "residual_std": 0.02}

    rows = [row(0, "ddpm", 999, 0.02, 70.0), row(1, "ddpm", 999, 0.04, 60.0),
            row(0, "ddim", 49, 0.03, 66.0, 49, 1.0), row(1, "ddim", 49, 0.03, 64.0, 49, 1.0),  # inside: passes
            row(0, "ddim", 49, 0.15, 55.0, 49, 0.0), row(1, "ddim", 49, 0.13, 50.0, 49, 0.0),  # outside
            row(0, "ddim", 50, 0.03, 65.0, 50, 1.0), row(1, "ddim", 50, 0.03, 65.0, 50, 1.0)]  # 19.98x: too many calls
    g = goal_check(pd.DataFrame(rows)).set_index("row")
    assert g.loc["DDIM 49, eta 1", "goal met"] == "yes"
    assert g.loc["DDIM 49, eta 0", "goal met"] == "no" and g.loc["DDIM 50, eta 1", "goal met"] == "no"
    assert g.loc["DDIM 50, eta 1", "metrics inside the spread"] == "yes" and g.loc["DDIM 50, eta 1", ">= 20x fewer calls"] == "no"
    assert g.loc["DDIM 49, eta 1", "metrics no worse than ancestral"] == "yes"
    assert g.loc["DDIM 49, eta 0", "metrics no worse than ancestral"] == "no"
    assert g.loc["DDIM 49, eta 0", "coarse violations %: paired diff"] == "+11.0"
    better = goal_check(pd.DataFrame(rows[:2] + [row(0, "heun", 49, 0.01, 80.0, 25, objective="flow"),
                                                 row(1, "heun", 49, 0.01, 82.0, 25, objective="flow")])).iloc[0]
    assert better["goal met"] == "no" and better["metrics no worse than ancestral"] == "yes"  # better is outside
    s = seed_summary(pd.DataFrame(rows))
    anc = s[s.sampler == "ddpm"].iloc[0]
    assert anc.conform_pct == 65.0 and anc.conform_pct_hr == 5.0 and anc.seeds == "0,1"
    one = goal_check(pd.DataFrame(rows[::2]))  # seed 0 only
    assert set(one["goal met"]) == {"one seed"}
