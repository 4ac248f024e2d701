"""``make bench-fullscale``: training and sampling throughput of the fullscale DDPM stack.

The make target runs ``python benchmarks/bench_fullscale.py --ablation --threads 1`` (the CPU ablation of
docs/ddpm.md, "Training on CPU", at one thread).

For each model (default: U-Net and DiT-S/2 on CUDA, the small U-Net on CPU), timed side by side in
one process:
  ours       the real training step of fullscale.train.Trainer (data resident on the device, fused
             Adam, EMA, and the device's default switches: bf16 autocast, channels-last, TF32 and
             torch.compile on CUDA; channels-last only on CPU, fp32 eager, as dmrules train)
             and the real sampler step (fullscale.diffusion.ddpm_sample with per-sample noise);
  reference  an IDDM-style loop: fp32 (TF32 off), batch 16, a DataLoader reading PNG files,
             torch.randn noise, plain Adam, no compile; sampling fp32 eager with torch.randn.
FLOPs per image come from ``torch.utils.flop_counter`` (forward, and forward + backward);
MFU = achieved FLOP/s / the device's dense bf16 peak (H100/H200 989 TFLOP/s; ``--peak-tflops``
otherwise; CPU: not reported unless given).

Training is timed interleaved (issue 13): every round runs each loop for ``--block`` seconds in
turn, so a load change on a shared machine hits all of them alike; img/s is the median over the
rounds, and the speed-up is the median of the per-round ratios to the reference with a bootstrap
95 % CI. With ``--ablation`` the training rows also hold the CPU switches one by
one through the real Trainer (loop ``ablation``, column ``variant``; ``ABLATION`` below):
``fp32-eager`` (the CPU defaults before issue 13), then fused Adam, channels-last, bf16 autocast,
torch.compile alone and combined; ``first_call_s`` of a compiled variant is its compile time (a
fresh inductor cache unless ``--warm-cache``; variants sharing a graph compile it once).

Writes reports/results/bench_fullscale_<device>.parquet (tidy, one row per model x loop x variant x
phase, with provenance) and prints a table plus the derived estimates: Task A paper protocol (1.6 M
image-steps) and 3000 samples x 999 steps.

    python benchmarks/bench_fullscale.py                       # defaults for this device
    python benchmarks/bench_fullscale.py --models unet-small --seconds 5 --ref-images 256
    python benchmarks/bench_fullscale.py --ablation --threads 1                # make bench-fullscale
    python benchmarks/bench_fullscale.py --threads 1 --ablation --rounds 12   # the committed CPU ablation
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dmrules.core import results as R  # noqa: E402

from theory.schedules import VPProcess  # noqa: E402

T_MAX = VPProcess().t_max  # the ancestral sampler's steps (999)
PAPER_A_IMAGES = 400 * 4000
SAMPLE_WORK = 3000 * T_MAX
# the CPU ablation: name -> (Runtime switches, Adam); "fp32-eager" is the CPU default before issue 13
ABLATION = {
    "fp32-eager": ({}, "foreach"),
    "fused-adam": ({}, "fused"),
    "channels-last": ({"channels_last": True}, "foreach"),
    "bf16": ({"bf16": True}, "foreach"),
    "compile": ({"compile": True}, "foreach"),
    "fused+cl": ({"channels_last": True}, "fused"),
    "fp32-all": ({"channels_last": True, "compile": True}, "fused"),
    "bf16+fused+cl": ({"bf16": True, "channels_last": True}, "fused"),
    "all": ({"bf16": True, "channels_last": True, "compile": True}, "fused"),
}
PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, seconds: float, warmup: int, unit: int, min_iters: int = 3) -> tuple[float, float, int]:
    """(units per second, first-call seconds, iterations) for ``fn`` called repeatedly."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fn()
    _sync(device)
    t0, n = time.perf_counter(), 0
    while n < min_iters or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
        if n % 4 == 0:
            _sync(device)
    _sync(device)
    return n * unit / (time.perf_counter() - t0), first, n


def interleaved(fns: dict, device, rounds: int, block: float, units: dict, warmup: int = 3) -> dict:
    """name -> (per-round units/s array, first-call seconds): each round runs every ``fn`` for
    ``block`` seconds in turn (a load change on a shared machine hits all of them alike); a call of
    ``fns[name]`` does ``units[name]`` units of work."""
    first = {}
    for name, fn in fns.items():
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        first[name] = time.perf_counter() - t0
        for _ in range(max(warmup - 1, 0)):
            fn()
        print(f"[bench]   {name}: first call {first[name]:.1f} s", flush=True)
    rates = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            t0, n = time.perf_counter(), 0
            while n < 1 or time.perf_counter() - t0 < block:
                fn()
                n += 1
            _sync(device)
            rates[name].append(n * units[name] / (time.perf_counter() - t0))
    return {name: (np.array(r), first[name]) for name, r in rates.items()}


