"""The epsilon loss and the samplers against exact answers (Gaussian-mixture data with a known score)."""

import math

import pytest
import torch

from fullscale import diffusion
from theory import ddpm_schedule

S = ddpm_schedule()
WEIGHTS, MEANS, STD = (0.3, 0.7), (-0.5, 0.5), 0.05  # per-pixel mixture data law


def exact_eps(x, t):
    """eps*(x, t) = -sqrt(1 - ab) * grad log p_t(x) for iid per-pixel mixture data (our derivation:
    p_t = sum_k pi_k N(sqrt(ab) m_k, ab s^2 + 1 - ab))."""
    ab = S.alpha_bar[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
    a, var = ab.sqrt(), ab * STD**2 + (1 - ab)
    logs = torch.stack([math.log(w) - (x - a * m) ** 2 / (2 * var) for w, m in zip(WEIGHTS, MEANS)])
    r = torch.softmax(logs, dim=0)
    score = sum(r[k] * (-(x - a * m) / var) for k, m in enumerate(MEANS))
    return -(1 - ab).sqrt() * score


def _fraction_positive(x):
    return float((x > 0).double().mean())


def test_loss_draws_t_in_1_to_999_and_is_zero_for_the_oracle():
    loss = diffusion.EpsilonLoss()
    keys = torch.arange(4000)
    t, eps = loss.draw(keys, (3, 2, 2))
    assert int(t.min()) == 1 and int(t.max()) == 999 and eps.shape == (4000, 3, 2, 2)
    c = torch.full((64, 3, 4, 4), 0.25)  # data = a point mass at c: eps*(x_t) = (x_t - sqrt(ab) c) / sqrt(1 - ab)

    def oracle(xt, t):
        ab = S.alpha_bar[t].float().view(-1, 1, 1, 1)
        return (xt - ab.sqrt() * c) / (1 - ab).sqrt()

    assert float(loss(oracle, c, keys[:64]).max()) < 1e-8
    zero = loss(lambda xt, t: torch.zeros_like(xt), c.repeat(8, 1, 1, 1), torch.arange(20000, 20512))
    assert abs(float(zero.mean()) - 1.0) < 0.05  # E|eps|^2 per pixel = 1


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ancestral_sampler_recovers_the_mixture(variance):
    seeds = torch.arange(3000)
    x = diffusion.initial_noise(seeds, (1, 1, 2))
    x0 = diffusion.ddpm_sample(exact_eps, x, seeds, variance=variance).double()
    assert abs(_fraction_positive(x0) - WEIGHTS[1]) < 0.03
    pos = x0[x0 > 0]
    assert abs(float(pos.mean()) - MEANS[1]) < 0.01
    assert abs(float(pos.std()) / STD - 1) < 0.2


def test_ddim_recovers_the_mixture():
    seeds = torch.arange(4000)
    x0 = diffusion.ddim_sample(exact_eps, diffusion.initial_noise(seeds, (1, 2, 2)), steps=100).double()
    assert abs(_fraction_positive(x0) - WEIGHTS[1]) < 0.03
    assert abs(float(x0[x0 > 0].mean()) - MEANS[1]) < 0.02


def test_ddim_timesteps():
    ts = diffusion.ddim_timesteps(50)
    assert ts[0] == 999 and ts[-1] == 1 and len(ts) == 50 and all(a > b for a, b in zip(ts, ts[1:]))
    with pytest.raises(ValueError):
        diffusion.ddim_timesteps(0)


def _small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    return lambda x, t: net(x) * (t.float().view(-1, 1, 1, 1) / 1000)


def test_a_sample_does_not_depend_on_its_batch():
    net = _small_net()
    seeds = torch.arange(10, 16)
    steps = list(range(999, 0, -50))
    whole = diffusion.ddpm_sample(net, diffusion.initial_noise(seeds, (3, 8, 8)), seeds, steps=steps)
    parts = [diffusion.ddpm_sample(net, diffusion.initial_noise(s, (3, 8, 8)), s, steps=steps)
             for s in (seeds[:2], seeds[2:])]
    assert torch.allclose(torch.cat(parts), whole, atol=1e-5)


def test_guidance_hook_scale_zero_is_identical_and_a_guide_moves_samples():
    seeds = torch.arange(1000)
    x = diffusion.initial_noise(seeds, (1, 1, 2))
    calls = []

    def guide(x, t):  # grad_x log sigmoid(4 sum x): favours positive pixels
        calls.append(1)
        x = x.detach().requires_grad_(True)
        torch.nn.functional.logsigmoid(4 * x.flatten(1).sum(1)).sum().backward()
        return x.grad

    coarse = list(range(999, 0, -37)) + [1]
    plain = diffusion.ddpm_sample(exact_eps, x, seeds, steps=coarse)
    zero = diffusion.ddpm_sample(exact_eps, x, seeds, steps=coarse, guide=guide, weight=0.0)
    zero_sched = diffusion.ddpm_sample(exact_eps, x, seeds, steps=coarse, guide=guide, weight=lambda i: 0.0)
    assert torch.equal(plain, zero) and torch.equal(plain, zero_sched) and not calls
    plain = diffusion.ddpm_sample(exact_eps, x, seeds)
    guided = diffusion.ddpm_sample(exact_eps, x, seeds, guide=guide, weight=lambda i: 3.0 if i <= 200 else 0.0)
    assert calls and _fraction_positive(guided) > _fraction_positive(plain) + 0.05
    d_plain = diffusion.ddim_sample(exact_eps, x, steps=20)
    assert torch.equal(d_plain, diffusion.ddim_sample(exact_eps, x, steps=20, guide=guide, weight=0.0))
    assert _fraction_positive(diffusion.ddim_sample(exact_eps, x, steps=20, guide=guide, weight=3.0)) > \
        _fraction_positive(d_plain) + 0.05


def test_uint8_round_trip():
    img = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    assert torch.equal(diffusion.to_uint8(diffusion.from_uint8(img)), img)


def test_offset_is_added_back_before_the_clamp():
    """Centred training (cpu preset): the sampler returns (x0 + mean image) clamped to [-1, 1]."""
    seeds = torch.arange(4)
    x = diffusion.initial_noise(seeds, (1, 2, 2))
    point_mass_at_zero = lambda xt, t: xt / (1 - S.alpha_bar[t].float().view(-1, 1, 1, 1)).sqrt()  # noqa: E731
    offset = torch.tensor([0.3, -0.5, 0.9, 1.7]).view(1, 1, 2, 2)
    for out in (diffusion.ddim_sample(point_mass_at_zero, x, steps=10, offset=offset),
                diffusion.ddpm_sample(point_mass_at_zero, x, seeds, offset=offset)):
        assert torch.allclose(out, offset.clamp(-1, 1).expand_as(out), atol=0.03)  # ancestral: last-step noise
