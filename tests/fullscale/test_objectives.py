"""Objectives by name (issue 13): eps is the old loss bit for bit; x0, v, flow targets and inversions;
--objective in configs (an old config loads as eps) and the trainer."""

import json

import numpy as np
import pytest
import torch

from fullscale import objectives, rng
from fullscale.presets import RunConfig, make_config
from theory import ddpm_schedule
from theory.schedules import FlowProcess, VPProcess


def _old_epsilon_loss(net, x0, keys):
    """The epsilon loss as it was written before issue 13 (fullscale/diffusion.py at e58c3f0)."""
    t = rng.randint(rng.derive(keys, 1), 1, 1000)
    eps = rng.normal(rng.derive(keys, 2), x0.shape[1:])
    ab = ddpm_schedule().alpha_bar.to(torch.float32)[t].view(-1, 1, 1, 1)
    xt = ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps
    return (net(xt, t).float() - eps.float()).square().flatten(1).mean(1)


def _net(x, t):
    return torch.tanh(x) * (t.float().view(-1, 1, 1, 1) / 1000)


def test_eps_objective_is_the_old_loss_bit_for_bit():
    x0 = torch.rand(16, 3, 8, 8) * 2 - 1
    keys = rng.derive(3, torch.arange(16))
    assert torch.equal(objectives.get("eps")(_net, x0, keys), _old_epsilon_loss(_net, x0, keys))


@pytest.mark.parametrize("name", ["eps", "x0", "v", "flow"])
def test_predict_inverts_the_target(name):
    obj = objectives.get(name)
    x0, eps = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    t = obj.process.train_time(torch.tensor([0.01, 0.3, 0.6, 0.95], dtype=torch.float64))
    a, s = (c.float().view(-1, 1, 1, 1) for c in obj.process.coefficients(t))
    x = a * x0 + s * eps
    x0_hat, eps_hat = obj.predict(obj.target(x0, eps, a, s), x, a, s)
    assert torch.allclose(x0_hat, x0, atol=1e-3) and torch.allclose(eps_hat, eps, atol=1e-3)


@pytest.mark.parametrize("name", ["eps", "x0", "v", "flow"])
def test_the_exact_predictor_has_zero_loss_and_a_wrong_one_does_not(name):
    obj = objectives.get(name)
    c = torch.full((32, 3, 4, 4), 0.25)  # data = a point mass at c

    def exact(xt, cond):
        tt = cond if obj.process.kind == "vp" else cond.double() / obj.process.cond_scale
        a, s = (v.float().view(-1, 1, 1, 1) for v in obj.process.coefficients(tt))
        return obj.target(c, (xt - a * c) / s, a, s)

    keys = rng.derive(0, torch.arange(32))
    assert float(obj(exact, c, keys).max()) < 1e-6
    assert float(obj(lambda x, t: torch.zeros_like(x), c, keys).mean()) > 1e-2


def test_flow_times_are_uniform_on_0_1_and_vp_on_1_to_T_minus_1():
    keys = rng.derive(1, torch.arange(4000))
    t, _ = objectives.get("flow").draw(keys, (1,))
    assert t.dtype == torch.float64 and 0 <= float(t.min()) < 0.01 and 0.99 < float(t.max()) < 1
    t, _ = objectives.get("eps", VPProcess(T=50)).draw(keys, (1,))
    assert int(t.min()) == 1 and int(t.max()) == 49


def test_unknown_objective_and_process_mismatch_are_one_sentence():
    with pytest.raises(ValueError, match="unknown objective 'score'; choose from eps, x0, v, flow"):
        objectives.get("score")
    with pytest.raises(ValueError, match="needs the flow noise process"):
        objectives.get("flow", VPProcess())
    with pytest.raises(ValueError, match="needs the vp noise process"):
        objectives.get("v", FlowProcess())


def test_config_objective_field_old_configs_load_as_eps_and_keep_their_identity():
    cfg = make_config("A", "unet", "smoke")
    assert cfg.objective == "eps" and "objective" not in cfg.identity()
    old = cfg.to_json()
    old.pop("objective")  # a run made before issue 13
    back = RunConfig.from_json(json.loads(json.dumps(old)))
    assert back.objective == "eps" and back.identity() == cfg.identity()
    flow = make_config("A", "unet", "smoke", objective="flow")
    assert flow.identity()["objective"] == "flow" and (flow.sampler, flow.sample_steps) == ("euler", 50)
    with pytest.raises(ValueError, match="the ddim sampler cannot sample a model trained with the flow objective"):
        make_config("A", "unet", "smoke", objective="flow", sampler="ddim")


@pytest.mark.parametrize("name", ["x0", "flow"])
def test_trainer_uses_the_configured_objective(tmp_path, name):
    from fullscale.runtime import Runtime
    from fullscale.train import Trainer

    cfg = make_config("A", "unet-small", "smoke", objective=name)
    images = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    rt = Runtime(device=torch.device("cpu"), bf16=False, compile=False, channels_last=False, tf32=False)
    tr = Trainer(cfg, rt, images)
    assert tr.loss_fn.name == name and np.isfinite(float(tr.step(0)))
