"""Our noise process and samplers checked against the field's library, diffusers (issue 13, item 7).

diffusers' schedulers are pure Python (no weights are downloaded). Findings pinned here:
- alpha_bar: diffusers keeps it in float32; ours is float64; they agree to 2.5e-7.
- DDIM grid: ours (``even``: n indices from 999 down to 1, both ends included) is none of diffusers'
  ``timestep_spacing``s; the closest is ``linspace`` (999 -> 0). ``VPProcess.grid(n, spacing)`` with
  ``linspace``, ``leading`` or ``trailing`` reproduces diffusers exactly (``dmrules sample --spacing``).
- DPM-Solver++ 2M: one update (first order at the start, second order after) agrees to 1e-6 on a fixed
  eps function; diffusers holds sigma and lambda in float32, which bounds the agreement.
"""

import math

import pytest
import torch

from fullscale import samplers
from theory.schedules import VPProcess

diffusers = pytest.importorskip("diffusers", reason="the test extra (pip install -e '.[test]') has diffusers")

P = VPProcess()
KW = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


def test_alpha_bar_matches_diffusers():
    d = diffusers.DDPMScheduler(**KW)
    assert float((d.alphas_cumprod.double() - P.schedule.alpha_bar).abs().max()) < 1e-6


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("n", [10, 20, 50, 100])
def test_ddim_timesteps_match_diffusers(spacing, n):
    d = diffusers.DDIMScheduler(**KW, timestep_spacing=spacing, steps_offset=0)
    d.set_timesteps(n)
    assert P.grid(n, spacing) == d.timesteps.tolist()


def test_our_even_grid_is_linspace_but_ends_at_1():
    d = diffusers.DDIMScheduler(**KW, timestep_spacing="linspace", steps_offset=0)
    d.set_timesteps(50)
    ours = P.grid(50)
    assert ours != d.timesteps.tolist() and ours[0] == 999 and ours[-1] == 1 and d.timesteps[-1] == 0


def _eps(x, t):
    """A fixed, smooth eps function near the exact one of data ~ N(0.2, 0.5^2)."""
    tt = t.double() if torch.is_tensor(t) else torch.tensor(float(t), dtype=torch.float64)
    a, s = (c.view(-1, 1, 1, 1) for c in P.coefficients(tt.round().long()))
    den = a * a * 0.25 + s * s
    return s * (x - a * 0.2) / den + 0.05 * torch.sin(3 * x)


@pytest.mark.parametrize("n", [20, 50])
def test_one_dpmpp_2m_update_matches_diffusers(n):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    d = diffusers.DPMSolverMultistepScheduler(**KW, algorithm_type="dpmsolver++", solver_order=2,
                                              prediction_type="epsilon")
    d.set_timesteps(n)
    ts = d.timesteps.tolist()
    worst = 0.0
    for k in range(5):  # the first-order start, then four second-order updates
        s_, t_ = ts[k], ts[k + 1]
        a_s, s_s = (float(v) for v in P.coefficients(s_))
        a_t, s_t = (float(v) for v in P.coefficients(t_))
        e = _eps(x, torch.full((2,), s_))
        d0 = (x - s_s * e) / a_s
        d1 = h_prev = None
        if k:
            a_r, s_r = (float(v) for v in P.coefficients(ts[k - 1]))
            d1, h_prev = d.model_outputs[-1], math.log(a_s / s_s) - math.log(a_r / s_r)
        ours = samplers.dpmpp_2m_update(x, d0, d1, a_s, s_s, a_t, s_t, h_prev)
        ref = d.step(e, ts[k], x).prev_sample
        worst = max(worst, float((ours - ref).abs().max()))
        x = ref
    assert worst < 1e-6, worst


def test_our_dpmpp_2m_sampler_follows_diffusers_over_a_whole_run():
    """The whole 20-step run on diffusers' grid: agreement to 1e-5 (float32 sigmas accumulate)."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    d = diffusers.DPMSolverMultistepScheduler(**KW, algorithm_type="dpmsolver++", solver_order=2,
                                              prediction_type="epsilon")
    d.set_timesteps(20)
    y = x.clone()
    for t in d.timesteps:
        y = d.step(_eps(y, torch.full((2,), int(t))), t, y).prev_sample
    ours = samplers.dpmpp_2m(_eps, x, P, steps=d.timesteps.tolist(), until=20)
    assert float((ours - y).abs().max()) < 1e-5
