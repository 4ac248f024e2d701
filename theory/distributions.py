"""The two data laws, with exact samplers, scores, posterior means and log-densities.

Both laws live in R^{2d} as two patches, x = [x(1), x(2)] (patch 1 then patch 2), and are noised by
the OU forward process x_t = alpha_t x_0 + beta_t eps (``theory.schedules``). Every method takes
x of shape ``[N, 2d]`` and t, the OU time (a float or an ``[N]`` tensor, t > 0), computes in x's
dtype and device, and is exact (no sampling, no quadrature). Tweedie's formula links the two
quantities: score(x, t) = (alpha E[x_0 | x_t = x] - x) / beta^2.

- :class:`TwoPatchSignalNoise`: the feature-learning paper's Definition 2.1 (arXiv 2412.01021), as
  reconstructed in the spec: y = ±1 uniform, x(1) = mu_y, x(2) = xi ~ N(0, sigma^2 (I - P_mu)).
- :class:`RulePatches`: the rules paper's two-patch rule law (arXiv 2502.04725, Section 4 as
  reconstructed by us): x(1) = zeta u, x(2) = (1 - zeta) v, zeta ~ P_zeta on [0, 1].
"""

from __future__ import annotations

import math

import torch

from theory.schedules import ou_alpha, ou_beta
from theory.zeta import ZetaLaw, as_zeta_law

_LOG_2PI = math.log(2.0 * math.pi)


# ---- shared validation ---------------------------------------------------------------------------
def _check_dim(d) -> int:
    if isinstance(d, bool) or int(d) != d or d < 2:
        raise ValueError(f"patch dimension d must be an integer >= 2, got {d}")
    return int(d)


def _check_positive(name: str, value) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _orthonormal_pair(d: int, seed: int) -> torch.Tensor:
    """Two orthonormal rows ``[2, d]`` (float64) drawn from ``seed`` by Gram-Schmidt."""
    g = torch.randn(2, d, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    e1 = g[0] / g[0].norm()
    e2 = g[1] - (g[1] @ e1) * e1
    return torch.stack([e1, e2 / e2.norm()])


def _check_n(n) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"number of samples n must be a positive integer, got {n}")
    return int(n)


def _check_x(x, d: int) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != 2 * d:
        raise ValueError(f"x must have shape [N, 2d] = [N, {2 * d}], got {list(x.shape)}")
    return x if x.is_floating_point() else x.to(torch.float64)


def _alpha_beta(t, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t, beta_t) as ``[N, 1]`` (or scalar) tensors in x's dtype and device."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"t must be a float or a tensor of shape [N] = [{x.shape[0]}], got shape {list(t.shape)}")
    alpha, beta = ou_alpha(t), ou_beta(t)  # these validate t > 0
    if t.dim() == 1:
        alpha, beta = alpha[:, None], beta[:, None]
    return alpha.to(x), beta.to(x)


def _generator_device(generator):
    return generator.device if generator is not None else torch.device("cpu")


