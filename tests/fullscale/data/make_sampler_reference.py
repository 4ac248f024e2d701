import numpy as np, torch
from fullscale import diffusion
from fullscale.models import build
torch.manual_seed(0)
base = build("unet-small", 16).eval()
from theory import ddpm_schedule
_sab = (1 - ddpm_schedule().alpha_bar).sqrt().float()
def net(x, t):  # near the optimal eps of data concentrated at 0, plus a network term (not saturated)
    c = _sab[t.long()].view(-1, 1, 1, 1)
    return 0.97 * c * x + 0.3 * base(x, t)
seeds = torch.tensor([3, 11], dtype=torch.int64)
x = diffusion.initial_noise(seeds, (3, 16, 16))
def guide(x, t):
    return torch.tanh(x) * 0.1
out = {}
with torch.no_grad():
    out["ddpm"] = diffusion.ddpm_sample(net, x, seeds).numpy()
    out["ddpm_post_guided"] = diffusion.ddpm_sample(net, x, seeds, variance="posterior", guide=guide, weight=lambda i: 2.0 if i < 500 else 0.5).numpy()
    out["ddim10_eta1"] = diffusion.ddim_sample(net, x, seeds, steps=10, eta=1.0).numpy()
    out["ddim7_eta0_guided"] = diffusion.ddim_sample(net, x, seeds, steps=7, eta=0.0, guide=guide, weight=1.5).numpy()
    out["x_T"] = x.numpy()
np.savez("tests/fullscale/data/sampler_reference.npz", **out)
print({k: (v.shape, float(np.abs(v).mean())) for k, v in out.items()})
