"""Benchmark of the fused embedding bag against torch.nn.EmbeddingBag and FBGEMM's TBE.

    python -m ops.bench                 # FBGEMM's defaults and a Criteo-like set (minutes)
    python -m ops.bench --small         # the same at a size that runs in seconds
    python -m ops.bench --threads 2 --repeats 20 --json bench.json
    OMP_WAIT_POLICY=PASSIVE python -m ops.bench   # fair to the OpenMP baselines on a shared box

For each problem it prints, per implementation, ms (median over rounds) and GB/s of the forward
and of forward + backward + row-wise Adagrad, their fraction of this machine's measured memory
bandwidth, and time ratios to the baselines measured in the same run; then the issue-3 targets.
Imports only torch and ops (fbgemm_gpu when installed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import warnings
from pathlib import Path

import torch

from ops import available_backends
from ops.bench import contenders
from ops.bench.measure import Bandwidth, load_average, memory_bandwidth, time_rounds
from ops.bench.problems import PROBLEMS, Problem, make_inputs, traffic
from ops.bench.report import ProblemReport, Result, cpu_targets, format_problem, gpu_targets, to_json
from ops.config import BOUNDS_CHECKS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench",
        description=__doc__.split("\n\n")[0],
        epilog="example: python -m ops.bench --small --json bench.json",
    )
    parser.add_argument("--small", action="store_true", help="smaller tables and batches (seconds)")
    parser.add_argument(
        "--problems",
        default=",".join(PROBLEMS),
        help=f"comma-separated, from {', '.join(PROBLEMS)} (default: all)",
    )
    parser.add_argument(
        "--backends", help="our backends, comma-separated (default: every available one but reference)"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: cuda when torch sees a GPU, else cpu",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument(
        "--threads", type=int, help="CPU threads for torch, FBGEMM and ours (default: torch's)"
    )
    parser.add_argument(
        "--bounds-check",
        choices=BOUNDS_CHECKS,
        default="raise",
        help="our modules' bounds_check (default raise, as in use; 'off' times the kernels alone, "
        "as FBGEMM's benchmark does by default)",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    return parser


def _device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; use --device cpu")
    return torch.device(name)


def _names(parser: argparse.ArgumentParser, flag: str, value: str, allowed: list[str]) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        parser.error(f"{flag} must list some of {', '.join(allowed)}; got {value!r}")
    return names


def _machine(device: torch.device) -> dict[str, object]:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    machine: dict[str, object] = {
        "device": device.type,
        "cpu": model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "fbgemm": contenders.fbgemm_problem() or "available",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "load_average_before": load_average(),
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine


def _run_problem(
    problem: Problem, backends: list[str], device: torch.device, args: argparse.Namespace
) -> ProblemReport:
    inputs = make_inputs(problem)
    entries: list[tuple[contenders.Contender, str | None]] = [
        (contenders.torch_embedding_bag(problem, inputs, device), None)
    ]
    if not contenders.fbgemm_problem():
        entries.append((contenders.fbgemm_tbe(problem, inputs, device), None))
    entries += [
        (contenders.ours(problem, inputs, b, device, args.bounds_check), b) for b in backends
    ]
    samples = time_rounds([c for c, _ in entries], args.repeats, args.warmup, device)
    results = tuple(
        Result(c.name, c.baseline, backend, s) for (c, backend), s in zip(entries, samples, strict=True)
    )
    return ProblemReport(problem, traffic(problem, inputs), results)


def _header(machine: dict[str, object], bandwidth: Bandwidth) -> list[str]:
    where = machine.get("gpu", machine["cpu"])
    load = " ".join(f"{x:.2f}" for x in machine["load_average_before"])
    return [
        f"device {machine['device']} ({where}), torch {machine['torch']}, {machine['threads']} threads",
        f"load average before (1/5/15 min): {load} -- the machine may be shared with other jobs",
        f"fbgemm TBE: {machine['fbgemm']}",
        f"OMP_WAIT_POLICY={machine['omp_wait_policy']}: unless PASSIVE, torch's and FBGEMM's OpenMP "
        "threads spin while they wait, which on a loaded machine slows every contender",
        bandwidth.describe(),
    ]


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark with command-line arguments `argv` (default: sys.argv[1:]) and returns
    the exit status; bad arguments exit 2 with a message naming the flag."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json: folder {args.json.parent} does not exist")
    device = _device(parser, args.device)
    problems = [PROBLEMS[n](args.small) for n in _names(parser, "--problems", args.problems, list(PROBLEMS))]
    available = [b for b in available_backends(device) if b != "reference"]
    backends = available if args.backends is None else _names(
        parser, "--backends", args.backends, available_backends(device)
    )
    # torch.optim.Adagrad's sparse path warns on every step; the baseline is used as intended.
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    torch.manual_seed(0)

    machine = _machine(device)
    bandwidth = memory_bandwidth(device)
    for line in _header(machine, bandwidth):
        print(line, flush=True)
    reports = []
    for problem in problems:
        reports.append(_run_problem(problem, backends, device, args))
        print()
        for line in format_problem(reports[-1], bandwidth):
            print(line, flush=True)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    targets = gpu_targets(reports, bandwidth) if device.type == "cuda" else cpu_targets(reports)
    machine["load_average_after"] = load_average()
    print()
    print("targets (issue 3):")
    for target in targets:
        print(f"  {target.describe()}")
    print(f"load average after (1/5/15 min): {' '.join(f'{x:.2f}' for x in machine['load_average_after'])}")
    if args.json is not None:
        replaced = args.json.exists()
        args.json.write_text(json.dumps(to_json(machine, bandwidth, reports, targets), indent=2))
        print(f"results written to {args.json}" + (" (replaced the previous file)" if replaced else ""))
    return 0