# ---- the feature-learning law ----------------------------------------------------------------------
class TwoPatchSignalNoise:
    """y = ±1 uniform; x(1) = mu_y; x(2) = xi ~ N(0, sigma_xi^2 (I - P_mu)); mu_{+1} ⊥ mu_{-1}.

    ``mu`` is ``[2, d]`` (rows mu_{+1}, mu_{-1}, norm ``mu_norm``, a random orthonormal pair from
    ``seed``); ``snr`` = ||mu|| / (sigma_xi sqrt(d)) (the paper's SNR). E||xi||^2 = sigma^2 (d - 2).

    Exact scores (ours, Gaussian convolution): the patches are independent under p_t.
      patch 1 is the mixture ½N(alpha mu_{+1}, beta^2 I) + ½N(alpha mu_{-1}, beta^2 I), so
        P(y = +1 | x) = sigmoid(alpha <x(1), mu_{+1} - mu_{-1}> / beta^2)   (equal norms cancel),
        E[x_0(1) | x] = P(+1|x) mu_{+1} + P(-1|x) mu_{-1};
      patch 2 is N(0, Sigma), Sigma = beta^2 P + (beta^2 + alpha^2 sigma^2)(I - P), so
        score(2) = -P x(2) / beta^2 - (I - P) x(2) / (beta^2 + alpha^2 sigma^2),
        E[xi | x] = alpha sigma^2 / (beta^2 + alpha^2 sigma^2) (I - P) x(2).
    """

    def __init__(self, d: int, mu_norm: float, sigma_xi: float, seed: int = 0):
        self.d = _check_dim(d)
        self.mu_norm = _check_positive("mu_norm", mu_norm)
        self.sigma_xi = _check_positive("sigma_xi", sigma_xi)
        self.seed = int(seed)
        self._basis = _orthonormal_pair(self.d, self.seed)  # unit mu directions, [2, d]
        self.mu = self.mu_norm * self._basis

    @property
    def snr(self) -> float:
        return self.mu_norm / (self.sigma_xi * math.sqrt(self.d))

    def __repr__(self) -> str:
        return (f"TwoPatchSignalNoise(d={self.d}, mu_norm={self.mu_norm:g}, sigma_xi={self.sigma_xi:g}, "
                f"seed={self.seed}; snr={self.snr:.4g})")

    def _project(self, z: torch.Tensor) -> torch.Tensor:
        """P_mu z for rows z ``[..., d]``."""
        basis = self._basis.to(z)
        return (z @ basis.T) @ basis

    def sample(self, n: int, generator: torch.Generator | None = None, return_latents: bool = False):
        """x ``[n, 2d]`` float64 (and ``{"y": LongTensor ±1, "xi": [n, d]}`` with ``return_latents``)."""
        n, device = _check_n(n), _generator_device(generator)
        y = 2 * torch.randint(0, 2, (n,), generator=generator, device=device) - 1
        g = torch.randn(n, self.d, generator=generator, dtype=torch.float64, device=device)
        xi = self.sigma_xi * (g - self._project(g))
        mu = self.mu.to(device)
        x = torch.cat([torch.where((y > 0)[:, None], mu[0], mu[1]), xi], dim=1)
        return (x, {"y": y, "xi": xi}) if return_latents else x

    def label_posterior(self, x, t) -> torch.Tensor:
        """P(y = +1 | x_t = x), ``[N]``."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        mu = self.mu.to(x)
        logit = alpha * (x[:, : self.d] @ (mu[0] - mu[1]))[:, None] / beta**2
        return torch.sigmoid(logit)[:, 0]

    def posterior_mean(self, x, t) -> torch.Tensor:
        """E[x_0 | x_t = x], ``[N, 2d]``."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        mu, x2 = self.mu.to(x), x[:, self.d:]
        p = self.label_posterior(x, t)[:, None]
        signal = p * mu[0] + (1.0 - p) * mu[1]
        s2 = self.sigma_xi**2
        noise = alpha * s2 / (beta**2 + alpha**2 * s2) * (x2 - self._project(x2))
        return torch.cat([signal, noise], dim=1)

    def score(self, x, t) -> torch.Tensor:
        """∇_x log p_t(x), ``[N, 2d]``."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        x1, x2 = x[:, : self.d], x[:, self.d:]
        mean1 = self.posterior_mean(x, t)[:, : self.d]
        s1 = (alpha * mean1 - x1) / beta**2
        p2 = self._project(x2)
        s2 = -p2 / beta**2 - (x2 - p2) / (beta**2 + alpha**2 * self.sigma_xi**2)
        return torch.cat([s1, s2], dim=1)

    def log_prob(self, x, t) -> torch.Tensor:
        """log p_t(x), ``[N]`` (exact: a two-component mixture times a Gaussian)."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        alpha, beta = alpha.reshape(-1), beta.reshape(-1)
        d, mu = self.d, self.mu.to(x)
        x1, x2 = x[:, :d], x[:, d:]
        sq = ((x1[:, None, :] - alpha[..., None, None] * mu) ** 2).sum(-1)  # [N, 2]
        lp1 = torch.logsumexp(-sq / (2 * beta[..., None] ** 2), dim=1) - math.log(2.0) - 0.5 * d * (_LOG_2PI + torch.log(beta**2))
        p2 = self._project(x2)
        var_perp = beta**2 + alpha**2 * self.sigma_xi**2
        quad = (p2**2).sum(1) / beta**2 + ((x2 - p2) ** 2).sum(1) / var_perp
        logdet = 2 * torch.log(beta**2) + (d - 2) * torch.log(var_perp)
        return lp1 - 0.5 * (quad + logdet + d * _LOG_2PI)


