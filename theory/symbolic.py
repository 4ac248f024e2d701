"""Symbolic derivations (sympy) behind the numeric code: each returns a :class:`Derivation` whose
``residual`` simplifies to exactly 0 when the claim holds, plus lambdified numeric versions of the
key expressions that the tests compare with ``theory.distributions``, ``theory.rules`` and
``theory.growth``.

Rules law (rules-theory derivation, sections 2-3; the toolkit's own reconstruction):
  ``rules_posterior``        completing the square: the zeta-posterior is N(m, s^2) times P_zeta
  ``rules_uniform_posterior`` the truncated-normal mean = ∫ zeta pi / ∫ pi  (closed form, erf)
  ``rules_uniform_score``    ∇ log p_t = the closed-form score (both patch directions)
  ``rule_identity``          (*) E[zeta|x] + E[1 - zeta|x] = 1, so psi_t ≡ alpha/beta^2 (uniform, discrete)
  ``tweedie_psi``            <x0_hat(1), u> + <x0_hat(2), v> = (beta^2/alpha) psi_t for any score
Feature-learning law (arXiv 2412.01021, Definition 2.1 as reconstructed):
  ``two_patch_signal_score`` the score of the label mixture in the signal patch
  ``two_patch_noise_score``  Sigma^{-1} and E[xi | x_t] for xi ~ N(0, sigma^2 (I - P_mu))
Gaussian moments behind ``theory.growth`` (spec section 8, ours):
  ``stein_quadratic``        E[sigma(<w, x_t>) <w, eps>] = 2 alpha beta <w, x0> ||w||^2, sigma(z) = z^2
  ``isserlis_p2p2``          E[p_r^2 p_s^2] for jointly Gaussian p
  ``quadratic_dsm_closed_form`` E||s - eps||^2 of the tied quadratic network (m = 2, d = 2, all symbols)
  ``driving_term``           the leading small-init gradient -(4 alpha beta/m)(||w||^2 x0 + 2 <w, x0> w)
  ``growth_ratio``           n_j ||mu||^2 / ||xi||^2 = (n SNR^2 / 2) d / (d - 2)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sympy as sp

a, b, m, y, c = sp.symbols("a b m y c", real=True)
alpha, beta, s, sigma, M = sp.symbols("alpha beta s sigma M", positive=True)
zeta = sp.symbols("zeta", real=True)


@dataclass(frozen=True)
class Derivation:
    name: str
    claim: str
    residual: sp.Expr  # exactly 0 when the claim is proved
    expressions: dict = field(default_factory=dict)
    numeric: dict = field(default_factory=dict)  # lambdified callables

    @property
    def proved(self) -> bool:
        return sp.simplify(self.residual) == 0


def _zero(*exprs) -> sp.Expr:
    """Sum of squares of simplified residuals (0 iff every one is 0)."""
    return sp.Add(*[sp.simplify(e) ** 2 for e in exprs])


def _gauss_expect(expr, zs) -> sp.Expr:
    """E[expr] for independent standard normals ``zs`` (expr polynomial in them):
    E[z^k] = (k - 1)!! for even k, 0 for odd k."""
    poly = sp.Poly(sp.expand(expr), *zs)
    out = 0
    for powers, coeff in poly.terms():
        mom = 1
        for k in powers:
            mom *= 0 if k % 2 else sp.factorial2(k - 1)
        out += coeff * mom
    return sp.expand(out)


# ---- rules law ----------------------------------------------------------------------------------------
def _rules_exponent():
    """log N(x(1); alpha zeta u, beta^2) + log N(x(2); alpha (1 - zeta) v, beta^2), zeta-dependent part."""
    return -((a - alpha * zeta) ** 2 + (b - alpha * (1 - zeta)) ** 2) / (2 * beta**2)


M_RULES = (1 + (a - b) / alpha) / 2
S_RULES = beta / (sp.sqrt(2) * alpha)


@functools.lru_cache(maxsize=None)
def rules_posterior() -> Derivation:
    E = _rules_exponent()
    residual = sp.diff(E + (zeta - M_RULES) ** 2 / (2 * S_RULES**2), zeta)  # zeta-free remainder
    return Derivation("rules_posterior",
                      "pi_t(zeta|x) ∝ P(zeta) exp(-(zeta-m)^2/(2 s^2)), m = (1+(a-b)/alpha)/2, s^2 = beta^2/(2 alpha^2)",
                      _zero(residual), {"m": M_RULES, "s2": S_RULES**2},
                      {"m": sp.lambdify((a, b, alpha), M_RULES), "s": sp.lambdify((alpha, beta), S_RULES)})


def _interval_integral(poly, lo, hi):
    """∫_lo^hi poly(zeta) exp(-(zeta - m)^2 / (2 s^2)) dzeta via zeta = m + y (closed form, erf)."""
    F = sp.integrate(sp.expand(poly.subs(zeta, m + y)) * sp.exp(-(y**2) / (2 * s**2)), y)
    return sp.simplify(F.subs(y, hi - m) - F.subs(y, lo - m))


@functools.lru_cache(maxsize=None)
def _uniform_moments():
    return _interval_integral(sp.Integer(1), 0, 1), _interval_integral(zeta, 0, 1)


def _std_phi(x):
    return sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)


def _std_Phi(x):
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


@functools.lru_cache(maxsize=None)
def rules_uniform_posterior() -> Derivation:
    Z0, Z1 = _uniform_moments()
    A, B = -m / s, (1 - m) / s
    truncnorm = m + s * (_std_phi(A) - _std_phi(B)) / (_std_Phi(B) - _std_Phi(A))
    mean = Z1 / Z0
    return Derivation("rules_uniform_posterior",
                      "E[zeta|x] = m + s (phi(A) - phi(B)) / (Phi(B) - Phi(A)), A = -m/s, B = (1-m)/s (uniform zeta)",
                      _zero(truncnorm - mean), {"Z0": Z0, "Z1": Z1, "posterior_mean": mean},
                      {"posterior_mean": sp.lambdify((m, s), mean, modules=["scipy", "numpy"])})


@functools.lru_cache(maxsize=None)
def rules_uniform_score() -> Derivation:
    Z0, Z1 = _uniform_moments()
    sub = {m: M_RULES, s: S_RULES}
    const = sp.simplify(_rules_exponent() + (zeta - M_RULES) ** 2 / (2 * S_RULES**2))  # zeta-free
    logp = const + sp.log(Z0.subs(sub))  # log p_t up to an x-free constant, in the (a, b) plane
    ez = (Z1 / Z0).subs(sub)
    score_a, score_b = (alpha * ez - a) / beta**2, (alpha * (1 - ez) - b) / beta**2
    return Derivation("rules_uniform_score",
                      "d/da log p_t = (alpha E[zeta|x] - a)/beta^2 and d/db log p_t = (alpha (1 - E[zeta|x]) - b)/beta^2",
                      _zero(sp.diff(logp, a) - score_a, sp.diff(logp, b) - score_b),
                      {"log_p": logp, "score_a": score_a, "score_b": score_b},
                      {"score_ab": sp.lambdify((a, b, alpha, beta), (score_a, score_b), modules=["scipy", "numpy"])})


@functools.lru_cache(maxsize=None)
def rule_identity() -> Derivation:
    Z0, Z1 = _uniform_moments()
    W1 = _interval_integral(1 - zeta, 0, 1)  # ∫ (1 - zeta) pi, its own integral
    uniform_res = (Z1 + W1) / Z0 - 1
    z = sp.symbols("z1:4", real=True)  # a discrete law with three symbolic support points and weights
    w = sp.symbols("w1:4", positive=True)
    logits = [sp.log(wk) - (zk - m) ** 2 / (2 * s**2) for zk, wk in zip(z, w)]
    post = [sp.exp(lk) / sp.Add(*[sp.exp(lj) for lj in logits]) for lk in logits]
    discrete_res = sp.Add(*[p * zk for p, zk in zip(post, z)]) + sp.Add(*[p * (1 - zk) for p, zk in zip(post, z)]) - 1
    # psi of the exact score: <s(1) + x(1)/beta^2, u> + <s(2) + x(2)/beta^2, v> with s from E[zeta|x]
    ez = sp.Symbol("E_zeta", real=True)
    psi_res = ((alpha * ez - a) / beta**2 + a / beta**2) + ((alpha * (1 - ez) - b) / beta**2 + b / beta**2) - alpha / beta**2
    return Derivation("rule_identity",
                      "(*) E[zeta|x] + E[1-zeta|x] = 1 (uniform and discrete P_zeta), hence psi_t ≡ alpha/beta^2 for the exact score",
                      _zero(uniform_res, discrete_res, psi_res), {"E_one_minus_zeta_numerator": W1})


@functools.lru_cache(maxsize=None)
def tweedie_psi() -> Derivation:
    s1u, s2v = sp.symbols("s1u s2v", real=True)  # <s(1), u>, <s(2), v> of an arbitrary score model
    x0hat = (a + beta**2 * s1u) / alpha + (b + beta**2 * s2v) / alpha
    psi = (s1u + a / beta**2) + (s2v + b / beta**2)
    return Derivation("tweedie_psi", "<x0_hat(1), u> + <x0_hat(2), v> = (beta^2/alpha) psi_t, x0_hat = (x + beta^2 s)/alpha",
                      _zero(x0hat - beta**2 / alpha * psi))


# ---- feature-learning law -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def two_patch_signal_score() -> Derivation:
    c1, c2, c3 = sp.symbols("c1 c2 c3", real=True)  # coordinates along mu_+/M, mu_-/M, and orthogonal
    x = sp.Matrix([c1, c2, c3])
    mus = [sp.Matrix([M, 0, 0]), sp.Matrix([0, M, 0])]
    dens = [sp.exp(-((x - alpha * mu).dot(x - alpha * mu)) / (2 * beta**2)) for mu in mus]
    logp = sp.log(dens[0] / 2 + dens[1] / 2)
    p_plus = 1 / (1 + sp.exp(-alpha * M * (c1 - c2) / beta**2))
    closed = (alpha * (p_plus * mus[0] + (1 - p_plus) * mus[1]) - x) / beta**2
    res = [sp.diff(logp, ci) - closed[i] for i, ci in enumerate((c1, c2, c3))]
    return Derivation("two_patch_signal_score",
                      "∇ log(½N(alpha mu_+, beta^2) + ½N(alpha mu_-, beta^2)) = (alpha E[mu_y|x] - x)/beta^2, "
                      "P(y=+1|x) = sigmoid(alpha <x, mu_+ - mu_-> / beta^2)",
                      _zero(*res), {"p_plus": p_plus})


@functools.lru_cache(maxsize=None)
def two_patch_noise_score() -> Derivation:
    B = sp.Matrix([[1, 2], [0, 1], [1, -1], [2, 0]])  # two generic directions in R^4 (exact rationals)
    P = B * (B.T * B).inv() * B.T
    I = sp.eye(4)
    Sigma = beta**2 * I + alpha**2 * sigma**2 * (I - P)
    Sigma_inv = P / beta**2 + (I - P) / (beta**2 + alpha**2 * sigma**2)
    res_inv = (Sigma * Sigma_inv - I).applyfunc(sp.simplify)
    post = alpha * sigma**2 * (I - P) * Sigma_inv  # Cov(xi, x_t) Sigma^{-1}
    res_post = (post - alpha * sigma**2 / (beta**2 + alpha**2 * sigma**2) * (I - P)).applyfunc(sp.simplify)
    return Derivation("two_patch_noise_score",
                      "Sigma^{-1} = P/beta^2 + (I-P)/(beta^2 + alpha^2 sigma^2); E[xi|x] = alpha sigma^2/(beta^2+alpha^2 sigma^2) (I-P) x",
                      _zero(*res_inv, *res_post))


# ---- Gaussian moments of the tied quadratic network ------------------------------------------------------
@functools.lru_cache(maxsize=None)
def stein_quadratic() -> Derivation:
    q = sp.Symbol("q", positive=True)  # ||w||^2, the variance of z = <w, eps>
    g = sp.Symbol("g", real=True)
    z = sp.sqrt(q) * g
    lhs = _gauss_expect((alpha * c + beta * z) ** 2 * z, [g])  # c = <w, x0>
    return Derivation("stein_quadratic", "E_eps[sigma(<w,x_t>) <w,eps>] = 2 alpha beta <w,x0> ||w||^2 for sigma(z) = z^2",
                      _zero(lhs - 2 * alpha * beta * c * q))


@functools.lru_cache(maxsize=None)
def isserlis_p2p2() -> Derivation:
    mr, ms = sp.symbols("mu_r mu_s", real=True)
    l11, l22 = sp.symbols("L11 L22", positive=True)
    l21 = sp.Symbol("L21", real=True)
    g1, g2 = sp.symbols("g1 g2", real=True)
    # p = mu + beta L g with G = L L^T (Cholesky): any 2x2 covariance beta^2 G
    pr, ps = mr + beta * l11 * g1, ms + beta * (l21 * g1 + l22 * g2)
    Grr, Grs, Gss = l11**2, l11 * l21, l21**2 + l22**2
    lhs = _gauss_expect(pr**2 * ps**2, [g1, g2])
    rhs = (mr**2 + beta**2 * Grr) * (ms**2 + beta**2 * Gss) + 2 * beta**4 * Grs**2 + 4 * mr * ms * beta**2 * Grs
    return Derivation("isserlis_p2p2",
                      "E[p_r^2 p_s^2] = (mu_r^2 + beta^2 G_rr)(mu_s^2 + beta^2 G_ss) + 2 beta^4 G_rs^2 + 4 mu_r mu_s beta^2 G_rs",
                      _zero(lhs - rhs))


@functools.lru_cache(maxsize=None)
def quadratic_dsm_closed_form() -> Derivation:
    """E||s(alpha x0 + beta eps) - eps||^2 for m = 2 neurons in d = 2, every entry a symbol, computed
    by brute-force Gaussian moments, against the spec's closed form (Stein + Isserlis)."""
    w = sp.Matrix(2, 2, sp.symbols("w11 w12 w21 w22", real=True))  # rows w_r
    x0 = sp.Matrix(sp.symbols("x1 x2", real=True))
    e = sp.Matrix(sp.symbols("e1 e2", real=True))
    mm = 2
    x = alpha * x0 + beta * e
    p = w * x
    svec = (p[0] ** 2 * w.row(0).T + p[1] ** 2 * w.row(1).T) / mm
    brute = _gauss_expect((svec - e).dot(svec - e), list(e))
    G = w * w.T
    mu = alpha * (w * x0)
    q = [mu[r] ** 2 + beta**2 * G[r, r] for r in range(mm)]
    e_ss = sum(G[r, t] * (q[r] * q[t] + 2 * beta**4 * G[r, t] ** 2 + 4 * beta**2 * mu[r] * mu[t] * G[r, t])
               for r in range(mm) for t in range(mm)) / mm**2
    e_se = 2 * beta / mm * sum(mu[r] * G[r, r] for r in range(mm))
    closed = e_ss - 2 * e_se + 2
    args = (*w, *x0, alpha, beta)
    return Derivation("quadratic_dsm_closed_form", "E||s - eps||^2 = E||s||^2 - 2 E<s, eps> + d (Stein + Isserlis), m = d = 2",
                      _zero(sp.expand(brute - closed)), {"expected_loss": brute},
                      {"expected_loss": sp.lambdify(args, brute)})


