"""Named random streams: no draw of a simulation reuses the data law's own random numbers.

Regression for the seed bug of sims/fl.py (the law's µ directions and the training sample were drawn
from generators seeded alike: at n = 8, d = 1000, 1 000 of 8 000 noise values equalled µ draws).
"""

import torch

from sims import fl
from sims.rules import data_seed
from sims.streams import stream
from theory import RulePatches


def _shared(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(torch.isin(a.flatten(), b.flatten()).sum())


def test_fl_sample_stream_is_not_the_law_stream(monkeypatch):
    """The generator model_data hands to the law's sample() must not replay the law's own mu draws."""
    from theory import TwoPatchSignalNoise

    states = []
    original = TwoPatchSignalNoise.sample

    def spy(self, n, generator=None, return_latents=False):
        states.append(generator.get_state().clone())
        return original(self, n, generator=generator, return_latents=return_latents)

    monkeypatch.setattr(TwoPatchSignalNoise, "sample", spy)
    model = fl.FLModel("diffusion", 8, 0.5, 0)
    fl.model_data(model)
    seed = model.data_seed()
    raw_mu = torch.randn(2, model.d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    replay = torch.Generator()
    replay.set_state(states[0])
    draws = torch.randn(8, model.d, generator=replay, dtype=torch.float64)
    assert _shared(draws, raw_mu) == 0  # the old shared seed gave 2 * d shared values here


def test_rules_sample_does_not_replay_the_law_draws():
    d, seed = 50, data_seed(16, 0, 50)
    law = RulePatches(d, seed=seed)
    raw = torch.randn(2, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = law.sample(16, generator=stream(seed, "sample"))
    old = law.sample(16, generator=torch.Generator().manual_seed(seed))  # the old, shared-seed stream
    fresh = torch.randn(64, generator=stream(seed, "sample"), dtype=torch.float64)
    replay = torch.randn(64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.equal(replay[:64], raw.flatten()[:64])  # the old stream replays the law's u, v draws
    assert _shared(fresh, raw) == 0
    assert not torch.equal(x, old)


def test_streams_differ_by_purpose_and_repeat_by_name():
    a = torch.rand(8, generator=stream(3, "sample"))
    assert torch.equal(a, torch.rand(8, generator=stream(3, "sample")))
    for other in (stream(3, "init"), stream(4, "sample"), stream(3, "sample", 1)):
        assert _shared(a, torch.rand(8, generator=other)) == 0


def test_damaged_sims_checkpoint_is_one_clear_error(tmp_path):
    import pytest

    from sims.train import Checkpoint

    path = tmp_path / "group.pt"
    torch.save({"step": 3, "W": torch.zeros(4)}, path)
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a kill or a full disk
    with pytest.raises(ValueError, match="group.pt"):
        Checkpoint(path).load()
    assert path.exists()  # left in place
