"""Denoisers: exact parameter counts (documented in docs/ddpm.md), shapes, time dependence."""

import pytest
import torch

from fullscale.models import MODELS, build, param_count

# Exact trainable-parameter counts at 32 px, 3 channels, unconditional, no learned sigma.
# unet: the IDDM U-Net exactly as in the paper's code (the spec's "~14.09 M" does not match that
# architecture; see docs/ddpm.md). DiT counts exclude the fixed sin-cos position embedding (a
# buffer here, a frozen Parameter in DiT: +98,304 for S/2 -> 32.57 M, +196,608 for B/2 -> 129.7 M).
COUNTS = {
    "unet": 23_332_739,
    "unet-small": 869_123,
    "unet-small-p2": 874_316,
    "dit-s2": 32_471_436,
    "dit-b2": 129_528_588,
    "mlp": 84_954_624,
}


def test_every_registered_model_has_a_pinned_count():
    assert set(MODELS) == set(COUNTS)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count(name):
    assert param_count(build(name)) == COUNTS[name]


@pytest.mark.parametrize("name", ["unet", "unet-small", "unet-small-p2", "dit-s2", "mlp"])
def test_forward_shape_and_time_dependence(name):
    torch.manual_seed(0)
    net = build(name)
    if name.startswith("dit"):  # adaLN-Zero: output is exactly zero at initialisation
        with torch.no_grad():
            assert float(net(torch.randn(2, 3, 32, 32), torch.tensor([1, 999])).abs().max()) == 0.0
    if name in ("dit-s2", "mlp", "unet-small", "unet-small-p2"):  # zero-initialised branches: perturb to make t visible
        for p in net.parameters():
            p.data.add_(0.01 * torch.randn_like(p))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = net(x, torch.tensor([10, 10]))
        y2 = net(x, torch.tensor([900, 900]))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, y2)


def test_unknown_model_and_bad_size():
    with pytest.raises(ValueError, match="unknown model"):
        build("resnet")
    with pytest.raises(ValueError, match="divisible"):
        build("unet", image_size=36)


def test_unet_other_resolution_and_channels_last():
    net = build("unet-small", image_size=64).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert net(x, torch.tensor([5])).shape == (1, 3, 64, 64)


def test_res_unet_patch_stem_shapes_and_patch_one_unchanged():
    """patch=2 (pixel-unshuffle stem, pixel-shuffle head) keeps the I/O shape and runs the first
    level at half resolution; patch=1 is the plain ResUNet, bit for bit."""
    from fullscale.models.unet import ResUNet

    torch.manual_seed(0)
    ref = ResUNet((32, 64, 64), (False, False, True))
    torch.manual_seed(0)
    same = ResUNet((32, 64, 64), (False, False, True), patch=1, mid_attention=True)
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), same.state_dict().values()))

    net = ResUNet((16, 32, 32), (False, False, True), patch=2, image_size=32)
    assert net.conv_in.in_channels == 12 and net.out[-1].out_channels == 12
    for p in net.parameters():  # zero-initialised branches: perturb so every path matters
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    net.down[0].register_forward_hook(lambda m, i, o: seen.update(first=o.shape))  # returns None
    with torch.no_grad():
        y = net(x, torch.tensor([10, 900]))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert seen["first"][-2:] == (16, 16)
    ResUNet((16, 32, 32), (False, False, True), patch=1, image_size=20)  # 20 = 4 x 5: fine without a patch
    with pytest.raises(ValueError, match="divisible"):
        ResUNet((16, 32, 32), (False, False, True), patch=2, image_size=20)  # 20 / 2 is not divisible by 4
    no_mid = ResUNet((16, 32, 32), (False, False, True), patch=2, mid_attention=False)
    assert isinstance(no_mid.mid_attn, torch.nn.Identity)
