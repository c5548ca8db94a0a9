"""The benchmark's results as records, a text table, target checks and JSON. Pure functions of
the measurements, so the formatting is tested without timing anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ops.bench.measure import Bandwidth, Samples
from ops.bench.problems import Problem, Traffic

BASELINES = ("torch", "fbgemm")


@dataclass(frozen=True)
class Result:
    name: str
    baseline: str | None  # "torch" / "fbgemm" for a baseline, None for ours
    backend: str | None  # our backend ("cpu", "cuda", "triton", ...), None for a baseline
    samples: Samples


@dataclass(frozen=True)
class ProblemReport:
    problem: Problem
    traffic: Traffic
    results: tuple[Result, ...]

    def baseline(self, kind: str) -> Result | None:
        return next((r for r in self.results if r.baseline == kind), None)

    def ratio(self, result: Result, kind: str, phase: str) -> float | None:
        """result's time / the baseline's time for phase "forward" or "step"."""
        base = self.baseline(kind)
        if base is None:
            return None
        return _ms(result, phase) / _ms(base, phase)


def _ms(result: Result, phase: str) -> float:
    return result.samples.forward_ms if phase == "forward" else result.samples.step_ms


def gbps(num_bytes: int, ms: float) -> float:
    return num_bytes / ms / 1e6


def _ratio_cell(value: float | None) -> str:
    return f"{'-':>8}" if value is None else f"{value:>8.2f}"


def format_problem(report: ProblemReport, bandwidth: Bandwidth) -> list[str]:
    """A table: per implementation, ms (median), GB/s, % of the measured bandwidth and the
    time ratio to each baseline, for the forward and for forward + backward + update."""
    t = report.traffic
    head = f"{'implementation':<40}"
    phase_head = f"{'ms':>9}{'GB/s':>8}{'%bw':>6}{'/torch':>8}{'/fbgemm':>8}"
    lines = [
        f"{report.problem.name}: {report.problem.describe()}",
        f"  bytes moved: forward {t.forward / 1e6:.1f} MB, forward+backward+update "
        f"{t.step / 1e6:.1f} MB (see Traffic); ratios are time / baseline time (< 1: ours faster)",
        f"{'':<40}{'forward':-^39}   {'forward+backward+update':-^39}",
        f"{head}{phase_head}   {phase_head}",
    ]
    for result in report.results:
        cells = []
        for phase, num_bytes in (("forward", t.forward), ("step", t.step)):
            ms = _ms(result, phase)
            rate = gbps(num_bytes, ms)
            cells.append(
                f"{ms:>9.2f}{rate:>8.2f}{100 * rate / bandwidth.reference_gbps:>5.0f}%"
                + "".join(_ratio_cell(report.ratio(result, kind, phase)) for kind in BASELINES)
            )
        lines.append(f"{result.name:<40}{cells[0]}   {cells[1]}")
    return lines + _device_lines(report, bandwidth)


def _device_lines(report: ProblemReport, bandwidth: Bandwidth) -> list[str]:
    """On a GPU: the same phases by the device's busy time per call (profiler), which leaves out
    the host's launch and Python overhead that a synchronised call's wall clock includes."""
    timed = [r for r in report.results if r.samples.device_ms is not None]
    if not timed:
        return []
    t = report.traffic
    lines = ["  GPU busy per call (profiler: kernels, copies, memsets; no host overhead):"]
    for result in timed:
        cells = []
        for ms, num_bytes in zip(result.samples.device_ms, (t.forward, t.step), strict=True):
            rate = gbps(num_bytes, ms)
            cells.append(f"{ms:>9.3f}{rate:>8.1f}{100 * rate / bandwidth.reference_gbps:>5.0f}%{'':>16}")
        lines.append(f"{result.name:<40}{cells[0]}   {cells[1]}")
    return lines


@dataclass(frozen=True)
class Target:
    description: str
    value: float
    bound: float
    at_least: bool  # value >= bound (else value <= bound)

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = "met" if self.met else "MISSED"
        return f"{self.description:<62} {self.value:>7.2f}  (target {sign} {self.bound:g})  {verdict}"


def cpu_targets(reports: Sequence[ProblemReport]) -> list[Target]:
    """Issue 3: forward within 1.1x of torch.nn.EmbeddingBag; forward + backward + row-wise
    Adagrad at least 3x faster than torch (sparse Adagrad) and than FBGEMM's TBE."""
    targets = []
    for report in reports:
        for ours in (r for r in report.results if r.backend == "cpu"):
            name = report.problem.name
            forward = report.ratio(ours, "torch", "forward")
            if forward is not None:
                targets.append(Target(f"{name}: cpu forward time / torch's", forward, 1.1, False))
            for kind in BASELINES:
                ratio = report.ratio(ours, kind, "step")
                if ratio is not None:
                    targets.append(Target(f"{name}: {kind}'s train-step time / cpu's", 1 / ratio, 3.0, True))
    return targets


def gpu_targets(reports: Sequence[ProblemReport], bandwidth: Bandwidth) -> list[Target]:
    """Issue 3 on a GPU: forward at least 80% of the measured HBM bandwidth, backward + update
    (train step minus forward) at least 40%; by the GPU's busy time where it was measured (the
    kernels' bandwidth), else by the wall clock."""
    targets = []
    for report in reports:
        t = report.traffic
        for ours in (r for r in report.results if r.backend in ("cuda", "triton")):
            s = ours.samples
            forward_ms, step_ms = s.device_ms or (s.forward_ms, s.step_ms)
            forward = gbps(t.forward, forward_ms) / bandwidth.reference_gbps
            backward_ms = max(step_ms - forward_ms, 1e-9)
            backward = gbps(t.backward, backward_ms) / bandwidth.reference_gbps
            name = f"{report.problem.name}: {ours.backend}"
            targets.append(Target(f"{name} forward fraction of HBM bandwidth", forward, 0.8, True))
            targets.append(Target(f"{name} backward+update fraction of HBM", backward, 0.4, True))
    return targets


def to_json(
    machine: dict[str, object],
    bandwidth: Bandwidth,
    reports: Sequence[ProblemReport],
    targets: Sequence[Target],
) -> dict[str, object]:
    """Everything measured, with every sample (seconds) besides the medians (ms)."""
    problems = []
    for report in reports:
        results = []
        for r in report.results:
            device_forward_ms, device_step_ms = r.samples.device_ms or (None, None)
            results.append(
                {
                    "name": r.name,
                    "baseline": r.baseline,
                    "backend": r.backend,
                    "forward_ms": r.samples.forward_ms,
                    "step_ms": r.samples.step_ms,
                    "forward_gbps": gbps(report.traffic.forward, r.samples.forward_ms),
                    "step_gbps": gbps(report.traffic.step, r.samples.step_ms),
                    "ratios": {
                        f"{phase}/{kind}": report.ratio(r, kind, phase)
                        for phase in ("forward", "step")
                        for kind in BASELINES
                    },
                    "samples_s": asdict(r.samples),
                    "device_forward_ms": device_forward_ms,
                    "device_step_ms": device_step_ms,
                }
            )
        problems.append(
            {
                "problem": asdict(report.problem),
                "description": report.problem.describe(),
                "bytes": {"forward": report.traffic.forward, "step": report.traffic.step},
                "results": results,
            }
        )
    return {
        "machine": machine,
        "bandwidth": {**asdict(bandwidth), "reference_gbps": bandwidth.reference_gbps},
        "problems": problems,
        "targets": [{**asdict(t), "met": t.met} for t in targets],
    }
