"""Run configurations for ``dmrules train / sample / run``: a frozen dataclass and three presets.

``paper``  the rules paper's image budget per task (epochs x data size: A 400 x 4000, B 800 x 2000,
           C 1600 x 2000, D 1000 x 2000), 3000 samples with the 999-step ancestral sampler. The
           batch is GPU-sized (256, the paper used 16); the learning rate follows the square-root
           rule for Adam (Malladi et al. 2022): 3e-4 * sqrt(256 / 16) = 1.2e-3, after a short
           linear warm-up, then constant like IDDM. DiT gets 2e-4 (DiT trained at 1e-4 x 256).
``cpu``    Task A on two CPU cores in minutes: ``--model unet`` resolves to ``unet-small-p2`` (a small
           ResBlock U-Net behind a 2 x 2 pixel-unshuffle stem), 160 k images (80 epochs of 2000)
           at batch 16 and lr 2e-3, training on centred images (x0 minus the training-set mean
           image, added back after sampling), 200 samples with 100 stochastic DDIM steps
           (eta = 1). See docs/ddpm.md for why each choice (measured).
``smoke``  seconds, for tests (``unet`` -> ``unet-small``).

Only the "identity" fields decide whether an existing RUN belongs to this config (a mismatch is
a usage error); the performance switches (device, bf16, compile, channels-last, TF32) are not
part of it, so a run started on one machine can be resumed on another.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from theory.schedules import VPProcess

from fullscale import names
from fullscale.tasks import registry

PRESET_NAMES = names.PRESETS
ANCESTRAL_STEPS = VPProcess().t_max  # the ancestral sampler's step count (T - 1 = 999 at T = 1000)


@dataclass(frozen=True)
class Performance:
    """Throughput switches (not part of a run's identity)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool | None = None  # None: on for CUDA, off for CPU
    compile: bool | None = None  # None: on for CUDA, off for CPU
    channels_last: bool | None = None  # None: on (CUDA, and CPU since issue 13: docs/ddpm.md "Training on CPU")
    tf32: bool | None = None
    threads: int | None = None  # CPU intra-op threads (None: torch's default)


@dataclass(frozen=True)
class RunConfig:
    # what is trained
    task: str
    model: str
    preset: str
    image_size: int = 32
    n_train: int = 4000
    data_seed: int = 0
    center: bool = False  # train on x0 - (training-set mean image); the mean is added back when sampling
    objective: str = "eps"  # eps | x0 | v | flow (fullscale.objectives); a config without it loads as eps
    # training (progress is counted in images, edm style)
    epochs: float = 400.0
    batch: int = 256
    lr: float = 1.2e-3
    warmup_kimg: float = 32.0
    ema_halflife_kimg: float = 50.0
    ema_rampup: float = 0.05  # edm: half-life <= ema_rampup * images seen
    seed: int = 0
    ckpt_every_kimg: float = 200.0
    log_every_kimg: float = 20.0
    # sampling and evaluation
    n_samples: int = 3000
    sampler: str = "ddpm"  # ddpm (ancestral, T-1 steps) | ddim | dpm++2m (vp objectives) | euler | heun (flow)
    sample_steps: int = ANCESTRAL_STEPS
    sample_eta: float = 0.0  # DDIM eta (1.0: stochastic, ancestral-like); ignored by ddpm
    sample_batch: int = 1500
    sample_seed: int = 0
    sample_weights: str = "ema"  # ema | raw (IDDM samples from raw weights)
    perf: Performance = field(default_factory=Performance)

    @property
    def total_images(self) -> int:
        return int(round(self.epochs * self.n_train))

    @property
    def total_steps(self) -> int:
        return math.ceil(self.total_images / self.batch)

    def identity(self) -> dict:
        """The fields that define a run (everything but the performance switches). ``objective`` is
        left out while it is the default eps, so runs made before the field existed keep their identity."""
        d = dataclasses.asdict(self)
        d.pop("perf")
        if d.get("objective") == "eps":
            d.pop("objective")
        return d

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        d = dict(d)
        perf = Performance(**d.pop("perf", {}))
        return cls(**d, perf=perf)


def __getattr__(name):  # PEP 562: the task constants are the registry's (each task module declares them)
    if name == "TASKS":
        return registry.names()
    if name == "PAPER_EPOCHS":  # the rules paper's epochs per task (protocol Sec. 1)
        return {k: registry.get(k).paper_epochs for k in registry.names()}
    if name == "PAPER_SIZES":  # the paper's training-set sizes (protocol Sec. 1)
        return {k: registry.get(k).paper_n for k in registry.names()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _paper(task: str, model: str) -> dict:
    spec = registry.get(task)
    n = spec.paper_n
    lr = 2e-4 if model.startswith("dit") else 3e-4 * math.sqrt(256 / 16)
    return dict(n_train=n, epochs=spec.paper_epochs, batch=256, lr=lr, warmup_kimg=32.0,
                ema_halflife_kimg=50.0, ckpt_every_kimg=200.0, log_every_kimg=20.0,
                n_samples=3000, sampler="ddpm", sample_steps=ANCESTRAL_STEPS, sample_batch=1500)


def _cpu(task: str, model: str) -> dict:
    # 160 k images (80 epochs of 2000) at batch 16, lr 2e-3: docs/ddpm.md, "The cpu preset" (measured)
    return dict(n_train=2000, center=True, epochs=80, batch=16, lr=2e-3, warmup_kimg=2.0,
                ema_halflife_kimg=5.0, ckpt_every_kimg=8.0, log_every_kimg=4.0,
                n_samples=200, sampler="ddim", sample_steps=100, sample_eta=1.0, sample_batch=100)


def _smoke(task: str, model: str) -> dict:
    return dict(n_train=32, epochs=2, batch=8, lr=1e-3, warmup_kimg=0.016,
                ema_halflife_kimg=0.016, ckpt_every_kimg=0.032, log_every_kimg=0.016,
                n_samples=8, sampler="ddim", sample_steps=4, sample_batch=4)


PRESETS = {"paper": _paper, "cpu": _cpu, "smoke": _smoke}
# in these presets the paper U-Net is replaced by the small one (said clearly at start)
SMALL_MODEL = {"cpu": {"unet": "unet-small-p2"}, "smoke": {"unet": "unet-small"}}


def resolve_model(preset: str, model: str) -> str:
    return SMALL_MODEL.get(preset, {}).get(model, model)


def make_config(task: str, model: str, preset: str, perf: Performance | None = None, **overrides) -> RunConfig:
    """The preset's config for (task, model), with ``overrides`` (None values ignored)."""
    from fullscale.models import MODELS

    task = registry.canonical(task)  # one sentence naming the choices when unknown
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESET_NAMES)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    resolved = resolve_model(preset, model)
    values = PRESETS[preset](task, resolved)
    if overrides.get("objective") == "flow" and overrides.get("sampler") is None:
        # a flow model needs a flow sampler: the preset's vp sampler becomes Euler (50 steps)
        values.update(sampler="euler", sample_steps=overrides.get("sample_steps") or 50, sample_eta=0.0)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(task=task, model=resolved, preset=preset, perf=perf or Performance(), **values)
    check(cfg)
    return cfg


def check(cfg: RunConfig) -> None:
    """Raise ValueError (one sentence) on values that cannot run."""
    positive = dict(n_train=cfg.n_train, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr,
                    n_samples=cfg.n_samples, sample_steps=cfg.sample_steps, sample_batch=cfg.sample_batch,
                    ckpt_every_kimg=cfg.ckpt_every_kimg, log_every_kimg=cfg.log_every_kimg,
                    ema_halflife_kimg=cfg.ema_halflife_kimg, image_size=cfg.image_size)
    for name, v in positive.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    # issue 12: a NaN here trained all-NaN EMA weights with exit 0 (nan fails every comparison)
    nonneg = dict(warmup_kimg=cfg.warmup_kimg, ema_rampup=cfg.ema_rampup, seed=cfg.seed, data_seed=cfg.data_seed,
                  sample_seed=cfg.sample_seed)
    for name, v in nonneg.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    for name in ("n_train", "batch", "n_samples", "sample_steps", "sample_batch", "seed", "data_seed", "sample_seed"):
        if not isinstance(getattr(cfg, name), int):
            raise ValueError(f"{name} must be an integer, got {getattr(cfg, name)!r}")
    from fullscale.samplers import check_pair

    check_pair(cfg.sampler, cfg.objective)  # unknown names or a sampler/objective mismatch: one sentence
    t_max = ANCESTRAL_STEPS
    if cfg.sampler == "ddpm" and cfg.sample_steps != t_max:
        raise ValueError(f"the ancestral ddpm sampler always takes {t_max} steps; use --sampler ddim for fewer")
    if cfg.sample_steps > t_max:
        raise ValueError(f"at most {t_max} sampling steps, got {cfg.sample_steps}")
    if not 0.0 <= cfg.sample_eta <= 1.0:
        raise ValueError(f"DDIM eta must be in [0, 1], got {cfg.sample_eta}")
    if cfg.sample_weights not in names.WEIGHTS:
        raise ValueError(f"sample weights must be {' or '.join(names.WEIGHTS)}, got {cfg.sample_weights!r}")
    if cfg.image_size % 8:
        raise ValueError(f"image size must be a multiple of 8, got {cfg.image_size}")