def ratio_ci(num: np.ndarray, den: np.ndarray, seed: int = 0, n_boot: int = 2000) -> tuple[float, float, float]:
    """Median of the per-round ratios num/den and its bootstrap 95 % CI (rounds resampled)."""
    r = num / den
    g = np.random.default_rng(seed)
    boot = np.median(r[g.integers(0, len(r), (n_boot, len(r)))], axis=1)
    return float(np.median(r)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def flops_per_image(model_name: str, device) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per 32 px image, counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    from fullscale.models import build

    net = build(model_name).to(device)
    x, t = torch.randn(2, 3, 32, 32, device=device), torch.tensor([10, 500], device=device)
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            net(x, t)
    fwd = fc.get_total_flops() / 2
    with FlopCounterMode(display=False) as fc:
        net(x, t).square().mean().backward()
    return fwd, fc.get_total_flops() / 2


def ours_trainer(model_name, rt, images, batch, adam=None):
    """The real fullscale.train.Trainer and its step (``adam``: None = the device's default)."""
    from fullscale.presets import make_config
    from fullscale.train import Trainer

    cfg = make_config("A", model_name, "paper", batch=batch, n_train=len(images), epochs=1000)
    tr = Trainer(cfg, rt, images, adam=adam)
    tr.model.train()
    k = iter(range(10**9))
    return tr, lambda: tr.step(next(k))


def bench_ours_sampling(tr, rt, sample_batch, seconds):
    from fullscale import diffusion
    from fullscale.runtime import inference_fn

    f = inference_fn(tr.ema.module, rt)
    seeds = torch.arange(sample_batch, device=rt.device)
    x = diffusion.initial_noise(seeds, (3, 32, 32)).to(rt.device)
    steps = iter(range(T_MAX, 0, -1))

    def one_step():
        i = next(steps, None) or T_MAX
        diffusion.ddpm_sample(f, x, seeds, steps=[i])

    sample_ips, sample_first, _ = _timed(one_step, rt.device, seconds, warmup=2, unit=sample_batch)
    return sample_ips, sample_first


class PNGFolder(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.files = sorted(Path(folder).glob("*.png"))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        img = np.asarray(Image.open(self.files[i]).convert("RGB").resize((32, 32)), dtype=np.float32)
        return torch.from_numpy(img).permute(2, 0, 1) / 127.5 - 1.0


@contextlib.contextmanager
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def reference_trainer(model_name, device, png_dir, workers):
    """IDDM-style: fp32, batch 16, DataLoader over PNG files, randn noise, plain Adam, no compile.
    Returns (net, train_step, loader); the step runs with TF32 off."""
    from fullscale.models import build
    from theory import ddpm_schedule

    torch.manual_seed(0)
    net = build(model_name).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    ab = ddpm_schedule().alpha_bar.float().to(device)
    loader = torch.utils.data.DataLoader(PNGFolder(png_dir), batch_size=16, shuffle=True, drop_last=True,
                                         num_workers=workers, persistent_workers=workers > 0,
                                         pin_memory=device.type == "cuda")
    it = iter(loader)

    def train_step():
        nonlocal it
        try:
            x0 = next(it)
        except StopIteration:
            it = iter(loader)
            x0 = next(it)
        x0 = x0.to(device)
        t = torch.randint(1, T_MAX + 1, (16,), device=device)
        noise = torch.randn_like(x0)
        a = ab[t].view(-1, 1, 1, 1)
        with no_tf32():
            loss = torch.nn.functional.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * noise, t), noise)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return net, train_step, loader


def bench_reference_sampling(net, device, sample_batch, seconds):
    from theory import ddpm_schedule

    net.eval()
    s = ddpm_schedule()
    x = torch.randn(sample_batch, 3, 32, 32, device=device)
    i = s.T // 2

    @torch.no_grad()
    def sample_step():  # IDDM DDPMDiffusion.sample, one step
        t = torch.full((sample_batch,), i, device=device, dtype=torch.long)
        eps = net(x, t)
        al, a_, be = float(s.alphas[i]), float(s.alpha_bar[i]), float(s.betas[i])
        return 1 / al**0.5 * (x - (1 - al) / (1 - a_) ** 0.5 * eps) + be**0.5 * torch.randn_like(x)

    with no_tf32():
        sample_ips, sample_first, _ = _timed(sample_step, device, seconds, warmup=2, unit=sample_batch)
    return sample_ips, sample_first


