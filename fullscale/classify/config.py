"""Classifier configurations: a frozen dataclass and the ``paper`` / ``cpu`` / ``smoke`` presets.

``paper`` follows the protocol where it is known (Sec. 6.1, 6.3), sized for one GPU in minutes:
    data     the contrastive ternary set, 2000 images per class (6000), split 80 / 20 like the
             authors' filters (4800 train, 1200 held out; rendered as two independent sets);
    noisy    (guidance) AdamW, lr 3e-4, weight decay 0, t ~ U{0..T-1}; paper widths (U-Net 128,
             depth 2, channel_mult (1, 2, 3); MLP hidden 128). The authors ran batch 4 for 15-20k
             iterations (60-80k images); we run batch 128 x 5000 steps (640k images; bf16 on CUDA);
    clean    (filtering) Adam, lr 3e-4, batch 16, 100 epochs (30k steps), inputs given DDPM
             step-0 noise (beta = 1e-4), as in the authors' transform.
``cpu``      narrower networks and fewer images so that all four tasks x five classifiers fit in
             about an hour on two shared CPU cores (the widths are ours; see docs/mitigation.md).
``smoke``    seconds, for tests.

Only identity fields decide whether an existing classifier directory belongs to a config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from fullscale import names
from fullscale.classify.nets import ARCHS, CLEAN_ARCHS, NOISY_ARCHS
from fullscale.tasks import registry

TASKS = registry.names()  # at import; make_config checks the live registry (fullscale/tasks/registry.py)
PRESET_NAMES = names.PRESETS  # fullscale.names (torch-free): the CLI's --preset choices
# the test-set seed is data_seed + this offset, so held-out images never share draws with training ones
TEST_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class ClassifierConfig:
    task: str
    arch: str
    noisy: bool
    preset: str
    image_size: int = 32
    n_train: int = 4800
    n_test: int = 1200
    data_seed: int = 0
    width: int | None = None  # None: the paper's width for this arch
    depth: int | None = None  # encoder U-Net res blocks per level (None: 2)
    steps: int = 30_000
    batch: int = 16
    lr: float = 3e-4
    optimizer: str = "adam"  # adam (clean filters, Sec. 6.3) | adamw (noisy classifiers, Sec. 6.1)
    lr_schedule: str = "cosine"  # cosine decay to 0 (ours) | constant (the authors')
    weight_decay: float = 0.0
    nt_xent: bool = False
    nt_xent_weight: float = 0.5
    temperature: float = 0.5
    clean_t: int = 0  # clean classifiers see q(x_t | x_0) at this DDPM index (0: beta_1 = 1e-4 noise)
    seed: int = 0
    eval_every: int = 1000
    ckpt_every: int = 1000

    @property
    def kind(self) -> str:
        return "noisy" if self.noisy else "clean"

    @property
    def test_seed(self) -> int:
        return self.data_seed + TEST_SEED_OFFSET

    def identity(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("eval_every", "ckpt_every"):  # bookkeeping, not what is trained
            d.pop(k)
        return d

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ClassifierConfig":
        return cls(**d)


def _paper(arch: str, noisy: bool) -> dict:
    if noisy:
        return dict(n_train=4800, n_test=1200, steps=5000, batch=128, lr=3e-4, optimizer="adamw",
                    eval_every=1000, ckpt_every=1000)
    return dict(n_train=4800, n_test=1200, steps=30_000, batch=16, lr=3e-4, optimizer="adam",
                eval_every=3000, ckpt_every=3000)


def _cpu(arch: str, noisy: bool) -> dict:
    base = dict(n_train=3000, n_test=1200, lr=1e-3, eval_every=500, ckpt_every=500)
    if noisy and arch == "unet":
        return {**base, "width": 32, "depth": 1, "steps": 1500, "batch": 32, "optimizer": "adamw", "lr": 5e-4}
    if noisy:
        return {**base, "steps": 4000, "batch": 64, "optimizer": "adamw"}
    if arch == "conv":
        return {**base, "width": 16, "steps": 2000, "batch": 32, "optimizer": "adam"}
    return {**base, "steps": 3000, "batch": 32, "optimizer": "adam"}


def _smoke(arch: str, noisy: bool) -> dict:
    return dict(n_train=48, n_test=24, width=8, depth=1, steps=4, batch=8, lr=1e-3,
                optimizer="adamw" if noisy else "adam", eval_every=2, ckpt_every=2)


PRESETS = {"paper": _paper, "cpu": _cpu, "smoke": _smoke}


def make_config(task: str, arch: str, noisy: bool, preset: str, **overrides) -> ClassifierConfig:
    """The preset's config with ``overrides`` (None values ignored); ValueError on bad values."""
    task = registry.canonical(task)  # one sentence naming the choices when unknown
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESET_NAMES)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown classifier arch {arch!r}; choose from {', '.join(ARCHS)}")
    allowed = NOISY_ARCHS if noisy else CLEAN_ARCHS
    if arch not in allowed:
        kind = "noisy" if noisy else "clean"
        raise ValueError(f"there is no {kind} {arch} classifier; {kind} classifiers are {', '.join(allowed)}"
                         + (" (for conv or resnet8 use --clean)" if noisy else " (for unet use --noisy)"))
    values = PRESETS[preset](arch, noisy)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = ClassifierConfig(task=task, arch=arch, noisy=bool(noisy), preset=preset, **values)
    check(cfg)
    return cfg


def check(cfg: ClassifierConfig) -> None:
    """Raise ValueError (one sentence) on values that cannot run."""
    positive = dict(n_train=cfg.n_train, n_test=cfg.n_test, steps=cfg.steps, batch=cfg.batch, lr=cfg.lr,
                    temperature=cfg.temperature, eval_every=cfg.eval_every, ckpt_every=cfg.ckpt_every)
    for name, v in positive.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    nonneg = dict(weight_decay=cfg.weight_decay, nt_xent_weight=cfg.nt_xent_weight, seed=cfg.seed,
                  data_seed=cfg.data_seed)
    for name, v in nonneg.items():  # issue 12: NaN passed every comparison and trained garbage
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if cfg.n_train < 3 or cfg.n_test < 3:
        raise ValueError("need at least 3 training and 3 held-out images (one per class)")
    if cfg.optimizer not in ("adam", "adamw"):
        raise ValueError(f"optimizer must be adam or adamw, got {cfg.optimizer!r}")
    if cfg.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr schedule must be cosine or constant, got {cfg.lr_schedule!r}")
    if cfg.image_size % 8 or cfg.image_size < 8:
        raise ValueError(f"image size must be a positive multiple of 8, got {cfg.image_size}")
    from fullscale.diffusion import T_MAX  # the DDPM process's last index, T - 1

    if not 0 <= cfg.clean_t <= T_MAX:
        raise ValueError(f"clean_t must be a DDPM index in 0..{T_MAX}, got {cfg.clean_t}")
    for name in ("width", "depth"):
        v = getattr(cfg, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
