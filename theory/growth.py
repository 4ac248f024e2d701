"""Feature learning (arXiv 2412.01021): the exact expected DSM loss of the tied quadratic network,
and the early-phase growth-rate predictions for signal learning vs noise memorisation.

Setting (spec ``feature-learning-paper.md`` sections 1-3, reconstructed): data ``TwoPatchSignalNoise``
(x(1) = mu_y, x(2) = xi_i, mu_{+1} ⊥ mu_{-1}, ||mu_{±1}|| = ||mu||, E||xi||^2 = sigma^2 (d - 2)), n
examples, n_j = n/2 per class; SNR = ||mu|| / (sigma sqrt(d)).

Diffusion model: s(W, x) = (1/m) sum_r <w_r, x>^2 w_r applied to each noised patch
x_t = alpha x_0 + beta eps; loss L(W) = (1/n) sum_i sum_p E_eps ||s(W, x_t,i^(p)) - eps_i^(p)||^2.
Classification model: f = F_{+1} - F_{-1}, F_j = (1/m) sum_r sum_p <w_{j,r}, x^(p)>^2, logistic loss.

Early-phase growth (our derivation; the Gaussian moments are proved in ``theory.symbolic``):

* Diffusion. Stein's lemma gives E_eps <s(x_t), eps> = (2 alpha beta / m) sum_r <w_r, x_0> ||w_r||^2
  (``symbolic.stein_quadratic``). From a small init (||w_r|| ~ sigma_0 sqrt(d) -> 0) the ||s||^2 part of
  the loss is O(sigma_0^6) while -2 E<s, eps> is O(sigma_0^3), so one GD step moves w_r by
      Δw_r = (4 eta alpha beta / (n m)) sum_{i,p} (||w_r||^2 x_0,i^(p) + 2 <w_r, x_0,i^(p)> w_r)
  (``symbolic.driving_term``). Projecting on mu_j (x_0 ⊥ mu_j except x_0 = mu_j for the n_j examples of
  class j) and on xi_i (d >> n: <xi_i', xi_i> << ||xi_i||^2 for i' ≠ i), the O(1/d) w_r-terms aside:
      Δ<w_r, mu_j> ≈ (4 eta alpha beta/(n m)) ||w_r||^2 n_j ||mu||^2,
      Δ<w_r, xi_i> ≈ (4 eta alpha beta/(n m)) ||w_r||^2 ||xi_i||^2.
  Both are *linear* in time (||w_r||^2 stays ≈ sigma_0^2 d early on), and their ratio, the
  signal/noise growth-rate ratio, is
      n_j ||mu||^2 / ||xi_i||^2 = n ||mu||^2 / (2 sigma^2 (d - 2)) = (n SNR^2 / 2) d / (d - 2),
  independent of eta, alpha, beta, m and the init: the spec's n SNR^2 / 2.
* Classification. With l'(0) = -1/2, one GD step multiplies the coefficients:
      <w_{j,r}, mu_j>  <- (1 + eta n_j ||mu||^2 / (n m)) <w_{j,r}, mu_j>,
      <w_{j,r}, xi_i>  <- (1 + eta ||xi_i||^2 / (n m)) <w_{j,r}, xi_i>   (y_i = j),
  *exponential* growth whose rates have the same ratio n_j ||mu||^2 / ||xi||^2. With two orthogonal
  class signals each class filter learns its signal from n_j = n/2 examples, so for this data law
  the ratio is (n SNR^2 / 2) d/(d - 2); the paper's Θ(n SNR^2) (exactly n SNR^2 d/(d-1) for the
  single-signal law x(1) = y mu of Cao et al. 2022, where all n examples push the same mu) holds up
  to that constant. What differs between the two objectives is linear vs exponential growth, i.e.
  balanced learning vs winner-take-all at n SNR^2 ~ 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


# ---- the exact expected DSM loss of the tied quadratic network --------------------------------------
def expected_dsm_loss_quadratic(W, x0, alpha, beta) -> torch.Tensor:
    """E_eps ||s(alpha x0 + beta eps) - eps||^2 per example, s(x) = (1/m) sum_r <w_r, x>^2 w_r.

    W ``[..., m, d]``, x0 ``[..., n, d]`` (leading dims broadcast, e.g. an ensemble ``[E, m, d]``
    against shared data ``[n, d]``), alpha/beta floats or tensors broadcastable to ``[..., n]``.
    Returns ``[..., n]``. Gaussian moments (spec section 8; proved in ``theory.symbolic``): with
    p_r = <w_r, x> ~ N(mu_r, beta^2 G_rr), mu_r = alpha <w_r, x0>, G = W W^T,
      E<s, eps>  = (2 beta / m) sum_r mu_r G_rr                                   (Stein)
      E||s||^2   = (1/m^2) sum_{r,s} G_rs E[p_r^2 p_s^2],
      E[p_r^2 p_s^2] = q_r q_s + 2 beta^4 G_rs^2 + 4 beta^2 mu_r mu_s G_rs,  q_r = mu_r^2 + beta^2 G_rr  (Isserlis)
    so E||s - eps||^2 = E||s||^2 - 2 E<s, eps> + d, at O(m^2 + m d) per example. Autograd through it
    is the exact expected gradient.
    """
    W, x0 = torch.as_tensor(W), torch.as_tensor(x0)
    if W.dim() < 2 or x0.dim() < 2:
        raise ValueError(f"W must be [..., m, d] and x0 [..., n, d], got {list(W.shape)} and {list(x0.shape)}")
    m, d = W.shape[-2:]
    if x0.shape[-1] != d:
        raise ValueError(f"x0 has patch dimension {x0.shape[-1]} but W has d = {d}")
    alpha = torch.as_tensor(alpha, dtype=W.dtype, device=W.device)
    beta = torch.as_tensor(beta, dtype=W.dtype, device=W.device)
    Wt = W.transpose(-1, -2)
    mu = alpha[..., None] * (x0.to(W.dtype) @ Wt)  # [..., n, m]
    G = W @ Wt  # [..., m, m]
    g = torch.diagonal(G, dim1=-2, dim2=-1)[..., None, :]  # [..., 1, m]
    b2 = (beta**2)[..., None]
    q = mu**2 + b2 * g
    e_ss = ((q @ G) * q).sum(-1) + 4 * b2[..., 0] * ((mu @ (G * G)) * mu).sum(-1)
    e_ss = e_ss + 2 * beta**4 * (G**3).sum((-1, -2))[..., None]
    e_se = (2 * beta / m) * (mu * g).sum(-1)
    return e_ss / m**2 - 2 * e_se + d


# ---- growth-rate predictions --------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureLearningSetup:
    """The data side of a feature-learning config (any object with these attributes also works)."""

    n: int
    d: int
    mu_norm: float
    sigma_xi: float

    def __post_init__(self):
        _validate(self)

    @classmethod
    def from_n_snr2(cls, n: int, d: int, n_snr2: float, sigma_xi: float = 1.0) -> "FeatureLearningSetup":
        """The ||mu|| that gives n SNR^2 = ``n_snr2`` (e.g. the paper's 0.75 and 6.75)."""
        if not (math.isfinite(n_snr2) and n_snr2 > 0):
            raise ValueError(f"n*SNR^2 must be finite and > 0, got {n_snr2}")
        return cls(n, d, sigma_xi * math.sqrt(d * n_snr2 / n), sigma_xi)


def _validate(cfg):
    for name in ("n", "d", "mu_norm", "sigma_xi"):
        if not hasattr(cfg, name):
            raise ValueError(f"a feature-learning config needs attribute {name!r}")
    if int(cfg.n) != cfg.n or cfg.n < 2:
        raise ValueError(f"n must be an integer >= 2, got {cfg.n}")
    if int(cfg.d) != cfg.d or cfg.d < 3:
        raise ValueError(f"d must be an integer >= 3 (xi lives in d - 2 dimensions), got {cfg.d}")
    for name in ("mu_norm", "sigma_xi"):
        value = float(getattr(cfg, name))
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {value}")
    return cfg


def snr(cfg) -> float:
    """SNR = ||mu|| / (sigma_xi sqrt(d))."""
    _validate(cfg)
    return cfg.mu_norm / (cfg.sigma_xi * math.sqrt(cfg.d))


def n_snr2(cfg) -> float:
    """n SNR^2 = n ||mu||^2 / (sigma_xi^2 d), the paper's control parameter."""
    return cfg.n * snr(cfg) ** 2


def diffusion_growth_ratio(cfg, exact: bool = True) -> float:
    """Early-phase Δ<w_r, mu_j> / Δ<w_r, xi_i> of DSM training from a small init (module docstring):
    n_j ||mu||^2 / E||xi||^2 = n ||mu||^2 / (2 sigma^2 (d - 2)); ``exact=False``: n SNR^2 / 2."""
    _validate(cfg)
    if not exact:
        return n_snr2(cfg) / 2
    return (cfg.n / 2) * cfg.mu_norm**2 / (cfg.sigma_xi**2 * (cfg.d - 2))


def classification_rate_ratio(cfg, exact: bool = True) -> float:
    """Ratio of the early exponential growth rates of <w_{j,r}, mu_j> and <w_{j,r}, xi_i> under
    logistic GD (module docstring): n_j ||mu||^2 / E||xi||^2 for this two-signal law, the same
    constant as :func:`diffusion_growth_ratio`; Θ(n SNR^2) as the paper states."""
    return diffusion_growth_ratio(cfg, exact=exact)


def diffusion_early_increments(cfg, *, eta: float, alpha: float, beta: float, m: int, w_norm_sq: float) -> dict:
    """Leading-order per-step increments {signal: Δ<w_r, mu_j>, noise: Δ<w_r, xi_i>} (E||xi||^2)."""
    _validate(cfg)
    c = 4 * eta * alpha * beta * w_norm_sq / (cfg.n * m)
    return {"signal": c * (cfg.n / 2) * cfg.mu_norm**2, "noise": c * cfg.sigma_xi**2 * (cfg.d - 2)}


def classification_early_rates(cfg, *, eta: float, m: int) -> dict:
    """Leading-order per-step multiplicative rates {signal, noise}: coefficient <- (1 + rate) coefficient."""
    _validate(cfg)
    return {"signal": eta * (cfg.n / 2) * cfg.mu_norm**2 / (cfg.n * m),
            "noise": eta * cfg.sigma_xi**2 * (cfg.d - 2) / (cfg.n * m)}
