"""The noise process owns time (issue 13): VP for any T, rectified flow, and no step count elsewhere."""

import math
from pathlib import Path

import pytest
import torch

from fullscale import rng
from theory.schedules import FlowProcess, VPProcess, ddpm_schedule, make_process

ROOT = Path(__file__).resolve().parents[2]


def test_vp_default_is_the_paper_schedule_and_matches_the_old_draws():
    p = VPProcess()
    assert (p.T, p.t_min, p.t_max) == (1000, 1, 999)
    assert torch.equal(p.schedule.alpha_bar, ddpm_schedule().alpha_bar)
    keys = rng.derive(5, torch.arange(3000))
    # the old loss drew t with rng.randint(key, 1, 1000): the process's map of the same uniforms agrees
    assert torch.equal(p.train_time(rng.unit64(keys)), rng.randint(keys, 1, 1000))


@pytest.mark.parametrize("T", [10, 50, 1000, 4000])
def test_vp_any_T_grid_and_coefficients(T):
    p = VPProcess(T=T)
    anc = p.ancestral_grid()
    assert anc[0] == T - 1 and anc[-1] == 1 and len(anc) == T - 1
    g = p.grid(min(7, T - 1))
    assert g[0] == T - 1 and g[-1] == 1 and g == sorted(set(g), reverse=True)
    a, s = p.coefficients(torch.arange(T))
    assert torch.allclose(a * a + s * s, torch.ones(T, dtype=torch.float64))
    t = p.train_time(torch.tensor([0.0, 0.5, 1 - 1e-12], dtype=torch.float64))
    assert int(t.min()) >= 1 and int(t.max()) <= T - 1
    with pytest.raises(ValueError, match="steps must be in"):
        p.grid(T)


def test_vp_ou_pair_and_time_agree_with_the_ou_process():
    p = VPProcess()
    i = torch.tensor([1, 100, 500, 999])
    a, b = p.ou_pair(i)
    t = p.ou_time(i)
    assert torch.allclose(a, torch.exp(-t)) and torch.allclose(b, torch.sqrt(-torch.expm1(-2 * t)))


def test_vp_conditioning_is_the_index():
    p = VPProcess()
    assert torch.equal(p.cond(torch.tensor([1, 999])), torch.tensor([1, 999]))
    assert p.cond(torch.tensor([3.0])).dtype == torch.int64


def test_flow_process_interpolates_and_has_the_same_snr_ou_pair():
    p = FlowProcess()
    x0, eps = torch.full((2, 3), 2.0), torch.full((2, 3), -1.0)
    tau = torch.tensor([0.25, 1.0])
    xt = p.noise(x0, eps, tau)
    assert torch.allclose(xt[0], torch.full((3,), 0.75 * 2 - 0.25)) and torch.allclose(xt[1], eps[1])
    g = p.grid(4)
    assert g == [1.0, 0.75, 0.5, 0.25, 0.0]
    a, b = p.ou_pair(torch.tensor([0.3], dtype=torch.float64))
    assert math.isclose(float(a / b), 0.7 / 0.3, rel_tol=1e-12) and math.isclose(float(a * a + b * b), 1.0)
    # the SNR-matched DDPM index of tau: monotone, from ~0 (clean) to the noisiest step
    idx = [p.guidance_index(t) for t in (0.01, 0.3, 0.7, 0.99)]
    assert idx == sorted(idx) and idx[0] >= 1 and idx[-1] <= 999
    assert torch.allclose(p.cond(torch.tensor([0.5])), torch.tensor([500.0]))


def test_make_process_by_name():
    assert make_process("vp", T=20).T == 20 and make_process("flow").kind == "flow"
    with pytest.raises(ValueError, match="unknown noise process"):
        make_process("ve")


def test_no_literal_999_in_the_sampling_and_training_code():
    """Issue 13: the step count lives in the noise process; samplers, losses, trainer and CLI ask it
    (a number token 999 in code, not in docstrings or comments, fails)."""
    import io
    import tokenize

    files = ["fullscale/diffusion.py", "fullscale/samplers.py", "fullscale/objectives.py", "fullscale/train.py",
             "fullscale/generate.py", "fullscale/guidance.py", "dmrules/commands/ddpm.py", "fullscale/presets.py"]
    bad = []
    for f in files:
        toks = tokenize.generate_tokens(io.StringIO((ROOT / f).read_text()).readline)
        bad += [f"{f}:{t.start[0]}" for t in toks if t.type == tokenize.NUMBER and t.string == "999"]
    assert not bad, bad


def test_step_noise_streams_never_meet_the_initial_noise_for_any_T():
    from fullscale import samplers

    seeds = torch.arange(3)
    x_T = samplers.initial_noise(seeds, (4,))
    for i in (1, 999, 1000, 1001, 3999):
        assert not torch.equal(samplers.step_noise(seeds, i, (4,)), x_T)
    assert not torch.equal(samplers.step_noise(seeds, 1000, (4,)), samplers.step_noise(seeds, 1001, (4,)))
