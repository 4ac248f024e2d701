"""Feature learning: the two-layer network trained by DSM and by classification, against n·SNR².

Feature-learning paper (arXiv 2412.01021) as reconstructed in ``shared/spec/feature-learning-paper.md``
(§2 diffusion model, §3 classifier, §7 protocol, §8 closed-form expectation over eps):

- data: ``theory.TwoPatchSignalNoise`` (x(1) = mu_y, x(2) = xi; SNR = ||mu|| / (sigma_xi sqrt d));
- diffusion: tied network s_p(W, x_t) = (1/m) sum_r sigma(<w_r, x_t^(p)>) w_r, loss
  (1/n) sum_i E_eps sum_p ||s_p - eps^(p)||^2 at fixed OU time t (alpha_t, beta_t = Theta(1)); the
  expectation is exact (``theory.growth.expected_dsm_loss_quadratic``) or sampled with K draws;
- classification: f = F_{+1} - F_{-1}, logistic loss; both trained by full-batch GD from
  W0 ~ N(0, sigma0^2 I).

Every model of a sweep (objective x n x SNR x seed) is trained in one stack. With the closed-form
expectation (and always for the classifier) training runs in the exact span coordinates of
:func:`sims.train.span_basis`, so the cost does not grow with d.

Recorded per logged step (issue 4 §3): signal_j = max_r <w_r, mu_j> (classifier: |.| over the class
j filters), noise = mean_i max_r |<w_r, xi_i>| (classifier: filters of class y_i), noise_max,
the increments from initialisation signal_inc = mean_{r,j} <w_r - w_r^0, mu_j> and
noise_inc = mean_{r,i} <w_r - w_r^0, xi_i> (the early growth rates), loss, test accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sims import networks as N
from sims.streams import stream
from sims.train import Checkpoint, gradient_descent, log_steps, span_basis, stack_padded

OBJECTIVES = ("diffusion", "classification")


@dataclass(frozen=True)
class DiffusionSetup:
    """How the diffusion model is trained: at OU time(s) ``t`` (several: uniform over them), or with
    t ~ U(``t_range``) (closed form: midpoint rule with ``t_points`` nodes; sampled: a fresh t per draw)."""

    lr: float = 0.05
    steps: int = 3000
    t: tuple = (0.2231435513142097,)  # OU times; exp(-0.2231) = 0.8: alpha = 0.8, beta = 0.6 (spec §7)
    t_range: tuple = ()  # (lo, hi): t ~ U(lo, hi) instead of ``t``
    t_points: int = 8
    expectation: str = "closed"  # "closed" (exact E over eps) | "sampled" (K fresh draws per step)
    draws: int = 10
    activation: str = "quadratic"


@dataclass(frozen=True)
class ClassificationSetup:
    lr: float = 20.0
    steps: int = 3000
    activation: str = "quadratic"
    n_test: int = 1000


@dataclass(frozen=True)
class FLModel:
    """One trained model: an objective on one data law (n, SNR) with one seed."""

    objective: str
    n: int
    snr: float
    seed: int
    d: int = 1000
    m: int = 20
    sigma_xi: float = 0.05
    sigma0: float = 0.01
    experiment: str = "grid"  # "grid" (n x SNR heatmap) | "fig2" (the Figure 2 analogue)

    @property
    def mu_norm(self) -> float:
        return self.snr * self.sigma_xi * math.sqrt(self.d)

    @property
    def n_snr2(self) -> float:
        return self.n * self.snr**2

    def data_seed(self) -> int:
        """Seed of the data law and sample: shared by both objectives (a paired comparison)."""
        from dmrules.core.results import config_hash

        key = [self.n, round(self.snr, 12), self.d, self.sigma_xi, self.seed]
        return int(config_hash(key, 8), 16)

    def data(self, n_test: int = 0) -> dict:
        return model_data(self, n_test)

    def row_info(self) -> dict:
        """Columns that identify this model in the tidy table."""
        return {"objective": self.objective, "experiment": self.experiment, "n": self.n, "d": self.d,
                "m": self.m, "snr": self.snr, "n_snr2": self.n_snr2, "mu_norm": self.mu_norm,
                "sigma_xi": self.sigma_xi, "seed": self.seed}


@dataclass(frozen=True)
class FLSweep:
    """A grid n x SNR plus the Figure 2 pair (n fixed, n·SNR² in ``fig2_n_snr2``), x seeds."""

    ns: tuple = (8, 16, 32, 64)
    snrs: tuple = (0.112, 0.25, 0.56)
    fig2_n: int = 30
    fig2_n_snr2: tuple = (0.75, 6.75)
    seeds: tuple = (0, 1, 2)
    d: int = 1000
    m: int = 20
    sigma_xi: float = 0.05
    sigma0: float = 0.01
    objectives: tuple = OBJECTIVES
    diffusion: DiffusionSetup = field(default_factory=DiffusionSetup)
    classification: ClassificationSetup = field(default_factory=ClassificationSetup)
    n_log: int = 40

    def models(self, objective: str) -> list[FLModel]:
        common = dict(d=self.d, m=self.m, sigma_xi=self.sigma_xi, sigma0=self.sigma0)
        out = [FLModel(objective, n, snr, s, **common) for n in self.ns for snr in self.snrs for s in self.seeds]
        for v in self.fig2_n_snr2:
            snr = math.sqrt(v / self.fig2_n)
            out += [FLModel(objective, self.fig2_n, snr, s, experiment="fig2", **common) for s in self.seeds]
        return out

    def setup(self, objective: str):
        return self.diffusion if objective == "diffusion" else self.classification


# ---- data ---------------------------------------------------------------------------------------
def model_data(model: FLModel, n_test: int = 0) -> dict:
    """The model's training sample (and test sample), full dimension, float64.

    Each distinct patch is stored once: ``patches`` [R, d] and ``index`` [n, 2] (example i is
    [patches[index[i, 0]], patches[index[i, 1]]]); here patches = [mu_{+1}, mu_{-1}, xi_1..xi_n].
    Also ``y`` [n] (+-1), ``mu`` [2, d] (the signal directions the alignments are measured against),
    ``xi`` [n, d] (noise patches), and optionally ``test_patches``, ``test_index``, ``y_test``."""
    from theory import TwoPatchSignalNoise

    seed = model.data_seed()
    law = TwoPatchSignalNoise(model.d, model.mu_norm, model.sigma_xi, seed=seed)
    # the law draws its mu directions from ``seed`` itself: the sample gets its own named stream
    # (sharing ``seed`` made the first noise values bit-identical to the mu draws)
    gen = stream(seed, "sample")

    def draw(n):
        _, lat = law.sample(n, generator=gen, return_latents=True)
        y, xi = lat["y"], lat["xi"]
        index = torch.stack([torch.where(y > 0, 0, 1), 2 + torch.arange(n)], dim=1)
        return torch.cat([law.mu, xi]), index, y, xi

    patches, index, y, xi = draw(model.n)
    out = {"patches": patches, "index": index, "y": y, "mu": law.mu, "xi": xi}
    if n_test:
        out["test_patches"], out["test_index"], out["y_test"], _ = draw(n_test)
    return out


def init_weights(model: FLModel) -> torch.Tensor:
    """W0 ~ N(0, sigma0^2 I): ``[m, d]`` (diffusion, tied) or ``[2, m, d]`` (classifier)."""
    gen = stream(model.data_seed(), f"init-{model.objective}")
    shape = (model.m, model.d) if model.objective == "diffusion" else (2, model.m, model.d)
    return model.sigma0 * torch.randn(shape, generator=gen, dtype=torch.float64)


@dataclass
class Stack:
    """Per-model tensors stacked on a leading axis (zero-padded; ``mask`` marks real examples)."""

    W0: torch.Tensor
    patches: torch.Tensor  # [M, R, k] distinct patches
    index: torch.Tensor  # [M, n, 2] patch indices per example (0 on padding)
    y: torch.Tensor  # [M, n] (+-1; 0 on padding)
    mask: torch.Tensor  # [M, n] bool
    mu: torch.Tensor  # [M, 2, k]
    xi: torch.Tensor  # [M, n, k]
    d: torch.Tensor  # [M] ambient patch dimension
    test_patches: torch.Tensor | None = None
    test_index: torch.Tensor | None = None
    y_test: torch.Tensor | None = None

    def x0(self) -> torch.Tensor:
        """The examples as ``[M, n, 2, k]``."""
        return N.gather_patches(self.patches, self.index)


def build_stack(models: list[FLModel], data: list[dict], reduce: bool, dtype, device) -> Stack:
    """Stack per-model data, in span coordinates when ``reduce`` (exact, see sims.train).

    The basis spans the data first (mu, patches), then W0: the training patches are zero in the
    last coordinates, so for the classifier (whose loss sees W only through <w, patch>) they are kept
    only on the data coordinates and the main contraction is over those (ours; exact, cheaper)."""
    keys = ("W0", "patches", "index", "y", "mask", "mu", "xi", "test_patches", "test_index", "y_test")
    parts = {k: [] for k in keys}
    truncate = reduce and models[0].objective == "classification"
    for model, dat in zip(models, data):
        W0 = init_weights(model)
        if reduce:
            rows = [dat["mu"], dat["patches"], W0.reshape(-1, model.d)]
            Q = span_basis(torch.cat(rows))
        else:
            Q = torch.eye(model.d, dtype=torch.float64)
        kd = min(Q.shape[1], len(dat["mu"]) + len(dat["patches"])) if truncate else Q.shape[1]
        parts["W0"].append(W0 @ Q)
        parts["mask"].append(torch.ones(model.n, dtype=torch.bool))
        for key in ("patches", "mu", "xi"):
            parts[key].append(dat[key] @ Q[:, :kd])
        if "test_patches" in dat:
            parts["test_patches"].append(dat["test_patches"] @ Q)
        for key in ("index", "y", "test_index", "y_test"):
            if key in dat:
                parts[key].append(dat[key])
    last = lambda t: t.dim() - 1  # noqa: E731
    pads = {"W0": (last(parts["W0"][0]),), "patches": (0, 1), "index": (0,), "y": (0,), "mask": (0,),
            "mu": (1,), "xi": (0, 1), "test_patches": (0, 1), "test_index": (0,), "y_test": (0,)}
    st = {k: stack_padded(v, pads[k]) for k, v in parts.items() if v}
    conv = {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in st.items()}
    return Stack(**conv, d=torch.tensor([m.d for m in models], device=device))


# ---- losses -------------------------------------------------------------------------------------
def _time_grid(ts, dtype, device):
    from theory.schedules import ou_alpha_beta

    a, b = ou_alpha_beta(torch.as_tensor(ts, dtype=torch.float64))
    return a.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype)


def closed_form_dsm(W: torch.Tensor, st: Stack, alphas, betas) -> torch.Tensor:
    """(1/n) sum_i E_eps sum_p ||s_p - eps^(p)||^2, exact, averaged over the OU time grid; ``[M]``.

    ``theory.growth.expected_dsm_loss_quadratic`` gives the per-patch expectation in the coordinates
    it is handed; its constant E||eps||^2 counts those coordinates (the stack's k), so adding
    (d - k) per patch restores the ambient value (it does not change the gradient).
    """
    from theory.growth import expected_dsm_loss_quadratic

    P = st.index.shape[2]
    total = 0.0
    for a, b in zip(alphas, betas):
        per_patch = expected_dsm_loss_quadratic(W, st.patches, a, b)  # [M, R], once per distinct patch
        per = N.gather_patches(per_patch, st.index).sum(-1)
        total = total + N.masked_mean(per, st.mask)
    return total / len(alphas) + P * (st.d - st.patches.shape[-1]).to(W.dtype)


def make_loss(objective: str, setup, st: Stack, models: list[FLModel]):
    """``loss_fn(W, step) -> [M]`` for the stack (per-model noise streams when sampling eps)."""
    if objective == "classification":
        return lambda W, step: N.logistic_loss(W, st.patches, st.index, st.y, st.mask, setup.activation)
    dtype, device = st.patches.dtype, st.patches.device
    if setup.expectation == "closed":
        if setup.activation != "quadratic":
            raise ValueError("the closed-form expectation exists for the quadratic activation only; use --expectation sampled")
        if setup.t_range:  # E over t ~ U(lo, hi) by the midpoint rule
            lo, hi = setup.t_range
            ts = lo + (hi - lo) * (torch.arange(setup.t_points, dtype=torch.float64) + 0.5) / setup.t_points
        else:
            ts = torch.as_tensor(setup.t, dtype=torch.float64)
        alphas, betas = _time_grid(ts, dtype, device)
        return lambda W, step: closed_form_dsm(W, st, alphas, betas)
    gens = [stream(mod.data_seed(), "dsm-noise") for mod in models]
    x0 = st.x0()
    M, n, P, k = x0.shape
    grid = torch.as_tensor(setup.t, dtype=torch.float64)

    def loss(W, step):
        # per model, from its own generator: K noise draws per example, each with its own OU time
        eps, ts = [], []
        for mod, g in zip(models, gens):
            eps.append(torch.randn(setup.draws, mod.n, P, k, generator=g, dtype=torch.float64))
            u = torch.rand(setup.draws, mod.n, generator=g, dtype=torch.float64)
            if setup.t_range:
                ts.append(setup.t_range[0] + (setup.t_range[1] - setup.t_range[0]) * u)
            else:
                ts.append(grid[(u * len(grid)).long().clamp(max=len(grid) - 1)])
        eps = stack_padded(eps, (1,)).to(x0)
        a, b = _time_grid(stack_padded(ts, (1,)).clamp(min=1e-12), dtype, device)  # padding: any valid t
        return N.sampled_dsm_loss(W, x0, eps, a[..., None, None], b[..., None, None], st.mask, setup.activation)

    loss.generators = gens
    return loss


# ---- metrics ------------------------------------------------------------------------------------
def metrics(objective: str, W: torch.Tensor, st: Stack, act: str) -> dict:
    """Signal / noise alignments per model (tensors ``[M]``), in whatever coordinates W lives in."""
    mask = st.mask
    W_full, dW = W, W - st.W0
    kd = st.mu.shape[-1]  # the data coordinates (all of them unless the classifier's stack truncates)
    W, dW = W[..., :kd], dW[..., :kd]
    if objective == "diffusion":
        A_mu = torch.einsum("Mrk,Mjk->Mjr", W, st.mu)  # [M, 2, m]
        signal_j = A_mu.amax(-1)
        A_xi = torch.einsum("Mrk,Mik->Mir", W, st.xi).abs().amax(-1)  # [M, n]
        sig_inc = torch.einsum("Mrk,Mjk->Mjr", dW, st.mu).mean(dim=(1, 2))
        noi_inc = N.masked_mean(torch.einsum("Mrk,Mik->Mir", dW, st.xi).mean(-1), mask)
    else:
        A_mu = torch.einsum("Mjrk,Mjk->Mjr", W, st.mu).abs()  # class-j filters against mu_j
        signal_j = A_mu.amax(-1)
        pick = (st.y > 0)[:, :, None]  # class-matched filters W_{y_i}
        both = torch.einsum("Mjrk,Mik->Mjir", W, st.xi)  # [M, 2, n, m]
        A_xi = torch.where(pick, both[:, 0], both[:, 1]).abs().amax(-1)
        dmu = torch.einsum("Mjrk,Mjk->Mjr", dW, st.mu)
        sig_inc = dmu.abs().mean(dim=(1, 2))
        dboth = torch.einsum("Mjrk,Mik->Mjir", dW, st.xi)
        noi_inc = N.masked_mean(torch.where(pick, dboth[:, 0], dboth[:, 1]).abs().mean(-1), mask)
    noise = N.masked_mean(A_xi, mask)
    noise_max = A_xi.masked_fill(~mask, float("-inf")).amax(-1)
    out = {"signal_pos": signal_j[:, 0], "signal_neg": signal_j[:, 1], "signal": signal_j.mean(-1),
           "noise": noise, "noise_max": noise_max, "signal_inc": sig_inc, "noise_inc": noi_inc}
    if objective == "classification" and st.test_patches is not None:
        f = N.classifier_indexed(W_full, st.test_patches, st.test_index, act)
        out["test_acc"] = ((f > 0) == (st.y_test > 0)).to(W.dtype).mean(-1)
    return out


# ---- training -----------------------------------------------------------------------------------
def train_group(models: list[FLModel], setup, n_log: int = 40, device="cpu", dtype=torch.float64,
                checkpoint: Checkpoint | None = None, progress=None, reduce: bool | None = None,
                return_params: bool = False):
    """Train one stack (same objective and setup); returns tidy rows (one per model x logged step).

    ``reduce`` (default: whenever exact) trains in span coordinates; ``return_params`` also returns
    the final stacked weights (in the coordinates trained in)."""
    objective = models[0].objective
    if any(m.objective != objective for m in models):
        raise ValueError("a stack holds one objective")
    exact = objective == "classification" or setup.expectation == "closed"
    if reduce is None:
        reduce = exact
    elif reduce and not exact:
        raise ValueError("the span reduction is exact only for the classifier and the closed-form DSM loss")
    n_test = getattr(setup, "n_test", 0)
    st = build_stack(models, [m.data(n_test) for m in models], reduce, dtype, device)
    loss_fn = make_loss(objective, setup, st, models)
    logs = log_steps(setup.steps, n_log)
    rows: list[dict] = []
    W, start = st.W0, 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        W, start, rows = state["W"].to(device=device, dtype=dtype), int(state["step"]), list(state["rows"])
        for g, s in zip(getattr(loss_fn, "generators", []), state.get("gens", [])):
            g.set_state(s)
        if progress is not None:
            progress.update(start * len(models))
    static = [dict(m.row_info(), lr=setup.lr) for m in models]

    def on_log(step, W_, losses):
        with torch.no_grad():
            met = {k: v.cpu().tolist() for k, v in metrics(objective, W_, st, setup.activation).items()}
        losses = losses.cpu().tolist()
        for i, base in enumerate(static):
            row = dict(base, step=step, loss=losses[i], **{k: v[i] for k, v in met.items()})
            row.setdefault("test_acc", float("nan"))
            rows.append(row)

    def on_checkpoint(step, W_):
        if checkpoint is not None and checkpoint.due():
            gens = [g.get_state() for g in getattr(loss_fn, "generators", [])]
            checkpoint.save({"W": W_.cpu(), "step": step, "rows": rows, "gens": gens})

    W = W.reshape(len(models), *st.W0.shape[1:])
    W = gradient_descent(W, loss_fn, setup.lr, setup.steps, on_log, logs, start, on_checkpoint, progress)
    return (rows, W) if return_params else rows
