"""The benchmark (python -m ops.bench): its problems, byte counts, report table, targets and
JSON, checked on synthetic timings; and one real run on a tiny problem."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys

import pytest
import torch

import ops.bench
from ops.bench.measure import Bandwidth, Samples, memory_bandwidth
from ops.bench.problems import (
    CRITEO_ROW_CAP,
    Inputs,
    Problem,
    criteo_like,
    fbgemm_default,
    make_inputs,
    traffic,
    zipf_indices,
)
from ops.bench.report import ProblemReport, Result, cpu_targets, format_problem, gpu_targets, to_json

TINY = Problem("tiny", batch_size=4, rows=(10, 6), dims=(8, 4), bag_size=2)
BANDWIDTH = Bandwidth(device="cpu", num_bytes=1 << 30, read_gbps=10.0, copy_gbps=8.0)


def _samples(forward_ms: float, step_ms: float) -> Samples:
    return Samples(forward=(forward_ms / 1e3,) * 3, step=(step_ms / 1e3,) * 3)


def _report(*results: Result, problem: Problem = TINY) -> ProblemReport:
    inputs = Inputs(torch.zeros(0), torch.zeros(0), unique_rows=(5, 3))
    return ProblemReport(problem, traffic(problem, inputs), results)


TORCH = Result("torch.nn.EmbeddingBag x2 + Adagrad", "torch", None, _samples(2.0, 30.0))
FBGEMM = Result("fbgemm TBE + rowwise Adagrad", "fbgemm", None, _samples(1.0, 12.0))
OURS_CPU = Result("ours: cpu + rowwise_adagrad", None, "cpu", _samples(2.1, 3.0))


def test_fbgemm_default_is_fbgemms_benchmark_shape():
    p = fbgemm_default()

    shape = (p.batch_size, p.num_tables, set(p.dims), p.bag_size, set(p.rows))
    assert shape == (512, 32, {128}, 20, {100_000})


def test_criteo_like_has_26_capped_tables_of_mixed_width_and_zipf_indices():
    p = criteo_like()

    assert p.num_tables == 26
    assert max(p.rows) == CRITEO_ROW_CAP and min(p.rows) == 3
    assert len(set(p.dims)) > 2
    assert p.zipf is not None
    assert p.table_bytes() < 4 << 30  # one copy of the tables fits a 24 GiB machine several times


def test_zipf_indices_stay_in_range_and_concentrate_on_few_rows():
    draws = zipf_indices(10_000, 50_000, 1.05, torch.Generator().manual_seed(0))

    assert int(draws.min()) >= 0 and int(draws.max()) < 10_000
    counts = torch.bincount(draws, minlength=10_000).sort(descending=True).values
    assert counts[:100].sum() > 0.4 * draws.numel()  # 1% of the rows get > 40% of the lookups


def test_inputs_are_table_major_with_fixed_bags_and_count_distinct_rows():
    inputs = make_inputs(TINY, seed=3)

    assert inputs.indices.numel() == 2 * 4 * 2
    assert inputs.offsets.tolist() == list(range(0, 17, 2))
    first_table = inputs.indices[:8]
    assert inputs.unique_rows[0] == first_table.unique().numel()
    assert int(first_table.max()) < 10 and int(inputs.indices[8:].max()) < 6


def test_traffic_counts_rows_read_output_and_each_touched_row_once():
    inputs = Inputs(torch.zeros(0), torch.zeros(0), unique_rows=(5, 3))

    t = traffic(TINY, inputs)

    output = 4 * 4 * (8 + 4)  # B x sum(D) floats
    rows_read = 4 * 4 * 2 * (8 + 4)  # B x L lookups per table
    assert t.forward == rows_read + output
    # grad_out read, each touched row and its row-wise state read and written
    assert t.backward == output + 5 * (2 * 4 * 8 + 8) + 3 * (2 * 4 * 4 + 8)
    assert t.step == t.forward + t.backward


def _cells(lines: list[str], name: str) -> list[str]:
    """The cells after the name column of the row for `name`."""
    return next(line for line in lines if line.startswith(name))[40:].split()


def test_table_shows_ms_gbps_bandwidth_fraction_and_ratio_to_each_baseline():
    report = _report(TORCH, FBGEMM, OURS_CPU)

    cells = _cells(format_problem(report, BANDWIDTH), "ours: cpu")

    forward, step = report.traffic.forward / 2.1e6, report.traffic.step / 3.0e6  # GB/s
    assert cells == [
        *("2.10", f"{forward:.2f}", f"{100 * forward / 10:.0f}%", "1.05", "2.10"),
        *("3.00", f"{step:.2f}", f"{100 * step / 10:.0f}%", "0.10", "0.25"),
    ]


def test_table_marks_a_missing_baseline_with_a_dash():
    cells = _cells(format_problem(_report(TORCH, OURS_CPU), BANDWIDTH), "ours: cpu")

    assert (cells[4], cells[9]) == ("-", "-")


def test_cpu_targets_compare_forward_to_torch_and_train_step_to_both_baselines():
    targets = cpu_targets([_report(TORCH, FBGEMM, OURS_CPU)])

    assert [(round(t.value, 2), t.met) for t in targets] == [(1.05, True), (10.0, True), (4.0, True)]


def test_a_slow_train_step_misses_its_target():
    slow = Result("ours: cpu + rowwise_adagrad", None, "cpu", _samples(2.1, 6.0))

    missed = [t for t in cpu_targets([_report(TORCH, FBGEMM, slow)]) if not t.met]

    assert [t.description for t in missed] == ["tiny: fbgemm's train-step time / cpu's"]
    assert "MISSED" in missed[0].describe()


def test_gpu_targets_take_forward_and_backward_fractions_of_the_measured_hbm_bandwidth():
    hbm = Bandwidth(device="cuda", num_bytes=1 << 30, read_gbps=3000.0, copy_gbps=2600.0)
    report = _report(
        Result("ours: cuda + rowwise_adagrad", None, "cuda", _samples(0.001, 0.003)),
        Result("ours: triton + rowwise_adagrad", None, "triton", _samples(0.002, 0.006)),
    )

    targets = gpu_targets([report], hbm)

    t = report.traffic
    cuda_forward = t.forward / 0.001e-3 / 1e9 / 3000.0
    cuda_backward = t.backward / 0.002e-3 / 1e9 / 3000.0
    assert [x.description for x in targets][:2] == [
        "tiny: cuda forward fraction of HBM bandwidth",
        "tiny: cuda backward+update fraction of HBM",
    ]
    assert targets[0].value == pytest.approx(cuda_forward) and targets[0].bound == 0.8
    assert targets[1].value == pytest.approx(cuda_backward) and targets[1].bound == 0.4
    assert len(targets) == 4  # the Triton kernel is reported beside the CUDA one


def test_on_a_gpu_the_device_busy_time_gives_the_kernel_rows_and_the_targets():
    hbm = Bandwidth(device="cuda", num_bytes=1 << 30, read_gbps=3000.0, copy_gbps=2600.0)
    # Wall clock 1 ms / 3 ms per call (host overhead), the GPU busy 0.1 ms / 0.4 ms of it.
    samples = Samples(forward=(1e-3,) * 3, step=(3e-3,) * 3, device_forward=1e-4, device_step=4e-4)
    report = _report(Result("ours: cuda + rowwise_adagrad", None, "cuda", samples))

    lines = format_problem(report, hbm)
    targets = gpu_targets([report], hbm)

    assert any(line.startswith("  GPU busy per call") for line in lines)
    kernel_row = lines[-1].split()
    assert kernel_row[4:6] == ["0.100", f"{report.traffic.forward / 0.1e-3 / 1e9:.1f}"]
    t = report.traffic
    assert targets[0].value == pytest.approx(t.forward / 0.1e-3 / 1e9 / 3000.0)
    assert targets[1].value == pytest.approx(t.backward / 0.3e-3 / 1e9 / 3000.0)
    ours = to_json({"device": "cuda"}, hbm, [report], targets)["problems"][0]["results"][0]
    assert ours["device_forward_ms"] == pytest.approx(0.1) and ours["device_step_ms"] == pytest.approx(0.4)


def test_cpu_results_have_no_kernel_rows():
    assert not any("GPU busy" in line for line in format_problem(_report(TORCH, OURS_CPU), BANDWIDTH))


def test_json_holds_medians_ratios_samples_and_targets():
    report = _report(TORCH, OURS_CPU)
    document = to_json({"device": "cpu"}, BANDWIDTH, [report], cpu_targets([report]))

    ours = document["problems"][0]["results"][1]
    assert ours["forward_ms"] == pytest.approx(2.1)
    assert ours["ratios"]["step/torch"] == pytest.approx(0.1)
    assert ours["ratios"]["step/fbgemm"] is None
    assert len(ours["samples_s"]["step"]) == 3
    assert document["bandwidth"]["reference_gbps"] == 10.0
    assert document["targets"][0]["met"] is True
    json.dumps(document)  # serialisable as is


def test_memory_bandwidth_is_measured_on_the_device():
    bandwidth = memory_bandwidth(torch.device("cpu"), repeats=2, num_bytes=16 << 20)

    assert bandwidth.read_gbps > 0 and bandwidth.copy_gbps > 0
    assert "16 MiB" in bandwidth.describe()


def test_main_benchmarks_a_tiny_problem_and_writes_json(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(ops.bench.PROBLEMS, "tiny", lambda small: TINY)
    small_bandwidth = functools.partial(memory_bandwidth, num_bytes=16 << 20)
    monkeypatch.setattr(ops.bench, "memory_bandwidth", small_bandwidth)
    target = tmp_path / "bench.json"

    code = ops.bench.main(
        ["--problems", "tiny", "--backends", "cpu", "--repeats", "2", "--warmup", "0", "--json", str(target)]
    )

    printed = capsys.readouterr().out
    assert code == 0
    assert "ours: cpu + rowwise_adagrad" in printed and "torch.nn.EmbeddingBag x2" in printed
    assert "load average before" in printed and "targets (issue 3):" in printed
    document = json.loads(target.read_text())
    assert [r["backend"] for r in document["problems"][0]["results"]][-1] == "cpu"


def test_bounds_check_off_times_the_kernels_alone_and_says_so(monkeypatch, capsys):
    monkeypatch.setitem(ops.bench.PROBLEMS, "tiny", lambda small: TINY)
    monkeypatch.setattr(
        ops.bench, "memory_bandwidth", functools.partial(memory_bandwidth, num_bytes=16 << 20)
    )

    code = ops.bench.main(
        [
            "--problems",
            "tiny",
            "--backends",
            "cpu",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--bounds-check",
            "off",
        ]
    )

    assert code == 0
    assert "ours: cpu + rowwise_adagrad, bounds off" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--problems", "imagenet"], r"--problems must list some of fbgemm-default, criteo-like"),
        (["--backends", "tpu"], r"--backends must list some of"),
        (["--repeats", "0"], r"--repeats must be >= 1"),
        (["--threads", "0"], r"--threads must be >= 1"),
        (["--json", "/no/such/folder/out.json"], r"--json: folder /no/such/folder does not exist"),
        (["--bounds-check", "maybe"], r"--bounds-check: invalid choice"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        ops.bench.main(argv)

    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_runs_as_a_module_with_help_showing_an_example():
    result = subprocess.run(
        [sys.executable, "-m", "ops.bench", "--help"], capture_output=True, text=True, timeout=120, check=True
    )

    assert "example: python -m ops.bench --small" in result.stdout
