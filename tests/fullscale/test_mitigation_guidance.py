"""Classifier guidance: schedule shapes, scale 0 = unguided bit for bit, and two toy problems where
log p(y | x_t) is analytic, so the guided sampler's mean shift is known (our derivations, below)."""

import math

import pytest
import torch

from fullscale import diffusion
from fullscale.classify import nets
from fullscale.guidance import SCHEDULES, ClassifierGuide, schedule_weight, weight_schedule
from theory import ddpm_schedule

AB = ddpm_schedule().alpha_bar.to(torch.float64)


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------
# Schedules (protocol Sec. 6.2)


@pytest.mark.parametrize("s", [0.0, 1.0, 7.0])
def test_each_schedule_has_the_documented_shape(s):
    steps = range(999, 0, -1)
    w = {name: [weight_schedule(name, s)(i) for i in steps] for name in SCHEDULES}
    assert all(v == s for v in w["constant"])
    for name, f in (("linear", lambda u: u), ("quadratic", lambda u: u * u),
                    ("exponential", lambda u: 1 - math.exp(-5 * u))):
        expect = [s + 3 * f(1 - i / 1000) for i in steps]
        assert w[name] == pytest.approx(expect, abs=1e-12)
        # ramps up from ~s at the start of sampling to ~s + 3 f(1) at the end, monotonically
        assert all(b >= a for a, b in zip(w[name], w[name][1:]))
        assert w[name][0] == pytest.approx(s + 3 * f(0.001)) and w[name][-1] == pytest.approx(s + 3 * f(0.999))
    # quadratic stays below linear; exponential saturates early (95 % of its ramp by i = 400)
    assert all(q <= lin for q, lin in zip(w["quadratic"], w["linear"]))
    assert weight_schedule("exponential", s)(400) == pytest.approx(s + 3 * (1 - math.exp(-3)))
    assert 1 - math.exp(-3) > 0.95
    # piecewise: zero before the last 20 steps, then s (20 - i) / 20: 0.05 s at i = 19 ... 0.95 s at i = 1
    pw = dict(zip(steps, w["piecewise"]))
    assert all(pw[i] == 0.0 for i in range(20, 1000))
    assert [pw[i] for i in range(19, 0, -1)] == pytest.approx([s * k / 20 for k in range(1, 20)])


def test_unknown_schedule_and_bad_scale_are_value_errors():
    with pytest.raises(ValueError, match="unknown guidance schedule 'cosine'"):
        weight_schedule("cosine", 1.0)
    with pytest.raises(ValueError, match="unknown guidance schedule"):
        schedule_weight("pisewise", 1.0, 5)
    with pytest.raises(ValueError, match="finite"):
        weight_schedule("constant", float("nan"))


# ----------------------------------------------------------------------------
# Scale 0 reproduces unguided sampling bit for bit


def _small_denoiser():
    from fullscale.models import build

    torch.manual_seed(0)
    return build("unet-small", 16).eval()


def _noisy_classifier():
    torch.manual_seed(1)
    return nets.build("unet", True, 16, width=8, depth=1).eval()


@pytest.mark.parametrize("schedule", ["constant", "piecewise"])
def test_scale_zero_reproduces_unguided_samples_bit_for_bit(schedule):
    net, guide = _small_denoiser(), ClassifierGuide(_noisy_classifier())
    seeds = torch.arange(3)
    x = diffusion.initial_noise(seeds, (3, 16, 16))
    steps = list(range(25, 0, -1))  # the last 25 ancestral steps (covers the piecewise window)
    plain = diffusion.ddpm_sample(net, x, seeds, steps=steps, variance="posterior")
    zero = diffusion.ddpm_sample(net, x, seeds, steps=steps, variance="posterior", guide=guide,
                                 weight=weight_schedule(schedule, 0.0))
    assert torch.equal(plain, zero)
    guided = diffusion.ddpm_sample(net, x, seeds, steps=steps, variance="posterior", guide=guide,
                                   weight=weight_schedule(schedule, 50.0))
    assert not torch.equal(plain, guided)  # the comparison can fail: a real guide moves the samples


