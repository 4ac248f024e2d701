"""Rule-conformity simulations: does a DSM-trained score network learn the hidden rule?

Rules paper (arXiv 2502.04725) Section 4 as reconstructed in ``shared/spec/rules-theory-derivation.md``
§4-5 (our derivation, not the paper's theorem): data ``theory.RulePatches`` (x(1) = zeta u,
x(2) = (1 - zeta) v, zeta ~ U[0, 1]); score networks of :mod:`sims.rulenets` trained by DSM with the
time drawn uniformly over the DDPM schedule's steps; then, at fixed evaluation times,
psi_t (``theory.rules.psi``), the rule-conforming error E_t = bias^2 + variance
(``theory.rules.rule_error``) and the patch-wise DSM constant L_t (``theory.rules.bound``, and
``bound_class(t, 2)`` = L_t(F_2) for the quadratic class).

Training loss (denoiser form of DSM, weight lambda(t) = beta^4 / alpha^2 on the score loss):
    E_{i, t, eps} || D(alpha x0_i + beta eps, t) - x0_i ||^2,
minibatches of B examples drawn with replacement from each model's n training points, fresh t and
eps each step, Adam, all models of a group (same network, activation, width) in one stack.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from sims import rulenets as RN
from sims.streams import stream
from sims.train import Checkpoint, log_steps, stack_padded
from theory.schedules import VPProcess, ou_alpha_beta2_float

T_MAX = VPProcess().t_max  # the DDPM schedule's last step index, T - 1: the process owns it (issue 13)

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class RulesSweep:
    widths: tuple = (5, 20, 80, 320)
    ns: tuple = (256, 4096)
    seeds: tuple = (0,)
    networks: tuple = RN.NETWORKS
    activations: tuple = ("quadratic", "relu")
    joint_widths: tuple = (80,)  # widths of the joint control (() = same as ``widths``)
    d: int = 100
    zeta: str = "uniform"
    steps: int = 2000
    batch: int = 256
    lr: float = 3e-3
    train_steps: tuple = (0, T_MAX)  # DDPM step indices (inclusive) sampled in training
    eval_steps: tuple = (20, 50, 100, 200, 300, 500)  # DDPM step indices where E_t is measured
    n_eval: int = 2048
    n_log: int = 8

    def groups(self) -> list[tuple[str, str, int]]:
        out = []
        for net in self.networks:
            widths = self.joint_widths if (net == "joint" and self.joint_widths) else self.widths
            out += [(net, act, m) for act in self.activations for m in widths]
        return out

    def members(self) -> list[tuple[int, int]]:
        return [(n, s) for n in self.ns for s in self.seeds]


def data_seed(n: int, seed: int, d: int) -> int:
    """The data law's seed (u, v) and sample: shared by every network of the sweep (paired)."""
    from dmrules.core.results import config_hash

    return int(config_hash(["rules", n, seed, d], 8), 16)


def _schedule_pairs(steps, dtype, device):
    """(alpha, beta, OU t) at DDPM step indices (theory.ddpm_schedule, theory.ou_time_from_alpha_bar)."""
    from theory import ddpm_schedule
    from theory.schedules import ou_time_from_alpha_bar

    sch = ddpm_schedule()
    idx = torch.as_tensor(steps, dtype=torch.long)
    a, b = sch.ou_pair(idx)
    t = ou_time_from_alpha_bar(sch.alpha_bar[idx])
    return a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype), t


@functools.lru_cache(maxsize=512)
def _bounds(t: float, zeta: str, with_class: bool) -> tuple[float, float, float]:
    """(L_t, L_t / (alpha/beta^2)^2, L_t(F_2)) from theory.rules (quadrature, ~1 s each: cached
    across the groups of a sweep)."""
    from theory import rules as TR

    scaled = float(TR.bound(t, zeta, scaled=True))
    alpha, beta2 = ou_alpha_beta2_float(t)
    target2 = (alpha / beta2) ** 2
    cls = float(TR.bound_class(t, 2, zeta, scaled=True)) * target2 if with_class else float("nan")
    return scaled * target2, scaled, cls


