"""The rule in score space: psi_t, the rule-conforming error, and the DSM patch-wise constant L_t.

Everything here is the toolkit's **own reconstruction** (``docs/theory.md``,
``shared/spec/rules-theory-derivation.md``) of the missing Section 4 of arXiv 2502.04725, not the
paper's Theorem 4.5. Notation: OU time t, alpha = e^{-t}, beta = sqrt(1 - e^{-2t}),
a = <x(1), u>, b = <x(2), v>, tau = beta / alpha.

- psi_t(x) = <s(1)(x) + x(1)/beta^2, u> + <s(2)(x) + x(2)/beta^2, v>   (derivation, section 3);
  the exact score has psi_t ≡ alpha/beta^2 (identity (*)).
- Rule-conforming error E_t = E[(psi_t - alpha/beta^2)^2] = bias^2 + variance; scale-free: / (alpha/beta^2)^2.
- L_t (derivation, section 4): the rule error of the DSM-optimal *patch-wise* score,
  g*(a) = (alpha/beta^2) E[zeta | a], h*(b) = (alpha/beta^2) E[1 - zeta | b]:
      L_t = (alpha/beta^2)^2 E[(G(a) - H(b))^2],  G(a) = E[zeta | a],  H(b) = E[zeta | b],
  computed by tensor-product quadrature over (zeta, g): a/alpha = zeta + tau g1 and
  1 - b/alpha = zeta - tau g2 with g1, g2 iid N(0, 1), independent given zeta.
  (Ours, a consequence of the symmetry g -> -g: E[H|zeta] = E[G|zeta], so
  L_t / (alpha/beta^2)^2 = 2 E_zeta Var(G(a) | zeta); the tests check it.)
- L_t(F): the same for the DSM optimum over degree-k polynomials in a (and in b): the L^2(p_t)
  projections of G and H, by weighted least squares on the same quadrature nodes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from theory.schedules import ou_alpha, ou_alpha_beta2_array, ou_alpha_beta2_float, ou_beta
from theory.zeta import ZetaLaw, as_zeta_law

_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_G_MAX = 10.0  # |g| range of the standard-normal rule (phi(10) ~ 8e-23)


# ---- times ------------------------------------------------------------------------------------------
def _times(t) -> tuple[np.ndarray, bool]:
    arr = np.asarray(torch.as_tensor(t, dtype=torch.float64).cpu().numpy(), dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"t must be a number or a 1-D list of OU times, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"OU time t must be finite and > 0, got {arr.tolist()}")
    return np.atleast_1d(arr), arr.ndim == 0


def _alpha_beta_np(t: float) -> tuple[float, float]:
    alpha, beta2 = ou_alpha_beta2_float(t)
    return alpha, math.sqrt(beta2)


def _out(values: np.ndarray, scalar: bool):
    return float(values[0]) if scalar else values


# ---- psi and the rule-conforming error ------------------------------------------------------------
def psi(score_fn, x, t, u, v) -> torch.Tensor:
    """psi_t(x) ``[N]`` for a score callable ``score_fn(x, t) -> [N, 2d]`` (or its values)."""
    x = torch.as_tensor(x)
    d = x.shape[-1] // 2
    if x.dim() != 2 or x.shape[1] != 2 * d or d < 1:
        raise ValueError(f"x must have shape [N, 2d], got {list(x.shape)}")
    s = score_fn(x, t) if callable(score_fn) else torch.as_tensor(score_fn)
    if s.shape != x.shape:
        raise ValueError(f"the score must have the shape of x {list(x.shape)}, got {list(s.shape)}")
    tt = torch.as_tensor(t, dtype=torch.float64)
    beta2 = ou_beta(tt).to(x) ** 2
    if beta2.dim() == 1:
        beta2 = beta2[:, None]
    u, v = torch.as_tensor(u).to(x), torch.as_tensor(v).to(x)
    return (s[:, :d] + x[:, :d] / beta2) @ u + (s[:, d:] + x[:, d:] / beta2) @ v


@dataclass(frozen=True)
class RuleError:
    """E_t = E[(psi - target)^2] = bias2 + variance, target = alpha/beta^2; ``*_scaled`` / target^2."""

    t: float
    target: float
    mean_psi: float
    bias2: float
    variance: float
    total: float
    bias2_scaled: float
    variance_scaled: float
    total_scaled: float
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def rule_error(source, t, x=None, u=None, v=None) -> RuleError:
    """The rule-conforming error at one OU time t, from ψ samples ``[N]`` or from a score callable
    ``source(x, t)`` evaluated at samples ``x ~ p_t`` (then ``u``, ``v`` are needed)."""
    t_arr, scalar = _times(t)
    if not scalar and t_arr.size != 1:
        raise ValueError("rule_error takes one OU time t (the bias is defined at a fixed t)")
    t0 = float(t_arr[0])
    if callable(source):
        if x is None or u is None or v is None:
            raise ValueError("rule_error(score_fn, t, x=..., u=..., v=...) needs samples x and the rule directions u, v")
        values = psi(source, x, t0, u, v)
    else:
        values = torch.as_tensor(source)
    values = values.detach().to(torch.float64).reshape(-1)
    if values.numel() < 2:
        raise ValueError("rule_error needs at least two psi samples")
    alpha, beta = _alpha_beta_np(t0)
    target = alpha / beta**2
    mean = float(values.mean())
    bias2 = (mean - target) ** 2
    variance = float(values.var(unbiased=False))
    total = bias2 + variance  # == mean((psi - target)^2) exactly (population variance)
    k = target**2
    return RuleError(t0, target, mean, bias2, variance, total, bias2 / k, variance / k, total / k, int(values.numel()))


# ---- the DSM-optimal patch-wise score -------------------------------------------------------------
def patchwise_optimum(x, t, u, v, zeta="uniform") -> torch.Tensor:
    """The DSM optimum over patch-wise scores (derivation, section 4), ``[N, 2d]``:
    s(1) = -x(1)/beta^2 + (alpha/beta^2) E[zeta | a] u,  s(2) = -x(2)/beta^2 + (alpha/beta^2) E[1 - zeta | b] v.
    E[zeta | a]: the prior P_zeta times N(a/alpha, tau^2); E[zeta | b]: times N(1 - b/alpha, tau^2)."""
    law = as_zeta_law(zeta)
    x = torch.as_tensor(x)
    d = x.shape[-1] // 2
    if x.dim() != 2 or x.shape[1] != 2 * d or d < 1:
        raise ValueError(f"x must have shape [N, 2d], got {list(x.shape)}")
    tt = torch.as_tensor(t, dtype=torch.float64)
    alpha, beta = ou_alpha(tt).to(x), ou_beta(tt).to(x)
    alpha, beta = torch.broadcast_tensors(alpha.reshape(-1), beta.reshape(-1))
    u, v = torch.as_tensor(u).to(x), torch.as_tensor(v).to(x)
    a, b = x[:, :d] @ u, x[:, d:] @ v
    tau = (beta / alpha).expand_as(a)
    g = law.posterior_mean(a / alpha, tau)
    h = 1.0 - law.posterior_mean(1.0 - b / alpha, tau)
    k = (alpha / beta**2)[:, None]
    return torch.cat([-x[:, :d] / beta[:, None] ** 2 + k * g[:, None] * u,
                      -x[:, d:] / beta[:, None] ** 2 + k * h[:, None] * v], dim=1)


# ---- quadrature ------------------------------------------------------------------------------------
def _composite_gl(edges: np.ndarray):
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * _GL_X).ravel(), ((b - a) / 2 * _GL_W).ravel()


def _transitions(law: ZetaLaw, scale: float):
    """(centres, widths) where a discrete law's posterior mean jumps between neighbours (ours:
    equal adjacent logits at c* = (z_k + z_{k+1})/2 - scale^2 log(w_{k+1}/w_k)/(z_{k+1} - z_k))."""
    if law.kind == "uniform":
        return np.zeros(0), np.zeros(0)
    order = np.argsort(law.support)
    z, w = np.asarray(law.support)[order], np.asarray(law.weights)[order]
    gap = np.diff(z)
    centres = (z[:-1] + z[1:]) / 2 - scale**2 * np.log(w[1:] / w[:-1]) / gap
    return centres, scale / gap  # widths in units of g


def _normal_rule(edges: np.ndarray):
    """Composite Gauss-Legendre nodes and N(0, 1) weights (normalised) on the given edges."""
    g, gw = _composite_gl(np.unique(np.clip(edges, -38.0, 38.0)))
    gw = gw * np.exp(-0.5 * g * g)
    return g, gw / gw.sum()


def _rule(law: ZetaLaw, scale: float):
    """Nodes for E over zeta ~ P_zeta and g ~ N(0, 1) of functions of zeta ± scale g.
    Returns (zeta [R], zeta_w [R], row [M], g [M], g_w [M]); g_w sums to 1 within each row."""
    base = np.arange(-_G_MAX, _G_MAX + 0.25, 0.5)
    if law.kind == "uniform":  # boundary layers of width ~scale at zeta = 0 and 1; G smooth in g
        geo = scale * 2.0 ** np.arange(-3.0, 60.0)
        geo = geo[geo < 0.5]
        zeta, zeta_w = _composite_gl(np.unique(np.concatenate([np.linspace(0, 1, 21), geo, 1 - geo])))
        g, gw = _normal_rule(base)
        return zeta, zeta_w, np.repeat(np.arange(zeta.size), g.size), np.tile(g, zeta.size), np.tile(gw, zeta.size)
    zeta, zeta_w = np.asarray(law.support), np.asarray(law.weights)
    centres, widths = _transitions(law, scale)
    offsets = np.array([0, 0.25, 0.5, 1, 2, 4, 8])
    rows, gs, gws = [], [], []
    for i, z in enumerate(zeta):  # refine around each jump of the posterior mean (and its mirror)
        edges = [base] + [g0 + wd * np.concatenate([-offsets, offsets])
                          for c, wd in zip(centres, widths) for g0 in ((c - z) / scale, (z - c) / scale)]
        g, gw = _normal_rule(np.concatenate(edges))
        rows.append(np.full(g.size, i)), gs.append(g), gws.append(gw)
    return zeta, zeta_w, np.concatenate(rows), np.concatenate(gs), np.concatenate(gws)


def _pm(law: ZetaLaw, centre: np.ndarray, scale: float) -> np.ndarray:
    c = torch.from_numpy(centre)
    return law.posterior_mean(c, torch.full_like(c, scale)).numpy()


def _rowmean(row, w, f, n_rows):
    return np.bincount(row, weights=w * f, minlength=n_rows)


def _mixed_square(zeta, zeta_w, row, gw, dev_g, dev_h) -> float:
    """E[(G - H)^2] with G - zeta, H - zeta given per node, G and H independent given zeta."""
    R = zeta.size
    e_g, e_h = _rowmean(row, gw, dev_g, R), _rowmean(row, gw, dev_h, R)
    e_g2, e_h2 = _rowmean(row, gw, dev_g**2, R), _rowmean(row, gw, dev_h**2, R)
    return float(np.sum(zeta_w * (e_g2 + e_h2 - 2.0 * e_g * e_h)))


@functools.lru_cache(maxsize=4096)  # simulations ask for the same (t, law) at every evaluation
def _scaled_bound_one(t: float, law: ZetaLaw, degree: int | None = None) -> float:
    alpha, beta = _alpha_beta_np(t)
    tau = beta / alpha
    zeta, zeta_w, row, g, gw = _rule(law, tau)
    z = zeta[row]
    c_a, c_b = z + tau * g, z - tau * g  # a/alpha and 1 - b/alpha at the nodes
    G, H = _pm(law, c_a, tau), _pm(law, c_b, tau)
    if degree is not None:
        w = zeta_w[row] * gw
        G, H = _project(c_a, G, w, degree), _project(c_b, H, w, degree)
    return _mixed_square(zeta, zeta_w, row, gw, G - z, H - z)


def _project(c: np.ndarray, f: np.ndarray, w: np.ndarray, degree: int) -> np.ndarray:
    """The L^2(w) projection of f onto polynomials of degree <= ``degree`` in c (Hermite_e basis
    of the standardised variable, solved by least squares)."""
    mean = np.sum(w * c)
    sd = math.sqrt(max(np.sum(w * (c - mean) ** 2), 1e-300))
    V = np.polynomial.hermite_e.hermevander((c - mean) / sd, degree)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(V * sw[:, None], f * sw, rcond=None)
    return V @ coef


def bound(t, zeta="uniform", scaled: bool = False):
    """L_t by quadrature, vectorised over t (numpy array, or a float for scalar t).

    ψ units by default; ``scaled=True`` divides by (alpha/beta^2)^2."""
    law = as_zeta_law(zeta)
    t_arr, scalar = _times(t)
    out = np.array([_scaled_bound_one(float(ti), law) for ti in t_arr])
    if not scaled:
        a, b = ou_alpha_beta2_array(t_arr)
        out = out * (a / b) ** 2
    return _out(out, scalar)


def bound_class(t, degree: int, zeta="uniform", scaled: bool = False):
    """L_t(F) for F = polynomials of degree <= ``degree`` in a (for g) and in b (for h)."""
    if isinstance(degree, bool) or int(degree) != degree or degree < 0:
        raise ValueError(f"polynomial degree must be an integer >= 0, got {degree}")
    law = as_zeta_law(zeta)
    t_arr, scalar = _times(t)
    out = np.array([_scaled_bound_one(float(ti), law, int(degree)) for ti in t_arr])
    if not scaled:
        a, b = ou_alpha_beta2_array(t_arr)
        out = out * (a / b) ** 2
    return _out(out, scalar)


def bound_mc(t, zeta="uniform", scaled: bool = False, n: int = 200_000, seed: int = 0, d: int = 2):
    """L_t by Monte Carlo through the whole chain: sample x_0 ~ RulePatches(d), noise it, evaluate
    :func:`patchwise_optimum`, :func:`psi` and :func:`rule_error`. Returns (estimate, standard error)."""
    from theory.distributions import RulePatches

    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"Monte Carlo sample count n must be an integer >= 2, got {n}")
    t_arr, scalar = _times(t)
    dist = RulePatches(d, zeta, seed=seed)
    gen = torch.Generator().manual_seed(int(seed))
    est, se = [], []
    for ti in t_arr:
        x0 = dist.sample(int(n), generator=gen)
        alpha, beta = _alpha_beta_np(float(ti))
        xt = alpha * x0 + beta * torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        vals = psi(lambda x, tt: patchwise_optimum(x, tt, dist.u, dist.v, dist.zeta), xt, float(ti), dist.u, dist.v)
        k = 1.0 if not scaled else (alpha / beta**2) ** 2
        sq = (vals - alpha / beta**2) ** 2 / k
        est.append(float(sq.mean())), se.append(float(sq.std() / math.sqrt(n)))
    return _out(np.array(est), scalar), _out(np.array(se), scalar)


# ---- DSM prefers the violating optimum ---------------------------------------------------------------
@dataclass(frozen=True)
class DSMGap:
    """Excess DSM loss E||s - s*||^2 (ψ units squared) of two patch-wise scores, per t."""

    t: np.ndarray
    excess_constant: np.ndarray  # conforming g = (alpha/beta^2) E[zeta], h = (alpha/beta^2) E[1-zeta]
    excess_optimum: np.ndarray  # the rule-violating DSM optimum g*, h*
    gap: np.ndarray  # excess_constant - excess_optimum (> 0: DSM prefers violating the rule)
    rule_error_constant: np.ndarray  # 0: the constants conform exactly
    rule_error_optimum: np.ndarray  # L_t


def dsm_gap_constant_vs_optimum(t, zeta="uniform") -> DSMGap:
    """Excess DSM losses (ours): with Z = E[zeta | a, b], G = E[zeta|a], H = E[zeta|b],
    DSM(s) - DSM(s*) = (alpha/beta^2)^2 {E[(g~ - Z)^2] + E[(h~ - (1 - Z))^2]}, so
      constants: (alpha/beta^2)^2 * 2 Var Z;   optimum: (alpha/beta^2)^2 (2 Var Z - Var G - Var H)
    (E[Z | a] = G), and the gap is (alpha/beta^2)^2 (Var G + Var H) > 0 whenever zeta is random.
    Z depends on a - b only: its centre is zeta + (tau/sqrt 2) g, its scale tau/sqrt 2."""
    law = as_zeta_law(zeta)
    t_arr, _ = _times(t)
    rows = []
    for ti in t_arr:
        alpha, beta = _alpha_beta_np(float(ti))
        tau, k2 = beta / alpha, (alpha / beta**2) ** 2
        out = []
        for scale in (tau, tau / math.sqrt(2.0)):  # G (and H, same law given zeta), then Z
            zeta_n, zeta_w, row, g, gw = _rule(law, scale)
            f = _pm(law, zeta_n[row] + scale * g, scale) - law.mean
            out.append(float(np.sum(zeta_w[row] * gw * f * f)))  # Var, as E[f] = E[zeta] exactly
        var_g, var_z = out
        exc_c, exc_o = k2 * 2 * var_z, k2 * (2 * var_z - 2 * var_g)
        rows.append((exc_c, exc_o, exc_c - exc_o, 0.0, k2 * _scaled_bound_one(float(ti), law)))
    cols = np.array(rows).T
    return DSMGap(t_arr, *cols)