@functools.lru_cache(maxsize=None)
def driving_term() -> Derivation:
    lam = sp.Symbol("lambda", positive=True)  # init scale: w = lambda * w~
    mm = sp.Symbol("m", positive=True)
    wt = sp.Matrix(sp.symbols("v1 v2", real=True))
    x0 = sp.Matrix(sp.symbols("x1 x2", real=True))
    e = sp.Matrix(sp.symbols("e1 e2", real=True))
    w = lam * wt
    svec = (w.dot(alpha * x0 + beta * e)) ** 2 * w / mm  # one neuron's term of s (1/m scaling)
    loss = _gauss_expect((svec - e).dot(svec - e), list(e))
    grad = [sp.expand(sp.diff(loss, wi) / lam) for wi in wt]  # d/dw = (1/lambda) d/dw~
    leading = [g.coeff(lam, 2) for g in grad]  # the O(lambda^2) term; the next one is O(lambda^5)
    expected = -(4 * alpha * beta / mm) * (wt.dot(wt) * x0 + 2 * wt.dot(x0) * wt)
    lower = [sum(g.coeff(lam, k) for k in (0, 1, 3, 4)) for g in grad]
    return Derivation("driving_term",
                      "small-init E-gradient of ||s - eps||^2: -(4 alpha beta/m)(||w||^2 x0 + 2 <w,x0> w) + O(||w||^5)",
                      _zero(*(leading[i] - expected[i] for i in range(2)), *lower))


