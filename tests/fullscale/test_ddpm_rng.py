"""Counter-based per-sample random numbers (fullscale.rng): exactness, batch invariance, moments."""

import numpy as np
import pytest
import torch
from scipy import stats

from fullscale import rng


def test_mix64_matches_the_python_reference():
    values = [0, 1, 2, 12345, 2**32 - 1, 2**40 + 17, 2**63 - 1, -1, -(2**63), -987654321]
    got = rng.mix64(torch.tensor(values, dtype=torch.int64)).tolist()
    want = [rng.reference_mix64(v) for v in values]
    assert [g & ((1 << 64) - 1) for g in got] == want


def test_noise_of_a_seed_does_not_depend_on_the_batch():
    seeds = torch.arange(100, 110)
    batch = rng.normal(rng.derive(seeds, 5), (3, 4, 4))
    for k, s in enumerate(seeds.tolist()):
        alone = rng.normal(rng.derive(torch.tensor([s]), 5), (3, 4, 4))[0]
        assert torch.equal(alone, batch[k])
    # and it is a function of the seed: a permuted batch gives permuted noise
    perm = torch.tensor([3, 1, 9, 0, 2, 8, 7, 4, 6, 5])
    assert torch.equal(rng.normal(rng.derive(seeds[perm], 5), (3, 4, 4)), batch[perm])


def test_streams_differ_across_seeds_steps_and_purposes():
    a = rng.normal(rng.derive(torch.tensor([0, 1]), 3), (64,))
    b = rng.normal(rng.derive(torch.tensor([0, 1]), 4), (64,))
    assert not torch.equal(a[0], a[1]) and not torch.equal(a, b)
    assert rng.derive(1, 2).item() != rng.derive(2, 1).item()


def test_gaussian_moments_and_ks():
    z = rng.normal(rng.derive(torch.arange(400), 11), (2500,)).double().flatten().numpy()  # 1e6 draws
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24 / n)
    assert stats.kstest(z[:200_000], "norm").pvalue > 1e-3
    # neighbouring elements and neighbouring steps are uncorrelated
    w = rng.normal(rng.derive(torch.arange(400), 12), (2500,)).double().flatten().numpy()
    assert abs(np.corrcoef(z, w)[0, 1]) < 5 / np.sqrt(n)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 5 / np.sqrt(n)


def test_uniform_and_randint():
    u = rng.uniform(rng.derive(torch.arange(100), 1), (1000,)).flatten()
    assert float(u.min()) > 0 and float(u.max()) < 1
    assert stats.kstest(u.double().numpy(), "uniform").pvalue > 1e-3
    t = rng.randint(rng.derive(torch.arange(200_000), 2), 1, 1000)
    assert int(t.min()) == 1 and int(t.max()) == 999
    counts = torch.bincount(t, minlength=1000)[1:].double().numpy()
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_same_numbers_as_cpu():
    keys = rng.derive(torch.arange(50), 3)
    assert torch.equal(rng.bits(keys, 300), rng.bits(keys.cuda(), 300).cpu())
    assert torch.allclose(rng.normal(keys, (300,)), rng.normal(keys.cuda(), (300,)).cpu(), atol=1e-5)
