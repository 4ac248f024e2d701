"""``make bench-fullscale``: training and sampling throughput of the fullscale DDPM stack.

For each model (default: U-Net and DiT-S/2 on CUDA, the small U-Net on CPU), timed side by side in
one process:
  ours       the real training step of fullscale.train.Trainer (data resident on the device, bf16
             autocast, channels-last, TF32, torch.compile, fused Adam, EMA: the defaults per device)
             and the real sampler step (fullscale.diffusion.ddpm_sample with per-sample noise);
  reference  an IDDM-style loop: fp32 (TF32 off), batch 16, a DataLoader reading PNG files,
             torch.randn noise, plain Adam, no compile; sampling fp32 eager with torch.randn.
FLOPs per image come from ``torch.utils.flop_counter`` (forward, and forward + backward);
MFU = achieved FLOP/s / the device's dense bf16 peak (H100/H200 989 TFLOP/s; ``--peak-tflops``
otherwise; CPU: not reported unless given).

Writes reports/results/bench_fullscale_<device>.parquet (tidy, one row per model x loop x phase,
with provenance) and prints a table plus the derived estimates: Task A paper protocol (1.6 M
image-steps) and 3000 samples x 999 steps.

    python benchmarks/bench_fullscale.py                       # defaults for this device
    python benchmarks/bench_fullscale.py --models unet-small --seconds 5 --ref-images 256
"""

from __future__ import annotations

import argparse
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

PAPER_A_IMAGES = 400 * 4000
SAMPLE_WORK = 3000 * 999
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


def bench_ours(model_name, rt, images, batch, sample_batch, seconds):
    from fullscale import diffusion
    from fullscale.presets import make_config
    from fullscale.runtime import inference_fn
    from fullscale.train import Trainer

    cfg = make_config("A", model_name, "paper", batch=batch, n_train=len(images), epochs=1000)
    tr = Trainer(cfg, rt, images)
    tr.model.train()
    k = iter(range(10**9))
    train_ips, train_first, _ = _timed(lambda: tr.step(next(k)), rt.device, seconds, warmup=3, unit=batch)
    f = inference_fn(tr.ema.module, rt)
    seeds = torch.arange(sample_batch, device=rt.device)
    x = diffusion.initial_noise(seeds, (3, 32, 32)).to(rt.device)
    steps = iter(range(999, 0, -1))

    def one_step():
        i = next(steps, None) or 999
        diffusion.ddpm_sample(f, x, seeds, steps=[i])

    sample_ips, sample_first, _ = _timed(one_step, rt.device, seconds, warmup=2, unit=sample_batch)
    return (train_ips, train_first), (sample_ips, sample_first)


class PNGFolder(torch.utils.data.Dataset):
    def __init__(self, folder):
        self.files = sorted(Path(folder).glob("*.png"))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        img = np.asarray(Image.open(self.files[i]).convert("RGB").resize((32, 32)), dtype=np.float32)
        return torch.from_numpy(img).permute(2, 0, 1) / 127.5 - 1.0


def bench_reference(model_name, device, png_dir, sample_batch, seconds, workers):
    """IDDM-style: fp32, batch 16, DataLoader over PNG files, randn noise, plain Adam, no compile."""
    from fullscale.models import build
    from theory import ddpm_schedule

    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
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
            t = torch.randint(1, 1000, (16,), device=device)
            noise = torch.randn_like(x0)
            a = ab[t].view(-1, 1, 1, 1)
            loss = torch.nn.functional.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * noise, t), noise)
            opt.zero_grad()
            loss.backward()
            opt.step()

        train_ips, train_first, _ = _timed(train_step, device, seconds, warmup=3, unit=16)
        net.eval()
        s = ddpm_schedule()
        x = torch.randn(sample_batch, 3, 32, 32, device=device)

        @torch.no_grad()
        def sample_step():  # IDDM DDPMDiffusion.sample, one step
            i = 500
            t = torch.full((sample_batch,), i, device=device, dtype=torch.long)
            eps = net(x, t)
            al, a_, be = float(s.alphas[i]), float(s.alpha_bar[i]), float(s.betas[i])
            return 1 / al**0.5 * (x - (1 - al) / (1 - a_) ** 0.5 * eps) + be**0.5 * torch.randn_like(x)

        sample_ips, sample_first, _ = _timed(sample_step, device, seconds, warmup=2, unit=sample_batch)
        del loader, it
        return (train_ips, train_first), (sample_ips, sample_first)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


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