@functools.lru_cache(maxsize=None)
def growth_ratio() -> Derivation:
    n, d, snr, eta, q, mu2, xi2, nj = sp.symbols("n d SNR eta q mu2 xi2 n_j", positive=True)
    mm = sp.Symbol("m", positive=True)
    # projections of the driving term summed over the data (module docstring of theory.growth)
    signal = 4 * eta * alpha * beta / (n * mm) * q * nj * mu2
    noise = 4 * eta * alpha * beta / (n * mm) * q * xi2
    ratio = sp.simplify(signal / noise)
    sub = {nj: n / 2, xi2: sigma**2 * (d - 2), mu2: snr**2 * sigma**2 * d}
    final = sp.simplify(ratio.subs(sub))
    target = n * snr**2 / 2 * d / (d - 2)
    return Derivation("growth_ratio", "Δ<w,mu_j>/Δ<w,xi_i> = n_j ||mu||^2/||xi||^2 = (n SNR^2/2) d/(d-2)",
                      _zero(final - target), {"ratio": ratio, "ratio_snr": final},
                      {"ratio": sp.lambdify((n, d, snr), final)})


ALL = (rules_posterior, rules_uniform_posterior, rules_uniform_score, rule_identity, tweedie_psi,
       two_patch_signal_score, two_patch_noise_score, stein_quadratic, isserlis_p2p2,
       quadratic_dsm_closed_form, driving_term, growth_ratio)