def _markdown(df) -> str:
    """A GitHub table (no seaborn/tabulate: the GPU machine has only the core packages)."""
    fmt = lambda v: format(v, ".4g") if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in rec) + " |" for rec in df.itertuples(index=False)]
    return "\n".join(lines)


def device_slug(device) -> str:
    if device.type != "cuda":
        return "cpu"
    m = re.search(r"\b([A-Z]{1,2}\d{2,4}[A-Z]?)\b", torch.cuda.get_device_name(device))
    return m.group(1).lower() if m else "cuda"


def peak_flops(device, override):
    if override:
        return override * 1e12
    if device.type != "cuda":
        return float("nan")
    name = torch.cuda.get_device_name(device)
    for key, v in PEAKS.items():
        if key in name:
            return v
    return float("nan")


def _variant_runtime(rt, switches: dict):
    from fullscale.runtime import Runtime

    flags = {"bf16": False, "compile": False, "channels_last": False, "tf32": rt.tf32, **switches}
    return Runtime(device=rt.device, **flags)


def _row(model, loop, variant, phase, batch, rt, adam, ips, first, flop, peak, threads, load):
    return {"device": R.device_name(), "model": model, "loop": loop, "variant": variant, "phase": phase,
            "batch": batch, "precision": "bf16" if rt is not None and rt.bf16 else "fp32",
            "compile": bool(rt is not None and rt.compile), "channels_last": bool(rt is not None and rt.channels_last),
            "adam": adam, "threads": threads, "load_avg": load, "img_per_s": ips, "first_call_s": first,
            "flop_per_img": flop, "tflops": ips * flop / 1e12, "mfu": ips * flop / peak}