def main(argv=None) -> int:
    from fullscale import runtime, tasks
    from fullscale.generate import write_pngs
    from fullscale.presets import Performance

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: the cores not already busy, as dmrules train)")
    p.add_argument("--models", default=None, help="comma list (default: unet,dit-s2 on CUDA; unet-small-p2, the cpu preset's model, on CPU)")
    p.add_argument("--batch", type=int, default=None, help="our training batch (default: paper preset 256 on CUDA, "
                   "cpu preset 16 on CPU)")
    p.add_argument("--sample-batch", type=int, default=None, help="sampling batch (default 1500 CUDA, 100 CPU: the presets)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per measurement (default 20 CUDA, 8 CPU)")
    p.add_argument("--ref-images", type=int, default=None, help="PNG files for the reference loader (4000 / 512)")
    p.add_argument("--ref-workers", type=int, default=2, help="DataLoader workers of the reference loop (default 2)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile (ours)")
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    p.add_argument("--out", default=None, help="parquet path (default reports/results/bench_fullscale_<device>.parquet)")
    args = p.parse_args(argv)

    t_all = time.perf_counter()
    rt = runtime.setup(Performance(device=args.device, compile=args.compile, threads=args.threads), distributed=False)
    cuda = rt.device.type == "cuda"
    models = (args.models or ("unet,dit-s2" if cuda else "unet-small-p2")).split(",")
    batch = args.batch or (256 if cuda else 16)  # the paper / cpu presets
    sbatch = args.sample_batch or (1500 if cuda else 100)
    seconds = args.seconds or (20.0 if cuda else 8.0)
    n_ref = args.ref_images or (4000 if cuda else 512)
    peak = peak_flops(rt.device, args.peak_tflops)
    print(f"[bench] {rt.describe()}; models {models}; batch {batch}, sample batch {sbatch}, {seconds:g} s each")
    images, _ = tasks.render("A", max(n_ref, batch), seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_reference:
            write_pngs(images[:n_ref], tmp, range(n_ref))
        for name in models:
            fwd, fwdbwd = flops_per_image(name, rt.device)
            res = {"ours": bench_ours(name, rt, images, batch, sbatch, seconds)}
            if not args.no_reference:
                res["reference"] = bench_reference(name, rt.device, tmp, sbatch, seconds, args.ref_workers)
            for loop, ((tr_ips, tr_first), (sa_ips, sa_first)) in res.items():
                ours = loop == "ours"
                for phase, ips, first, flop in (("train", tr_ips, tr_first, fwdbwd), ("sample", sa_ips, sa_first, fwd)):
                    rows.append({
                        "device": R.device_name(), "model": name, "loop": loop, "phase": phase,
                        "batch": (batch if ours else 16) if phase == "train" else sbatch,
                        "precision": ("bf16" if rt.bf16 else "fp32") if ours else "fp32",
                        "compile": bool(rt.compile) if ours else False,
                        "img_per_s": ips, "first_call_s": first, "flop_per_img": flop,
                        "tflops": ips * flop / 1e12, "mfu": ips * flop / peak,
                    })
            print(f"[bench] {name}: done")
    import pandas as pd

    df = pd.DataFrame(rows)
    ref = df[df.loop == "reference"].set_index(["model", "phase"]).img_per_s
    df["speedup_vs_reference"] = [r.img_per_s / ref.get((r.model, r.phase), np.nan) for r in df.itertuples()]
    df["est_task_A_paper_s"] = np.where(df.phase == "train", PAPER_A_IMAGES / df.img_per_s, np.nan)
    df["est_3000x999_s"] = np.where(df.phase == "sample", SAMPLE_WORK / df.img_per_s, np.nan)
    out = Path(args.out or ROOT / "reports" / "results" / f"bench_fullscale_{device_slug(rt.device)}.parquet")
    wall = time.perf_counter() - t_all
    R.write_table(df, out, R.provenance(config=vars(args), command="python benchmarks/bench_fullscale.py "
                                        + " ".join(sys.argv[1:] if argv is None else argv), wall_time_s=wall))
    show = df[["model", "loop", "phase", "batch", "precision", "compile", "img_per_s", "tflops", "mfu",
               "speedup_vs_reference", "est_task_A_paper_s", "est_3000x999_s", "first_call_s"]]
    print(_markdown(show))
    print(f"[bench] img/s: training images per second; sampling image-steps per second. Wrote {out} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
