"""Noisy-Digits: the real-data analogue of the feature-learning paper's Noisy-MNIST (§5).

The paper concatenates a clean MNIST digit (signal patch) with a standard Gaussian patch. MNIST
cannot be downloaded here, so we use scikit-learn's bundled 8x8 digits (``load_digits``, 1797
images): two classes; signal patch x(1) = the digit, flattened (d = 64) and scaled to norm ||mu||;
noise patch x(2) = xi ~ N(0, sigma^2 I_64); SNR = ||mu|| / (sigma sqrt 64) as for the synthetic law.

Both objectives are the ones of :mod:`sims.fl` (same networks, losses, stacked GD). Alignments are
measured against the class-mean digits (each rescaled to norm ||mu||): signal_j = max_r <w_r, mu_j>,
noise = mean_i max_r |<w_r, xi_i>|. The test accuracy of the classifier uses held-out digits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from sims.fl import ClassificationSetup, DiffusionSetup, FLModel

DIM = 64


@functools.lru_cache(maxsize=4)
def _digits(classes: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm flattened digits of the two classes and labels +1 (first class) / -1 (second)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.isin(data.target, classes)
    x = data.data[keep].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.where(data.target[keep] == classes[0], 1, -1)
    return x, y


def digits_available(classes: tuple) -> int:
    """How many digits the two classes have in the bundled data set."""
    return len(_digits(tuple(classes))[1])


@dataclass(frozen=True)
class DigitsModel(FLModel):
    classes: tuple = (0, 1)

    def data_seed(self) -> int:
        from dmrules.core.results import config_hash

        key = ["digits", list(self.classes), self.n, round(self.snr, 12), self.sigma_xi, self.seed]
        return int(config_hash(key, 8), 16)

    def data(self, n_test: int = 0) -> dict:
        x, y = _digits(tuple(self.classes))
        gen = torch.Generator().manual_seed(self.data_seed())
        perm = torch.randperm(len(y), generator=gen)
        if self.n + max(n_test, 1) > len(y):
            raise ValueError(f"classes {self.classes} have {len(y)} digits: n + n_test must be smaller")
        x = torch.from_numpy(x)[perm] * self.mu_norm
        y = torch.from_numpy(y)[perm]
        means = torch.stack([x[y == 1].mean(0), x[y == -1].mean(0)])
        mu = self.mu_norm * means / means.norm(dim=1, keepdim=True)
        xi = self.sigma_xi * torch.randn(self.n, DIM, generator=gen, dtype=torch.float64)
        pairs = lambda k: torch.stack([torch.arange(k), k + torch.arange(k)], dim=1)  # noqa: E731
        out = {"patches": torch.cat([x[: self.n], xi]), "index": pairs(self.n), "y": y[: self.n], "mu": mu, "xi": xi}
        if n_test:
            xt = x[self.n: self.n + n_test]
            nt = self.sigma_xi * torch.randn(len(xt), DIM, generator=gen, dtype=torch.float64)
            out.update(test_patches=torch.cat([xt, nt]), test_index=pairs(len(xt)), y_test=y[self.n: self.n + n_test])
        return out

    def row_info(self) -> dict:
        return dict(super().row_info(), classes=f"{self.classes[0]},{self.classes[1]}")


@dataclass(frozen=True)
class DigitsSweep:
    classes: tuple = (0, 1)
    ns: tuple = (40,)
    snrs: tuple = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7)
    seeds: tuple = (0, 1, 2)
    m: int = 20
    sigma_xi: float = 0.2  # ||xi|| ~ 1.6, as sigma_xi = 0.05 at d = 1000 in the synthetic sweep
    sigma0: float = 0.01
    objectives: tuple = ("diffusion", "classification")
    diffusion: DiffusionSetup = field(default_factory=lambda: DiffusionSetup(lr=0.05, steps=2000))
    classification: ClassificationSetup = field(default_factory=lambda: ClassificationSetup(lr=20.0, steps=1000, n_test=300))
    n_log: int = 30

    def models(self, objective: str) -> list[DigitsModel]:
        return [DigitsModel(objective, n, snr, s, d=DIM, m=self.m, sigma_xi=self.sigma_xi, sigma0=self.sigma0,
                            experiment="digits", classes=tuple(self.classes))
                for n in self.ns for snr in self.snrs for s in self.seeds]

    def setup(self, objective: str):
        return self.diffusion if objective == "diffusion" else self.classification


def summary_lines(df) -> list[str]:
    last = df[df.step == df.groupby("objective").step.transform("max")]
    g = last.groupby(["objective", "n_snr2"], as_index=False)[["signal", "noise"]].mean()
    lines = ["final signal / noise alignment (mean over seeds):"]
    for obj, gg in g.groupby("objective"):
        lines.append(f"  {obj:14s} " + ", ".join(f"n·SNR²={r.n_snr2:.3g}: {r.signal / r.noise:.3g}"
                                                 for r in gg.itertuples()))
    return lines