def main(argv=None) -> int:
    from fullscale import runtime, tasks
    from fullscale.generate import write_pngs
    from fullscale.presets import Performance
    from fullscale.train import ADAM_DEFAULT

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: the cores not already busy, as dmrules train)")
    p.add_argument("--models", default=None, help="comma list (default: unet,dit-s2 on CUDA; unet-small-p2, the cpu preset's model, on CPU)")
    p.add_argument("--batch", type=int, default=None, help="our training batch (default: paper preset 256 on CUDA, "
                   "cpu preset 16 on CPU)")
    p.add_argument("--sample-batch", type=int, default=None, help="sampling batch (default 1500 CUDA, 100 CPU: the presets)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per sampling measurement (default 20 CUDA, 8 CPU)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved training rounds (default 5 CUDA, 10 CPU)")
    p.add_argument("--block", type=float, default=None, help="seconds per loop per training round (default 4 CUDA, 1.5 CPU)")
    p.add_argument("--ablation", action="store_true",
                   help="also time the switches one by one through the real Trainer (the CPU ablation)")
    p.add_argument("--variants", default=",".join(ABLATION),
                   help=f"comma list of ablation variants (default all: {','.join(ABLATION)})")
    p.add_argument("--warm-cache", action="store_true",
                   help="keep torch.compile's on-disk cache (default: a fresh one, so first_call_s is the cold compile time)")
    p.add_argument("--ref-images", type=int, default=None, help="PNG files for the reference loader (4000 / 512)")
    p.add_argument("--ref-workers", type=int, default=2, help="DataLoader workers of the reference loop (default 2)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile (ours)")
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    p.add_argument("--out", default=None, help="parquet path (default reports/results/bench_fullscale_<device>.parquet)")
    args = p.parse_args(argv)
    for name in ("threads", "batch", "sample_batch", "ref_images", "rounds"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("seconds", "block"):
        v = getattr(args, name)
        if v is not None and not (np.isfinite(v) and v > 0):
            p.error(f"--{name} must be a positive number")

    t_all = time.perf_counter()
    rt = runtime.setup(Performance(device=args.device, compile=args.compile, threads=args.threads), distributed=False)
    cuda = rt.device.type == "cuda"
    models = (args.models or ("unet,dit-s2" if cuda else "unet-small-p2")).split(",")
    batch = args.batch or (256 if cuda else 16)  # the paper / cpu presets
    sbatch = args.sample_batch or (1500 if cuda else 100)
    seconds = args.seconds or (20.0 if cuda else 8.0)
    rounds, block = args.rounds or (5 if cuda else 10), args.block or (4.0 if cuda else 1.5)
    ablation = args.ablation
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(ABLATION))
    if unknown or not variants:
        p.error(f"unknown --variants {','.join(unknown) or '(none)'} (choose from {','.join(ABLATION)})")
    n_ref = args.ref_images or (4000 if cuda else 512)
    peak = peak_flops(rt.device, args.peak_tflops)
    threads = torch.get_num_threads()
    adam_default = ADAM_DEFAULT
    print(f"[bench] {rt.describe()}; models {models}; batch {batch}, sample batch {sbatch}; "
          f"training {rounds} rounds x {block:g} s per loop, sampling {seconds:g} s")
    images, _ = tasks.render("A", max(n_ref, batch), seed=0)
    rows, loads = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.warm_cache:  # the cold compile time: a fresh inductor cache
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
        if not args.no_reference:
            write_pngs(images[:n_ref], Path(tmp) / "png", range(n_ref))
        for name in models:
            fwd, fwdbwd = flops_per_image(name, rt.device)
            ours_tr, ours_step = ours_trainer(name, rt, images, batch)
            steps = {"ours": ours_step}
            meta = {"ours": ("ours", "defaults", rt, adam_default, batch)}
            if not args.no_reference:
                ref_net, steps["reference"], loader = reference_trainer(name, rt.device, Path(tmp) / "png", args.ref_workers)
                meta["reference"] = ("reference", "IDDM-style", None, "forloop", 16)
            if ablation:
                for variant in variants:
                    switches, adam = ABLATION[variant]
                    vrt = _variant_runtime(rt, switches)
                    steps[variant] = ours_trainer(name, vrt, images, batch, adam=adam)[1]
                    meta[variant] = ("ablation", variant, vrt, adam, batch)
            # the reference steps 16 images, ours ``batch``: rates are images per second
            timed = interleaved(steps, rt.device, rounds, block, {k: m[4] for k, m in meta.items()})
            base = timed["reference"][0] if "reference" in timed else timed["ours"][0]
            for k, (rates, first) in timed.items():
                loop, variant, vrt, adam, b = meta[k]
                row = _row(name, loop, variant, "train", b, vrt, adam, float(np.median(rates)), first, fwdbwd, peak,
                           threads, None)
                row["rounds"] = len(rates)
                row["speedup_vs_reference"], row["speedup_lo"], row["speedup_hi"] = ratio_ci(rates, base)
                rows.append(row)
            loads.append(os.getloadavg()[0])
            for r in rows:
                if r["model"] == name and r["load_avg"] is None:
                    r["load_avg"] = float(np.mean(loads[-2:]))
            sa_ips, sa_first = bench_ours_sampling(ours_tr, rt, sbatch, seconds)
            rows.append(_row(name, "ours", "defaults", "sample", sbatch, rt, None, sa_ips, sa_first, fwd, peak, threads,
                             os.getloadavg()[0]))
            if not args.no_reference:
                sa_ips, sa_first = bench_reference_sampling(ref_net, rt.device, sbatch, seconds)
                rows.append(_row(name, "reference", "IDDM-style", "sample", sbatch, None, None, sa_ips, sa_first, fwd,
                                 peak, threads, os.getloadavg()[0]))
                del loader
            print(f"[bench] {name}: done")
    import pandas as pd

    df = pd.DataFrame(rows)
    ref = df[(df.loop == "reference") & (df.phase == "sample")].set_index("model").img_per_s
    sample = df.phase == "sample"
    df.loc[sample, "speedup_vs_reference"] = [r.img_per_s / ref.get(r.model, np.nan) for r in df[sample].itertuples()]
    df["est_task_A_paper_s"] = np.where(df.phase == "train", PAPER_A_IMAGES / df.img_per_s, np.nan)
    df["est_3000x999_s"] = np.where(df.phase == "sample", SAMPLE_WORK / df.img_per_s, np.nan)
    out = Path(args.out or ROOT / "reports" / "results" / f"bench_fullscale_{device_slug(rt.device)}.parquet")
    wall = time.perf_counter() - t_all
    R.write_table(df, out, R.provenance(config={**vars(args), "threads_used": threads, "rounds_used": rounds,
                                                "block_used": block, "variants_used": variants if ablation else []},
                                        command="python benchmarks/bench_fullscale.py "
                                        + " ".join(sys.argv[1:] if argv is None else argv), wall_time_s=wall))
    show = df[["model", "loop", "variant", "phase", "batch", "precision", "compile", "img_per_s", "tflops", "mfu",
               "speedup_vs_reference", "speedup_lo", "speedup_hi", "est_task_A_paper_s", "est_3000x999_s",
               "first_call_s"]]
    print(_markdown(show))
    print(f"[bench] img/s: training images per second (median of {rounds} interleaved rounds; speed-up: median "
          f"per-round ratio, bootstrap 95 % CI); sampling image-steps per second. {threads} threads, load average "
          f"{min(loads):.1f}-{max(loads):.1f}. Wrote {out} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