def train_group(network: str, act: str, m: int, sweep: RulesSweep, device="cpu", dtype=torch.float32,
                checkpoint: Checkpoint | None = None, progress=None) -> list[dict]:
    """Train the stack of (n x seed) models of one (network, activation, width); tidy rows."""
    from theory import RulePatches
    from theory import rules as TR

    members = sweep.members()
    M, d = len(members), sweep.d
    laws = [RulePatches(d, sweep.zeta, seed=data_seed(n, s, d)) for n, s in members]
    gens = [stream(data_seed(n, s, d), "sample") for n, s in members]  # the law owns data_seed itself
    x0 = stack_padded([law.sample(n, generator=g) for law, (n, _), g in zip(laws, members, gens)], (0,))
    x0 = x0.to(device=device, dtype=dtype)
    # fixed evaluation sets (per model, per evaluation time), drawn before training
    ev_a, ev_b, ev_t = _schedule_pairs(sweep.eval_steps, dtype, device)
    ev64 = _schedule_pairs(sweep.eval_steps, torch.float64, "cpu")  # psi and E_t are assembled in float64
    evals = []
    for law, g in zip(laws, gens):
        xs = law.sample(sweep.n_eval * len(ev_t), generator=g).reshape(len(ev_t), sweep.n_eval, 2 * d)
        evals.append((xs, torch.randn(xs.shape, generator=g, dtype=torch.float64)))
    init_gens = [stream(data_seed(n, s, d), "init", network, m) for n, s in members]
    params = RN.init_params(network, M, m, d, init_gens, dtype=dtype, device=device)
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=sweep.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, sweep.steps) / sweep.steps)))
    step_gens = [stream(data_seed(n, s, d), "dsm-noise", m) for n, s in members]
    lo, hi = sweep.train_steps
    rows: list[dict] = []
    start = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        with torch.no_grad():
            for key in params:
                params[key].copy_(state["params"][key])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        for g, s in zip(step_gens, state["gens"]):
            g.set_state(s)
        start, rows = int(state["step"]), list(state["rows"])
        if progress is not None:
            progress.update(start * M)
    ns = torch.tensor([n for n, _ in members])
    logs = set(log_steps(sweep.steps, sweep.n_log))
    sched_a, sched_b, _ = _schedule_pairs(list(range(1000)), dtype, device)
    u = torch.stack([law.u for law in laws])
    v = torch.stack([law.v for law in laws])

    # L_t, L_t / (alpha/beta^2)^2 and L_t(F_2) (quadratic class only) at the evaluation times
    bounds = [_bounds(t, sweep.zeta, act == "quadratic") for t in ev_t.tolist()]

    def evaluate(step, train_loss):
        with torch.no_grad():
            for j, (a, b, t) in enumerate(zip(ev_a, ev_b, ev_t.tolist())):
                a64, b64 = float(ev64[0][j]), float(ev64[1][j])
                xt = torch.stack([a64 * e[0][j] + b64 * e[1][j] for e in evals])  # float64, CPU
                feats = RN.time_features(a.expand(M, sweep.n_eval), b.expand(M, sweep.n_eval))
                D = RN.denoiser(params, xt.to(device=device, dtype=dtype), feats, act).double().cpu()
                s = (a64 * D - xt) / b64**2  # the residual-form score, assembled in float64 (no cancellation)
                target = a64 / b64**2
                L, Ls, LF = bounds[j]
                for i, (n, seed) in enumerate(members):
                    ps = TR.psi(s[i], xt[i], t, u[i], v[i])
                    err = TR.rule_error(ps, t)
                    q = np.quantile((ps / target).numpy(), QUANTILES)
                    rows.append({
                        "network": network, "activation": act, "m": m, "n": n, "seed": seed, "d": d,
                        "step": step, "ddpm_step": int(sweep.eval_steps[j]), "t": t, "alpha": a64,
                        "beta": b64, "target": target, "psi_mean": err.mean_psi, "psi_var": err.variance,
                        "bias2": err.bias2, "variance": err.variance, "error": err.total,
                        "error_scaled": err.total_scaled, "bound": L, "bound_scaled": Ls,
                        "bound_class": LF, "bound_class_scaled": LF / target**2,
                        "loss": float(train_loss[i]),
                        **{f"q{int(round(100 * qq)):02d}": float(v_) for qq, v_ in zip(QUANTILES, q)},
                    })

    for step in range(start, sweep.steps + 1):
        # per-model minibatch, time and noise, each from the model's own generator
        idx, tid, eps = [], [], []
        for g, n in zip(step_gens, ns.tolist()):
            idx.append(torch.randint(n, (sweep.batch,), generator=g))
            tid.append(torch.randint(lo, hi + 1, (sweep.batch,), generator=g))
            eps.append(torch.randn(sweep.batch, 2 * d, generator=g, dtype=torch.float64))
        idx, tid = torch.stack(idx).to(device), torch.stack(tid).to(device)
        eps = torch.stack(eps).to(device=device, dtype=dtype)
        xb = torch.gather(x0, 1, idx[..., None].expand(-1, -1, 2 * d))
        a, b = sched_a[tid][..., None], sched_b[tid][..., None]
        D = RN.denoiser(params, a * xb + b * eps, RN.time_features(a[..., 0], b[..., 0]), act)
        losses = (D - xb).square().sum(-1).mean(-1)  # [M]
        if step in logs:
            evaluate(step, losses.detach().cpu().tolist())
        if step == sweep.steps:
            break
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress.update(M)
        if checkpoint is not None and checkpoint.due():
            checkpoint.save({"params": {k_: p.detach().cpu() for k_, p in params.items()}, "opt": opt.state_dict(),
                             "sched": sched.state_dict(), "gens": [g.get_state() for g in step_gens],
                             "step": step + 1, "rows": rows})
    return rows


def final_table(df):
    """E_t vs L_t at the last step, mean over n and seeds, per (network, activation, m, t)."""
    last = df[df.step == df.step.max()]
    keys = ["network", "activation", "m", "ddpm_step", "t"]
    cols = ["error_scaled", "bound_scaled", "bound_class_scaled", "bias2", "variance", "error", "bound"]
    return last.groupby(keys, as_index=False)[cols].mean()


def summary_lines(df) -> list[str]:
    """E_t / L_t at the widest network and last step (printed by ``dmrules sims rules``)."""
    tab = final_table(df)
    lines = ["E_t / L_t (both scale-free, divided by (alpha/beta^2)^2) at the last step, widest network:"]
    for (net, act), g in tab.groupby(["network", "activation"]):
        g = g[g.m == g.m.max()]
        parts = [f"t={r.t:.3g}: {r.error_scaled:.3g}/{r.bound_scaled:.3g}" for r in g.itertuples()]
        lines.append(f"  {net:9s} {act:9s} m={int(g.m.iloc[0])}: " + ", ".join(parts))
    return lines
