"""Golden values of the forward processes (theory.schedules)."""

import math

import pytest
import torch

from theory import ddpm_schedule, ou_alpha, ou_alpha_beta, ou_beta, ou_time_from_alpha_bar


def test_ddpm_golden_values():
    s = ddpm_schedule()
    assert s.T == 1000 and s.alpha_bar.shape == (1000,)
    # diffusers' DDPMScheduler tests pin _get_variance(0) == 0, (487) ~ 0.00979, (999) ~ 0.02 (atol 1e-5)
    assert abs(s.posterior_variance[0].item()) < 1e-12
    assert s.posterior_variance[487].item() == pytest.approx(0.00979, abs=1e-5)
    assert s.posterior_variance[999].item() == pytest.approx(0.02, abs=1e-5)
    assert s.betas[0].item() == pytest.approx(1e-4, abs=1e-15) and s.betas[-1].item() == pytest.approx(0.02, abs=1e-15)
    # alpha_bar_T of the linear schedule, recomputed in pure Python (4.0358e-05, sqrt = 0.00635)
    product = math.prod(1.0 - (1e-4 + (0.02 - 1e-4) * i / 999) for i in range(1000))
    assert s.alpha_bar[-1].item() == pytest.approx(product, rel=1e-10)
    assert s.alpha_bar[-1].item() == pytest.approx(4.0358e-05, rel=1e-4)
    assert torch.all(s.alpha_bar[1:] < s.alpha_bar[:-1])


def test_ou_process_identities():
    t = torch.tensor([1e-4, 0.05, 0.1, 1.0, 7.0], dtype=torch.float64)
    a, b = ou_alpha_beta(t)
    assert torch.allclose(a, torch.exp(-t), rtol=0, atol=0)
    assert torch.allclose(a**2 + b**2, torch.ones_like(t), atol=1e-15)
    assert ou_beta(0.1).item() == pytest.approx(math.sqrt(1 - math.exp(-0.2)), rel=1e-15)
    assert torch.allclose(ou_time_from_alpha_bar(a**2), t, rtol=1e-12)
    # a DDPM step maps to the OU pair with the same signal level
    s = ddpm_schedule()
    alpha, beta = s.ou_pair(487)
    t487 = ou_time_from_alpha_bar(s.alpha_bar[487])
    assert ou_alpha(t487).item() == pytest.approx(alpha.item(), rel=1e-12)
    assert ou_beta(t487).item() == pytest.approx(beta.item(), rel=1e-12)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_ou_bad_time(t):
    with pytest.raises(ValueError, match="OU time"):
        ou_alpha(t)