def test_classifier_guide_is_the_gradient_of_log_p_y1_and_per_sample():
    clf = _noisy_classifier()
    guide = ClassifierGuide(clf)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([5, 100, 500, 999])
    g = guide(x, t)
    # finite differences of log p(y = 1 | x, t) along a random direction, example by example
    d = torch.randn_like(x)
    h = 1e-3
    with torch.no_grad():
        lp = lambda z: torch.log_softmax(clf(z.double(), t).double(), -1)[:, 1]  # noqa: E731
        clf.double()
        fd = (lp(x + h * d) - lp(x - h * d)) / (2 * h)
        clf.float()
    assert torch.allclose((g * d).flatten(1).sum(1).double(), fd, rtol=1e-3, atol=1e-5)
    # example k's gradient does not depend on the other examples in the batch
    assert torch.allclose(guide(x[1:3], t[1:3]), g[1:3], atol=1e-6)


def test_a_guide_for_a_centred_run_reads_the_classifier_at_the_uncentred_point():
    """A run trained on x_0 - m samples x~_t = x_t - sqrt(ab_t) m; the classifier saw x_t."""
    clf = _noisy_classifier()
    m = 0.3 * torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(3))
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([1, 400, 998])
    shifted = x + AB[t].sqrt().float().view(-1, 1, 1, 1) * m
    assert torch.allclose(ClassifierGuide(clf, offset=m)(x, t), ClassifierGuide(clf)(shifted, t), atol=1e-6)
    assert not torch.allclose(ClassifierGuide(clf, offset=m)(x, t), ClassifierGuide(clf)(x, t), atol=1e-4)


# ----------------------------------------------------------------------------
# Toy problem 1 (ours): x_0 ~ 1/2 N(+mu, s^2 I) + 1/2 N(-mu, s^2 I), y = the component.
# x_t | y ~ N(y sqrt(ab) mu, v I), v = ab s^2 + 1 - ab, so p(y = +1 | x_t) = sigmoid(2 sqrt(ab) mu.x / v)
# exactly and the score is a responsibility-weighted sum. Guidance with w = 1 adds grad log p(y | x_t)
# to the score, i.e. samples p(x_0 | y = +1) = N(mu, s^2 I): the mean moves from 0 to mu.

MU, S = torch.tensor([0.4, 0.0], dtype=torch.float64), 0.1


def _mixture_eps(x, t):
    x = x.double()
    ab = AB[t].view(-1, 1)
    v = ab * S * S + 1 - ab
    m = ab.sqrt() * MU
    r = torch.sigmoid(2 * (x * m).sum(1, keepdim=True) / v)  # responsibility of +mu
    score = -(x - (2 * r - 1) * m) / v
    return (-(1 - ab).sqrt() * score).float()


class MixtureClassifier(torch.nn.Module):
    """Exact logits of y in {-1 (class 0), +1 (class 1)} given x_t."""

    def forward(self, x, t):
        ab = AB[t].view(-1, 1)
        v = ab * S * S + 1 - ab
        z = (x.double() * ab.sqrt() * MU).sum(1) / v[:, 0]
        return torch.stack([-z, z], 1).float()


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_guided_sampler_moves_the_mixture_to_the_class_conditional_mean(variance):
    n = 2000
    seeds = torch.arange(n)
    x = diffusion.initial_noise(seeds, (2,))
    plain = diffusion.ddpm_sample(_mixture_eps, x, seeds, variance=variance).double()
    guided = diffusion.ddpm_sample(_mixture_eps, x, seeds, variance=variance,
                                   guide=ClassifierGuide(MixtureClassifier()),
                                   weight=weight_schedule("constant", 1.0)).double()
    se = S / math.sqrt(n)  # Monte Carlo standard error of a mean
    assert abs(plain[:, 0].mean()) < 0.03  # both modes, mean ~ 0 (sd of the mean ~ 0.41 / sqrt(n) = 0.009)
    assert 0.45 < (plain[:, 0] > 0).double().mean() < 0.55
    shift = guided.mean(0) - plain.mean(0)
    assert guided[:, 0].mean().item() == pytest.approx(MU[0].item(), abs=6 * se)  # theory: E[x_0 | y = +1] = mu
    assert guided[:, 1].mean().item() == pytest.approx(0.0, abs=6 * se)
    assert shift[0].item() == pytest.approx(MU[0].item(), abs=0.03)
    assert guided[:, 0].std().item() == pytest.approx(S, rel=0.1)  # and the class-conditional spread
    assert (guided[:, 0] > 0).all()


