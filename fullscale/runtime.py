"""Where and how a run executes: device, precision and compile switches, and torchrun/DDP set-up.

Defaults (issue 6): on CUDA, bf16 autocast, channels-last, TF32 and ``torch.compile`` are on. On
CPU (issue 13) channels-last is on (fp32, deterministic; 1.1x the img/s of NCHW in oneDNN's
convolutions) and the rest is off: ``--bf16`` is bf16 autocast through oneDNN (AMX / avx512_bf16
where the CPU has them) and ``--compile`` is inductor's C++ backend, both opt-in there (bf16
changes the numerics; compile costs a minute or more at the first step); TF32 has no meaning on CPU. Measured in docs/ddpm.md, "Training on CPU". Under ``torchrun`` the environment variables
RANK / WORLD_SIZE / LOCAL_RANK select the process; the backend is NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch


@dataclass
class Runtime:
    device: torch.device
    bf16: bool
    compile: bool
    channels_last: bool
    tf32: bool
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self):
        if self.bf16 and self.device.type in ("cuda", "cpu"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def describe(self) -> str:
        flags = [f"bf16={'on' if self.bf16 else 'off'}", f"compile={'on' if self.compile else 'off'}",
                 f"channels_last={'on' if self.channels_last else 'off'}", f"tf32={'on' if self.tf32 else 'off'}"]
        where = str(self.device)
        if self.device.type == "cuda":
            where += f" ({torch.cuda.get_device_name(self.device)})"
        else:
            where += f" ({torch.get_num_threads()} threads)"
        dist = f", rank {self.rank}/{self.world}" if self.distributed else ""
        return f"{where}{dist}, " + " ".join(flags)


def _pick(value, default):
    return default if value is None else bool(value)


def setup(perf, distributed: bool | None = None) -> Runtime:
    """Resolve the performance switches; initialise the process group when run by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if distributed is None:
        distributed = world > 1
    name = perf.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {perf.device!r} requested but CUDA is not available")
    if name == "cuda":  # torch.cuda.set_device needs an index
        name = f"cuda:{local_rank if distributed else torch.cuda.current_device()}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {perf.device!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if perf.threads:
        torch.set_num_threads(int(perf.threads))
    elif device.type == "cpu":
        torch.set_num_threads(free_cores())
    cuda = device.type == "cuda"
    # CPU: bf16 only when asked (--bf16; oneDNN autocast), never by default (it changes the numerics)
    rt = Runtime(device=device, bf16=_pick(perf.bf16, cuda) and device.type in ("cuda", "cpu"),
                 compile=_pick(perf.compile, cuda),
                 channels_last=_pick(perf.channels_last, True), tf32=_pick(perf.tf32, cuda) and cuda)
    torch.backends.cuda.matmul.allow_tf32 = rt.tf32
    torch.backends.cudnn.allow_tf32 = rt.tf32
    if cuda:
        torch.backends.cudnn.benchmark = True
    if distributed and world > 1:
        import torch.distributed as dist

        die_with_parent()  # issue 12: workers of a killed torchrun launcher must not keep writing

        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=60))
        rt.rank, rt.world, rt.local_rank = dist.get_rank(), dist.get_world_size(), local_rank
    return rt


def die_with_parent(sig: int | None = None) -> bool:
    """Ask the kernel to send this process ``sig`` (SIGTERM) when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``). torchrun's workers are children of the launcher: after ``kill -9``
    of the launcher they would otherwise keep training and writing while a resumed run starts.
    Returns whether it was set (False off Linux)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(sig or signal.SIGTERM), 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), int(sig or signal.SIGTERM))
    return True


def free_cores() -> int:
    """CPU threads to use when not told: the cores not already busy (1-minute load average), at
    least 1 and at most torch's default. On a shared 2-core machine, two OpenMP threads competing
    with other processes ran ~10x slower than one thread (measured, docs/ddpm.md)."""
    default = torch.get_num_threads()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return default
    return max(1, min(default, int((os.cpu_count() or default) - busy + 0.5)))


def barrier(rt: Runtime) -> None:
    if rt.distributed:
        import torch.distributed as dist

        dist.barrier()


def shutdown(rt: Runtime) -> None:
    if rt.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def prepare(net: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    """Move to the device, channels-last if asked (fp32 weights; autocast does the rest)."""
    net = net.to(rt.device)
    if rt.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def inference_fn(net: torch.nn.Module, rt: Runtime):
    """``f(x, t) -> eps_hat`` (float32) with the runtime's autocast / channels-last / compile."""
    net.eval()
    module = torch.compile(net, dynamic=False) if rt.compile else net

    def f(x, t):
        if rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.autocast():
            return module(x, t).float()

    return f
