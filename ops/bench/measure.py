"""Timing on a shared machine: every contender is timed once per round, rounds repeated, so a
burst of load from other jobs hits all of them alike; medians are reported. Also this machine's
memory bandwidth, measured with torch on the benchmark's device."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ops.bench.contenders import Contender

BANDWIDTH_BYTES = 1 << 30  # well beyond any cache


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn: Callable[[], object], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Samples:
    """Seconds of each timed run of one contender (wall clock, from the call to the GPU's end),
    and on a GPU the seconds per call the device spent running its kernels and copies."""

    forward: tuple[float, ...]
    step: tuple[float, ...]
    device_forward: float | None = None
    device_step: float | None = None

    @property
    def forward_ms(self) -> float:
        return 1e3 * statistics.median(self.forward)

    @property
    def step_ms(self) -> float:
        return 1e3 * statistics.median(self.step)

    @property
    def device_ms(self) -> tuple[float, float] | None:
        """(forward, step) GPU busy ms per call, None where not measured (CPU)."""
        if self.device_forward is None or self.device_step is None:
            return None
        return 1e3 * self.device_forward, 1e3 * self.device_step


def time_rounds(
    contenders: Sequence[Contender], repeats: int, warmup: int, device: torch.device
) -> list[Samples]:
    """`warmup` untimed then `repeats` timed rounds; in each, every contender's forward, then
    every contender's forward + backward + update."""
    forward: list[list[float]] = [[] for _ in contenders]
    step: list[list[float]] = [[] for _ in contenders]
    for round_ in range(warmup + repeats):
        for i, contender in enumerate(contenders):
            elapsed = seconds(contender.forward, device)
            if round_ >= warmup:
                forward[i].append(elapsed)
        for i, contender in enumerate(contenders):
            elapsed = seconds(contender.step, device)
            if round_ >= warmup:
                step[i].append(elapsed)
    if device.type != "cuda":
        return [Samples(tuple(f), tuple(s)) for f, s in zip(forward, step, strict=True)]
    return [
        Samples(tuple(f), tuple(s), device_seconds(c.forward, device), device_seconds(c.step, device))
        for c, f, s in zip(contenders, forward, step, strict=True)
    ]


def device_seconds(fn: Callable[[], object], device: torch.device, calls: int = 5) -> float:
    """Seconds per call of `fn` that the GPU is busy (kernels, copies, memsets), from torch's
    profiler: the kernels' own time, without the host's launch and Python overhead that the
    wall clock of one synchronised call also counts."""
    from torch.profiler import ProfilerActivity, profile

    _synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        _synchronize(device)
    busy_us = sum(
        event.time_range.elapsed_us()
        for event in prof.events()
        if event.device_type == torch.autograd.DeviceType.CUDA
    )
    return busy_us / calls / 1e6


@dataclass(frozen=True)
class Bandwidth:
    """GB/s of a streaming read (torch.sum) and of a copy (bytes read + written) of a float32
    tensor (1 GiB by default), medians of a few runs."""

    device: str
    num_bytes: int
    read_gbps: float
    copy_gbps: float

    @property
    def reference_gbps(self) -> float:
        """What fractions are taken of: the better of the two."""
        return max(self.read_gbps, self.copy_gbps)

    def describe(self) -> str:
        return (
            f"{self.device} memory bandwidth (torch, {self.num_bytes >> 20} MiB float32 tensor): "
            f"read {self.read_gbps:.1f} GB/s (x.sum()), copy {self.copy_gbps:.1f} GB/s "
            f"(y.copy_(x), read + write); %bw below is of {self.reference_gbps:.1f} GB/s"
        )


def memory_bandwidth(device: torch.device, repeats: int = 5, num_bytes: int = BANDWIDTH_BYTES) -> Bandwidth:
    x = torch.ones(num_bytes // 4, device=device)
    y = torch.empty_like(x)
    read = [seconds(x.sum, device) for _ in range(repeats + 1)][1:]
    copy = [seconds(lambda: y.copy_(x), device) for _ in range(repeats + 1)][1:]
    return Bandwidth(
        device=device.type,
        num_bytes=num_bytes,
        read_gbps=num_bytes / statistics.median(read) / 1e9,
        copy_gbps=2 * num_bytes / statistics.median(copy) / 1e9,
    )


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages (other jobs on a shared machine show here)."""
    return os.getloadavg()
