"""`recforge bench serving`: options, targets and the quick run end to end."""

from __future__ import annotations

import json

import pytest

from pipelines.bench_serving import ServingBenchConfig, main, report, targets


def phase(**values) -> dict:
    base = {
        "sent": 150,
        "ok": 150,
        "rejected": 0,
        "errors": 0,
        "answered": 150,
        "lost": 0,
        "failed": 0,
        "degraded": 0,
        "p50_ms": 4.0,
        "p99_ms": 8.0,
        "max_ms": 9.0,
        "achieved_rate": 50.0,
        "target_rate": 50.0,
    }
    return base | values


def results(**overrides) -> dict:
    shadow = {
        "compared": 140,
        "requests": {"dropped": 0},
        "scores": {"click": {"ks_statistic": 0.0, "mean_shift": 0.0}},
        "rank": {"top_k": 10, "top_k_overlap": 1.0, "kendall_tau": 1.0},
        "latency_ms": {"primary": {"p50": 4.0, "p99": 8.0}, "shadow": {"p50": 4.5, "p99": 9.0}},
    }
    out = {
        "direct": phase(p50_ms=3.0, p99_ms=6.0),
        "load": [phase(), phase(target_rate=100.0, p99_ms=30.0)],
        "shadow": phase(shadow=shadow),
        "worker_ceiling": phase(achieved_rate=350.0, target_rate=None),
        "store_outage": phase(degraded=40, max_ms=150.0, store_down_s=2.0),
        "primary_restart": phase(downtime_s=5.0),
        "scoring": {"requests": 90, "skipped": 10, "rounds": 1, "full_rows_p50_ms": 4.0,
                    "prepared_p50_ms": 2.0, "ratio": 0.5, "max_abs_difference": 3e-8},
        "canary_kill": phase(
            killed_at_s=2.0,
            rollback_at_s=3.0,
            looks_to_rollback=1,
            interval_s=1.0,
            reasons=["guardrail error_rate: 0.3 > limit 0.01"],
        ),
    }
    return out | overrides


def test_targets_are_met_when_every_figure_is_within_its_limit():
    checks = targets(results(), ServingBenchConfig())
    assert all(check["met"] for check in checks.values()), checks
    assert checks["p99_ms_at_50_req_s"]["ratio"] == pytest.approx(0.8)
    assert checks["req_per_s_per_worker"]["ratio"] == pytest.approx(350 / 300)


def test_one_lost_request_anywhere_misses_the_target():
    checks = targets(results(primary_restart=phase(lost=1, downtime_s=5.0)), ServingBenchConfig())
    assert checks["lost_requests"] == {"value": 1, "target": "<= 0", "ratio": None, "met": False}


def test_a_canary_that_was_never_rolled_back_misses_the_target():
    kill = phase(killed_at_s=2.0, rollback_at_s=None, looks_to_rollback=None, interval_s=1.0, reasons=[])
    checks = targets(results(canary_kill=kill), ServingBenchConfig())
    assert checks["analysis_looks_to_rollback"]["met"] is False


def test_the_report_prints_a_row_per_phase_and_every_target():
    data = results()
    data["targets"] = targets(data, ServingBenchConfig())
    lines: list[str] = []
    report(data, lines.append)
    text = "\n".join(lines)
    for row in (
        "direct 50",
        "load 50 req/s",
        "load 100 req/s",
        "shadow 100 %",
        "worker ceiling",
        "store frozen",
    ):
        assert row in text
    assert "p50 1.33x, p99 1.33x" in text and "Kendall tau 1" in text
    assert "full rows p50 4.00 ms, prepared item table p50 2.00 ms (0.50x)" in text
    assert all(name in text for name in data["targets"])


@pytest.mark.parametrize(
    "options, field",
    [
        ({"rates": ()}, "rates"),
        ({"duration_s": 0}, "duration_s"),
        ({"candidates": 501}, "candidates"),
        ({"entry": "sidecar"}, "entry"),
        ({"fault_duration_s": 2.0, "interval_s": 1.0}, "fault_duration_s"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        ServingBenchConfig(**options)


def test_bad_rates_on_the_command_line_exit_2_naming_the_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--rates", "fifty"])
    assert exit_info.value.code == 2 and "rates" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_loses_nothing_fails_nothing_and_rolls_back_at_the_next_look(tmp_path, capsys):
    out = tmp_path / "serving.json"
    assert main(["--quick", "--rates", "50", "--json", str(out), "--workdir", str(tmp_path / "work")]) == 0
    data = json.loads(out.read_text())
    checks = data["targets"]
    assert checks["lost_requests"]["met"] and checks["failed_requests_in_faults"]["met"], checks
    assert checks["analysis_looks_to_rollback"]["met"], data["canary_kill"]["looks"]
    assert data["store_outage"]["degraded"] > 0 and checks["store_frozen_max_ms"]["met"]
    assert data["canary_kill"]["canary_users_answered_by_primary"] > 0
    assert data["shadow"]["shadow"]["compared"] > 0 and data["shadow"]["lost"] == 0
    assert data["shadow"]["shadow"]["rank"]["top_k_overlap"] == 1.0  # the same weights in both arms
    assert data["scoring"]["requests"] > 0 and data["scoring"]["max_abs_difference"] < 1e-4
    assert "analysis_looks_to_rollback" in capsys.readouterr().out


def test_errors_under_overload_are_reported_but_only_fault_phases_must_not_fail():
    overloaded = phase(target_rate=200.0, errors=7, failed=7)
    checks = targets(results(load=[phase(), overloaded]), ServingBenchConfig())
    assert checks["failed_requests_in_faults"]["met"] is True
    checks = targets(results(store_outage=phase(failed=1, max_ms=150.0)), ServingBenchConfig())
    assert checks["failed_requests_in_faults"]["met"] is False