# ----------------------------------------------------------------------------
# Toy problem 2 (ours): x_0 ~ N(0, s^2 I) tilted by p(y | x_0) ∝ exp(c . x_0). Then
# p(y | x_t) ∝ E[exp(c . x_0) | x_t] = exp(c . E[x_0 | x_t] + const), so grad log p(y | x_t) =
# sqrt(ab) s^2 / v c, and scale w samples the tilt exp(w c . x_0) N(0, s^2 I) = N(w s^2 c, s^2 I)
# exactly in the continuous limit: the mean shift is w s^2 c, linear in w.


def _gauss_eps(x, t):
    ab = AB[t].view(-1, 1)
    return ((1 - ab).sqrt() * x.double() / (ab * S * S + 1 - ab)).float()


def _discrete_tilt_shift(variance: str) -> float:
    """The exact mean shift per unit of w s^2 c of the 999-step ancestral sampler (ours): with exact
    eps = k_i x (k_i = sqrt(1 - ab_i) / v_i) a step maps E[x] -> A_i E[x] + w sigma_i^2 g_i with
    A_i = (1 - beta_i k_i / sqrt(1 - ab_i)) / sqrt(alpha_i) and g_i = sqrt(ab_i) s^2 / v_i c."""
    sch = ddpm_schedule()
    var = sch.posterior_variance if variance == "posterior" else sch.betas
    shift = 0.0
    for i in range(999, 0, -1):
        ab, a, b = sch.alpha_bar[i].item(), sch.alphas[i].item(), sch.betas[i].item()
        v = ab * S * S + 1 - ab
        shift = (1 - b / (1 - ab) ** 0.5 * (1 - ab) ** 0.5 / v) / a**0.5 * shift + var[i].item() * ab**0.5 * S * S / v
    return shift / (S * S)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
@pytest.mark.parametrize("w", [0.5, 2.0])
def test_guided_mean_shift_matches_the_exponential_tilt(w, variance):
    c = torch.tensor([20.0, -10.0], dtype=torch.float64)

    def tilt_guide(x, t):
        ab = AB[t].view(-1, 1)
        return (ab.sqrt() * S * S / (ab * S * S + 1 - ab) * c).expand(x.shape[0], 2).float()

    seeds = torch.arange(64)
    x = diffusion.initial_noise(seeds, (2,))
    plain = diffusion.ddpm_sample(_gauss_eps, x, seeds, variance=variance).double()
    guided = diffusion.ddpm_sample(_gauss_eps, x, seeds, variance=variance, guide=tilt_guide,
                                   weight=weight_schedule("constant", w)).double()
    # the sampler is affine in x for Gaussian data and the guide does not depend on x: every sample
    # moves by the same deterministic amount, so no Monte Carlo error enters the comparison
    shift = guided - plain
    assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-5)
    # exact for the discrete sampler (checks w, sigma_i^2 and the step index of the hook) ...
    factor = _discrete_tilt_shift(variance)
    assert shift[0].tolist() == pytest.approx((factor * w * S * S * c).tolist(), rel=2e-3)
    # ... and the continuous-limit theory w s^2 c: within 0.1 % with sigma_i^2 = beta_i; the protocol's
    # posterior variance beta~_i < beta_i under-applies guidance where the tilt acts (low noise), 8.7 %
    # short at 999 steps (a property of the discretisation, documented in docs/mitigation.md)
    assert factor == pytest.approx(1.0, abs=1e-3) if variance == "beta" else factor == pytest.approx(0.913, abs=2e-3)