# ---- the rules law ---------------------------------------------------------------------------------
class RulePatches:
    """x(1) = zeta u, x(2) = (1 - zeta) v with zeta ~ P_zeta on [0, 1]; ||x(1)|| + ||x(2)|| = 1.

    ``zeta`` is ``"uniform"`` or ``{"support": [...], "weights": [...]}`` (see :mod:`theory.zeta`);
    ``u``, ``v`` are unit vectors with u ⊥ v (a random orthonormal pair from ``seed``).

    Exact posterior (rules-theory derivation, section 2; re-derived in ``theory.symbolic``): with
    a = <x(1), u>, b = <x(2), v>, completing the square in zeta gives
        pi_t(zeta | x) ∝ P_zeta(zeta) exp(-(zeta - m)^2 / (2 s^2)),
        m = (1 + (a - b) / alpha) / 2,   s^2 = beta^2 / (2 alpha^2),
    and the score s*(1) = -x(1)/beta^2 + (alpha/beta^2) E[zeta|x] u,
    s*(2) = -x(2)/beta^2 + (alpha/beta^2)(1 - E[zeta|x]) v.
    """

    def __init__(self, d: int, zeta="uniform", seed: int = 0):
        self.d = _check_dim(d)
        self.zeta: ZetaLaw = as_zeta_law(zeta)
        self.seed = int(seed)
        self.u, self.v = _orthonormal_pair(self.d, self.seed)

    @property
    def zeta_mean(self) -> float:
        return self.zeta.mean

    def __repr__(self) -> str:
        return f"RulePatches(d={self.d}, zeta={self.zeta.describe()!r}, seed={self.seed})"

    def sample(self, n: int, generator: torch.Generator | None = None, return_latents: bool = False):
        """x ``[n, 2d]`` float64 (and ``{"zeta": [n]}`` with ``return_latents``)."""
        n = _check_n(n)
        z = self.zeta.sample(n, generator=generator)
        u, v = self.u.to(z), self.v.to(z)
        x = torch.cat([z[:, None] * u, (1.0 - z)[:, None] * v], dim=1)
        return (x, {"zeta": z}) if return_latents else x

    def _coords(self, x):
        """(a, b) = (<x(1), u>, <x(2), v>), each ``[N, 1]``."""
        return (x[:, : self.d] @ self.u.to(x))[:, None], (x[:, self.d:] @ self.v.to(x))[:, None]

    def zeta_posterior_mean(self, x, t) -> torch.Tensor:
        """E[zeta | x_t = x], ``[N]``."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        a, b = self._coords(x)
        m = 0.5 * (1.0 + (a - b) / alpha)
        s = beta / (math.sqrt(2.0) * alpha)
        return self.zeta.posterior_mean(m, s.expand_as(m))[:, 0]

    def posterior_mean(self, x, t) -> torch.Tensor:
        """E[x_0 | x_t = x] = [E[zeta|x] u, (1 - E[zeta|x]) v], ``[N, 2d]``."""
        z = self.zeta_posterior_mean(x, t)[:, None]
        u, v = self.u.to(z), self.v.to(z)
        return torch.cat([z * u, (1.0 - z) * v], dim=1)

    def score(self, x, t) -> torch.Tensor:
        """∇_x log p_t(x) = (alpha E[x_0|x] - x) / beta^2, ``[N, 2d]``."""
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        return (alpha * self.posterior_mean(x, t) - x) / beta**2

    def log_prob(self, x, t) -> torch.Tensor:
        """log p_t(x), ``[N]``: the product of the two patch Gaussians integrated against P_zeta.

        Exponent (ours): -(||x||^2 - 2 alpha b + alpha^2) / (2 beta^2) + (alpha^2/beta^2) m^2
        - (zeta - m)^2 / (2 s^2); the zeta integral is ``ZetaLaw.log_evidence(m, s)``.
        """
        x = _check_x(x, self.d)
        alpha, beta = _alpha_beta(t, x)
        a, b = self._coords(x)
        m = 0.5 * (1.0 + (a - b) / alpha)
        s = (beta / (math.sqrt(2.0) * alpha)).expand_as(m)
        sq = (x**2).sum(1, keepdim=True)
        const = -(sq - 2 * alpha * b + alpha**2) / (2 * beta**2) + (alpha / beta) ** 2 * m**2
        const = const - self.d * (_LOG_2PI + torch.log(beta**2))
        return (const + self.zeta.log_evidence(m, s))[:, 0]
