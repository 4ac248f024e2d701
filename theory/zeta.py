"""The law of the hidden rule variable zeta, and its Gaussian posteriors.

In the rules data law (``RulePatches``) x(1) = zeta u and x(2) = (1 - zeta) v with zeta ~ P_zeta on
[0, 1] (rules-theory derivation, section 1). Every posterior of zeta that the toolkit needs has the
same shape: a prior P_zeta times one Gaussian factor,

    pi(zeta | obs)  ∝  P_zeta(zeta) * exp(-(zeta - c)^2 / (2 s^2)),

with (c, s) depending on what is observed (derivation, sections 2 and 4):
    both patches (a, b):   c = (1 + (a - b) / alpha) / 2,   s = beta / (sqrt(2) alpha)
    patch 1 alone (a):     c = a / alpha,                    s = beta / alpha
    patch 2 alone (b):     c = 1 - b / alpha,                s = beta / alpha
where a = <x(1), u> and b = <x(2), v>. :class:`ZetaLaw` computes the posterior mean and the log
evidence log ∫ exp(-(zeta - c)^2 / (2 s^2)) dP_zeta for a Uniform[0, 1] or a discrete law, batched
in torch, stable in the tails (a truncated normal far outside [0, 1] is handled in log space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_phi(z):
    return -0.5 * z * z - _LOG_SQRT_2PI


def _pair(center, scale):
    center = torch.as_tensor(center)
    if not center.is_floating_point():
        center = center.to(torch.float64)
    scale = torch.as_tensor(scale, dtype=center.dtype, device=center.device)
    return torch.broadcast_tensors(center, scale)


def _reflect(lo, hi):
    """Reflect intervals so their midpoint is <= 0 (Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi))."""
    flip = (lo + hi) > 0
    return torch.where(flip, -hi, lo), torch.where(flip, -lo, hi), flip


def std_truncnorm_mean(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """E[Z | lo < Z < hi] for Z ~ N(0, 1), elementwise, stable for intervals deep in a tail.

    Textbook form (phi(lo) - phi(hi)) / (Phi(hi) - Phi(lo)). After reflecting so that lo + hi <= 0
    (ours): phi(lo) - phi(hi) = phi(hi) * expm1((hi - lo)(hi + lo) / 2) and
    Phi(hi) - Phi(lo) = Phi(hi) * (-expm1(log Phi(lo) - log Phi(hi))), so the ratio is
    exp(log phi(hi) - log Phi(hi)) * expm1(...) / (-expm1(...)) with no cancellation.
    """
    a, b, flip = _reflect(lo, hi)
    log_phi_b, log_cdf_a, log_cdf_b = _log_phi(b), torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    num = torch.expm1(0.5 * (b - a) * (b + a))  # in [-1, 0]
    den = -torch.expm1(log_cdf_a - log_cdf_b)  # in (0, 1]
    r = torch.exp(log_phi_b - log_cdf_b) * num / den
    return torch.where(flip, -r, r)


def std_normal_log_mass(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for lo < hi, stable in the tails (same reflection as above)."""
    a, b, _ = _reflect(lo, hi)
    log_cdf_a, log_cdf_b = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    return log_cdf_b + torch.log(-torch.expm1(log_cdf_a - log_cdf_b))


