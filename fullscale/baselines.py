"""Closed-form denoisers of a training set: the locality ladder (issue 14, section 2). No training.

Notation (shared/spec/related-work.md): VP forward process x_t = a x_0 + s eps, a = sqrt(ab_t),
s = sqrt(1 - ab_t); training images x_i (i = 1..n) as float tensors [n, C, H, W] in the space the
sampler works in (the cpu preset centres them: x_i minus the training-set mean image). Every
denoiser returns an estimate of E[x_0 | x_t] under a law built from the training set, and
:func:`net_fn` turns it into the eps-prediction the existing samplers take,
eps_hat = (x_t - a x0_hat) / s (Tweedie), so the noise process and sampler are exactly those of
a trained U-Net.

- :class:`EmpiricalDenoiser` -- the posterior mean of the empirical distribution,
  x0_hat = sum_i w_i x_i, w = softmax_i(-||x_t - a x_i||^2 / (2 s^2)); sampling with it
  reproduces training images (memorisation by construction).
- :class:`LocalDenoiser` -- Kamb & Ganguli's local score (LS) machine (arXiv 2412.20292): pixel p
  gets w_i^p = softmax_i(-||x_t[Omega_p] - a x_i[Omega_p]||^2 / (2 s^2)) over its P x P neighbourhood
  Omega_p and x0_hat[p] = sum_i w_i^p x_i[p]. ``equivariant=True`` is their ELS machine: the
  candidates are every P x P patch of every training image at every location (n (H-P+1)(W-P+1)
  candidates), the pixel at p's position inside the patch is averaged.
- :class:`GaussianDenoiser` -- the Wiener filter of the training set's mean and covariance,
  x0_hat = mu + a Sigma (a^2 Sigma + s^2 I)^-1 (x_t - a mu) (Li, Dai, Qu 2024).

Border choice (ours): Omega_p is the P x P window *inside the image* closest to being centred on p
(offset clamp(p - floor(P/2), 0, H - P) in each axis), so every neighbourhood has exactly P^2
pixels and P = H makes Omega_p the whole image: ``LocalDenoiser(P = H)`` *is* the empirical
denoiser (a test checks it). Covariance: the empirical distribution's (1/n), which makes the
Gaussian denoiser the best affine denoiser of the same law the empirical one is exact for.

Implementation (ours): logits use ||x_t - a x_i||^2 = ||x_t||^2 - 2a<x_t, x_i> + a^2 ||x_i||^2, whose
first term is constant in i and cancels in the softmax; the local cross term
sum_{q in Omega_p} <x_t[q], x_i[q]> is a per-pixel product summed over channels (a batched matmul over
pixels) followed by a separable box sum (two 1-D average pools, direct sums, no cumulative-sum
cancellation). Training images are processed in chunks with a streaming log-sum-exp (flash-attention
style running max), so memory is O(batch x chunk x H x W) whatever n.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fullscale.names import DENOISERS  # torch-free: the CLI's --denoiser choices

PATCHES = (3, 5, 9, 15, 32)  # the ladder's P (issue 14); 32 = the whole 32 px image


def _check_train(train: torch.Tensor) -> torch.Tensor:
    if not isinstance(train, torch.Tensor) or train.dim() != 4 or train.shape[0] < 1:
        raise ValueError("training images must be a tensor [n, C, H, W] with n >= 1")
    if not train.is_floating_point():
        raise ValueError("training images must be floats (the sampler's space), not uint8")
    return train


def _check_ab(ab: float) -> tuple[float, float]:
    ab = float(ab)
    if not 0.0 < ab < 1.0:
        raise ValueError(f"alpha_bar must be in (0, 1), got {ab}")
    return math.sqrt(ab), math.sqrt(1.0 - ab)


class _Streaming:
    """Online softmax-weighted average over chunks of candidates (the last axis of the logits):
    running max m, normaliser l and accumulator acc, rescaled when the max grows.

    Logits more than 80 below the running max are clamped there before exp (weight < e^-80 = 2e-35
    relative to the largest; exp of very negative floats takes a slow path, measured 16x slower)."""

    FLOOR = 80.0

    def __init__(self):
        self.m = self.l = self.acc = None

    def add(self, logits: torch.Tensor, values_fn) -> None:
        """logits [..., k]; values_fn(weights [..., k]) -> the weighted sum over k, [..., V]."""
        m_chunk = logits.amax(-1)
        m_new = m_chunk if self.m is None else torch.maximum(self.m, m_chunk)
        w = logits.sub_(m_new.unsqueeze(-1)).clamp_(min=-self.FLOOR).exp_()
        part = values_fn(w)
        if self.m is None:
            self.l, self.acc = w.sum(-1), part
        else:
            scale = torch.exp((self.m - m_new).clamp_(min=-self.FLOOR))
            self.l = self.l * scale + w.sum(-1)
            self.acc = self.acc * scale.unsqueeze(-1) + part
        self.m = m_new

    def result(self) -> torch.Tensor:
        return self.acc / self.l.unsqueeze(-1)


class EmpiricalDenoiser:
    """E[x_0 | x_t] under the empirical distribution of ``train`` (related-work.md, "Empirical")."""

    name = "empirical"

    def __init__(self, train: torch.Tensor, chunk: int = 512):
        self.train = _check_train(train)
        self.flat = self.train.flatten(1)
        self.sq = self.flat.square().sum(1)  # ||x_i||^2
        self.chunk = max(1, int(chunk))

    def __call__(self, x: torch.Tensor, ab: float) -> torch.Tensor:
        a, s = _check_ab(ab)
        xf = x.flatten(1).to(self.flat.dtype)
        stream = _Streaming()
        for lo in range(0, self.flat.shape[0], self.chunk):
            xi, sq = self.flat[lo:lo + self.chunk], self.sq[lo:lo + self.chunk]
            logits = (2.0 * a * (xf @ xi.T) - a * a * sq) / (2.0 * s * s)  # [B, k]; ||x_t||^2 cancels
            stream.add(logits, lambda w, xi=xi: w @ xi)
        return stream.result().view_as(x)


def _window_starts(size: int, patch: int) -> torch.Tensor:
    """Start of each pixel's P-window inside [0, size): clamp(p - P // 2, 0, size - P)."""
    return (torch.arange(size) - patch // 2).clamp(0, size - patch)


def _membership(size: int, patch: int, dtype) -> torch.Tensor:
    """K [size, size], K[p, q] = 1 when q lies in pixel p's window (one axis)."""
    start = _window_starts(size, patch)
    q = torch.arange(size)
    return ((q[None, :] >= start[:, None]) & (q[None, :] < start[:, None] + patch)).to(dtype)


def _box(maps: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor) -> torch.Tensor:
    """Sum of ``maps`` [..., H, W] over each pixel's P x P window: K_h M K_w^T, two matmuls with
    0/1 matrices (direct sums; measured ~10x less CPU time than pooling or strided adds)."""
    shape = maps.shape
    h, w = shape[-2:]
    m = (maps.reshape(-1, w) @ kw.T).view(-1, h, w)
    return torch.matmul(kh, m).view(shape)


class LocalDenoiser:
    """Kamb & Ganguli's LS machine (and ELS with ``equivariant=True``) with P x P neighbourhoods."""

    name = "local"

    def __init__(self, train: torch.Tensor, patch: int, equivariant: bool = False, chunk: int = 64,
                 general: bool = False):
        self.train = _check_train(train)
        n, c, h, w = self.train.shape
        if isinstance(patch, bool) or int(patch) != patch or not 1 <= patch <= min(h, w):
            raise ValueError(f"patch size P must be an integer in [1, {min(h, w)}] (the image size), got {patch}")
        self.patch, self.equivariant, self.chunk = int(patch), bool(equivariant), max(1, int(chunk))
        # P = H = W: every window is the whole image, so LS and ELS *are* the empirical denoiser;
        # that path is used unless ``general`` (the tests check the two agree)
        self.whole = None if general or not self.patch == h == w else EmpiricalDenoiser(self.train)
        self.rows, self.cols = _window_starts(h, self.patch), _window_starts(w, self.patch)
        self.kh, self.kw = _membership(h, self.patch, train.dtype), _membership(w, self.patch, train.dtype)
        if self.whole is not None:
            pass
        elif self.equivariant:
            self._init_els()
        else:
            sq = _box(self.train.square().sum(1), self.kh, self.kw)  # ||x_i[Omega_p]||^2, [n, H, W]
            self.sq = sq.permute(1, 2, 0).reshape(h * w, 1, n)
            self.pix = self.train.permute(2, 3, 0, 1).reshape(h * w, n, c)  # [HW, n, C]

    # -- LS: one candidate image per training image, per-pixel windows --------------------------------
    def __call__(self, x: torch.Tensor, ab: float) -> torch.Tensor:
        if self.whole is not None:
            return self.whole(x, ab)
        a, s = _check_ab(ab)
        if self.equivariant:
            return self._els(x, a, s)
        x = x.to(self.train.dtype)
        b, c, h, w = x.shape
        xp = x.permute(2, 3, 0, 1).reshape(h * w, b, c) * (a / (s * s))  # [HW, B, C], pre-scaled
        stream = _Streaming()
        for lo in range(0, self.train.shape[0], self.chunk):
            pix = self.pix[:, lo:lo + self.chunk]  # [HW, k, C]
            k = pix.shape[1]
            # (a / s^2) sum_c x_t[c, q] x_i[c, q] as [H, W, B, k], then summed over each Omega_p:
            # K_h on the H axis (one matmul), K_w on the W axis (batched over H)
            cross = torch.bmm(xp, pix.transpose(1, 2))
            cross = (self.kh @ cross.view(h, -1)).view(h, w, b * k)
            logits = torch.matmul(self.kw, cross).view(h * w, b, k)
            logits.sub_(self.sq[:, :, lo:lo + k], alpha=a * a / (2.0 * s * s))  # - a^2 ||x_i[Omega_p]||^2 / (2 s^2)
            stream.add(logits, lambda wt, pix=pix: torch.bmm(wt, pix))  # [HW, B, C]
        return stream.result().view(h, w, b, c).permute(2, 3, 0, 1).contiguous()

    # -- ELS: every P x P patch of every training image is a candidate --------------------------------
    def _init_els(self) -> None:
        n, c, h, w = self.train.shape
        p = self.patch
        cand = F.unfold(self.train, p)  # [n, C P^2, L'], L' = (H-P+1)(W-P+1)
        self.cand = cand.permute(0, 2, 1).reshape(-1, c * p * p)  # [n L', C P^2]
        self.cand_sq = self.cand.square().sum(1)
        # pixel (y, x) uses window (rows[y], cols[x]) and sits at (y - rows[y], x - cols[x]) inside it
        ys, xs = torch.arange(h), torch.arange(w)
        self.win = (self.rows[:, None] * (w - p + 1) + self.cols[None, :]).reshape(-1)  # [HW]
        self.off = ((ys - self.rows)[:, None] * p + (xs - self.cols)[None, :]).reshape(-1)  # [HW] offset in P^2

    def _els(self, x: torch.Tensor, a: float, s: float) -> torch.Tensor:
        x = x.to(self.train.dtype)
        b, c, h, w = x.shape
        p = self.patch
        q = F.unfold(x, p).permute(0, 2, 1)  # [B, L', C P^2]: the sample's windows
        q = q.reshape(-1, c * p * p)
        stream = _Streaming()
        for lo in range(0, self.cand.shape[0], self.chunk * 64):
            cand, sq = self.cand[lo:lo + self.chunk * 64], self.cand_sq[lo:lo + self.chunk * 64]
            logits = (2.0 * a * (q @ cand.T) - a * a * sq) / (2.0 * s * s)  # [B L', k]
            stream.add(logits, lambda wt, cand=cand: wt @ cand)  # weighted mean patch, [B L', C P^2]
        mean = stream.result().view(b, -1, c, p * p).permute(0, 2, 1, 3)  # [B, C, L', P^2]
        return mean[:, :, self.win, self.off].reshape(b, c, h, w)  # [B, C, HW]: each pixel's own value


class GaussianDenoiser:
    """Wiener filter x0_hat = mu + a Sigma (a^2 Sigma + s^2 I)^-1 (x_t - a mu) of the training set's
    mean and (1/n) covariance, through the thin SVD of the centred data (rank <= n - 1)."""

    name = "gaussian"

    def __init__(self, train: torch.Tensor):
        self.train = _check_train(train)
        flat = self.train.flatten(1).to(torch.float64)
        self.mu = flat.mean(0)
        _, sv, vh = torch.linalg.svd(flat - self.mu, full_matrices=False)
        keep = sv > sv.max() * 1e-10 if sv.numel() else sv > 0
        self.lam = (sv[keep] ** 2 / flat.shape[0])  # eigenvalues of Sigma
        self.vecs = vh[keep]  # [r, D]

    def __call__(self, x: torch.Tensor, ab: float) -> torch.Tensor:
        a, s = _check_ab(ab)
        xf = x.flatten(1).to(torch.float64) - a * self.mu
        gain = a * self.lam / (a * a * self.lam + s * s)  # eigenvalues of a Sigma (a^2 Sigma + s^2 I)^-1
        out = self.mu + ((xf @ self.vecs.T) * gain) @ self.vecs
        return out.to(x.dtype).view_as(x)


def build(name: str, train: torch.Tensor, patch: int | None = None, equivariant: bool = False, chunk: int | None = None):
    """A denoiser by name: ``empirical``, ``local`` (needs ``patch``) or ``gaussian``."""
    if name not in DENOISERS:
        raise ValueError(f"unknown denoiser {name!r}; choose from {', '.join(DENOISERS)}")
    if name != "local" and (patch is not None or equivariant):
        raise ValueError("--patch and --equivariant apply to the local denoiser only")
    if name == "empirical":
        return EmpiricalDenoiser(train, **({"chunk": chunk} if chunk else {}))
    if name == "gaussian":
        return GaussianDenoiser(train)
    if patch is None:
        raise ValueError("the local denoiser needs a patch size P (--patch)")
    return LocalDenoiser(train, patch, equivariant=equivariant, **({"chunk": chunk} if chunk else {}))


def net_fn(denoiser, schedule=None):
    """The eps-prediction ``f(x, t)`` the samplers in :mod:`fullscale.diffusion` take:
    eps_hat = (x - a x0_hat) / s with a, s at timestep t (one t per call, as the samplers use)."""
    from theory import ddpm_schedule

    ab_table = (schedule or ddpm_schedule()).alpha_bar

    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i = int(t.reshape(-1)[0])
        if not bool((t == i).all()):
            raise ValueError("closed-form denoisers take one timestep per batch")
        ab = float(ab_table[i])
        x0 = denoiser(x, ab).to(torch.float32)
        return (x.float() - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)

    return f