@dataclass(frozen=True)
class ZetaLaw:
    """P_zeta: ``kind="uniform"`` (Uniform[0, 1]) or ``kind="discrete"`` with ``support``/``weights``."""

    kind: str = "uniform"
    support: tuple = ()
    weights: tuple = ()

    def __post_init__(self):
        if self.kind == "uniform":
            if self.support or self.weights:
                raise ValueError("the uniform zeta law takes no support or weights")
            return
        if self.kind != "discrete":
            raise ValueError(f"unknown zeta law {self.kind!r}: use 'uniform' or a discrete law")
        sup, w = tuple(map(float, self.support)), tuple(map(float, self.weights))
        if not sup or len(sup) != len(w):
            raise ValueError(f"discrete zeta law needs as many weights as support points, got {len(sup)} and {len(w)}")
        if not all(math.isfinite(z) and 0.0 <= z <= 1.0 for z in sup):
            raise ValueError(f"zeta support points must lie in [0, 1] (the rule needs 0 <= zeta <= 1), got {sup}")
        if len(set(sup)) != len(sup):
            raise ValueError(f"zeta support points must be distinct, got {sup}")
        if not all(math.isfinite(x) and x >= 0.0 for x in w) or sum(w) <= 0.0:
            raise ValueError(f"zeta weights must be >= 0 with a positive sum, got {w}")
        keep = [(z, x / sum(w)) for z, x in zip(sup, w) if x > 0.0]
        object.__setattr__(self, "support", tuple(z for z, _ in keep))
        object.__setattr__(self, "weights", tuple(x for _, x in keep))

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec) -> "ZetaLaw":
        """``"uniform"``, ``{"support": [...], "weights": [...]}`` (weights default to equal), a
        string ``"0.2,0.5,0.8"`` or ``"0.2,0.5,0.8:1,2,1"`` (support[:weights]), or a ZetaLaw."""
        if isinstance(spec, ZetaLaw):
            return spec
        if isinstance(spec, str):
            text = spec.strip().lower()
            if text == "uniform":
                return cls()
            sup_text, _, w_text = text.partition(":")
            try:
                sup = [float(z) for z in sup_text.split(",") if z.strip()]
                w = [float(x) for x in w_text.split(",") if x.strip()] if w_text else [1.0] * len(sup)
            except ValueError:
                raise ValueError(
                    f"unknown zeta law {spec!r}: use 'uniform', 'z1,z2,...' or 'z1,z2,...:w1,w2,...'"
                ) from None
            return cls("discrete", tuple(sup), tuple(w))
        if isinstance(spec, dict):
            unknown = set(spec) - {"support", "weights"}
            if unknown or "support" not in spec:
                raise ValueError(f"a discrete zeta law is a dict with keys 'support' and 'weights', got {sorted(spec)}")
            sup = list(spec["support"])
            w = list(spec.get("weights", [1.0] * len(sup)))
            return cls("discrete", tuple(sup), tuple(w))
        raise ValueError(f"unknown zeta law {spec!r}: use 'uniform' or {{'support': [...], 'weights': [...]}}")

    def describe(self) -> str:
        if self.kind == "uniform":
            return "uniform"
        support = ",".join(f"{z:.6g}" for z in self.support)
        if max(self.weights) - min(self.weights) < 1e-12:  # equal weights: the short form parses back
            return support
        return support + ":" + ",".join(f"{w:.6g}" for w in self.weights)

    # ---- moments and sampling -----------------------------------------------------------------
    @property
    def mean(self) -> float:
        if self.kind == "uniform":
            return 0.5
        return sum(z * w for z, w in zip(self.support, self.weights))

    @property
    def var(self) -> float:
        if self.kind == "uniform":
            return 1.0 / 12.0
        return sum(w * (z - self.mean) ** 2 for z, w in zip(self.support, self.weights))

    def _tensors(self, like: torch.Tensor):
        kw = dict(dtype=like.dtype, device=like.device)
        return torch.tensor(self.support, **kw), torch.tensor(self.weights, **kw)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float64) -> torch.Tensor:
        device = generator.device if generator is not None else None
        if self.kind == "uniform":
            return torch.rand(n, generator=generator, dtype=dtype, device=device)
        w = torch.tensor(self.weights, dtype=torch.float64, device=device)
        idx = torch.multinomial(w, n, replacement=True, generator=generator)
        return torch.tensor(self.support, dtype=dtype, device=device)[idx]

    # ---- Gaussian posteriors -------------------------------------------------------------------
    def posterior_mean(self, center: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """E[zeta] under pi(zeta) ∝ P_zeta(zeta) exp(-(zeta - center)^2 / (2 scale^2)), elementwise.

        Uniform: the mean of N(center, scale^2) truncated to [0, 1] (derivation, section 2),
        center + scale * E[Z | -center/scale < Z < (1 - center)/scale]. Discrete: softmax weights.
        """
        center, scale = _pair(center, scale)
        if self.kind == "uniform":
            m = center + scale * std_truncnorm_mean(-center / scale, (1.0 - center) / scale)
            return m.clamp(0.0, 1.0)
        sup, w = self._tensors(center)
        logits = torch.log(w) - 0.5 * ((sup - center[..., None]) / scale[..., None]) ** 2
        return (torch.softmax(logits, dim=-1) * sup).sum(-1)

    def log_evidence(self, center: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """log ∫ exp(-(zeta - center)^2 / (2 scale^2)) dP_zeta(zeta), elementwise.

        Uniform: log(scale sqrt(2 pi)) + log(Phi((1 - center)/scale) - Phi(-center/scale)).
        Discrete: logsumexp_k(log w_k - (zeta_k - center)^2 / (2 scale^2)).
        """
        center, scale = _pair(center, scale)
        if self.kind == "uniform":
            return torch.log(scale) + _LOG_SQRT_2PI + std_normal_log_mass(-center / scale, (1.0 - center) / scale)
        sup, w = self._tensors(center)
        logits = torch.log(w) - 0.5 * ((sup - center[..., None]) / scale[..., None]) ** 2
        return torch.logsumexp(logits, dim=-1)


def as_zeta_law(spec) -> ZetaLaw:
    """Normalise any accepted zeta specification to a :class:`ZetaLaw` (see ``ZetaLaw.from_spec``)."""
    return ZetaLaw.from_spec(spec)
