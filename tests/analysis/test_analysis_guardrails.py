"""Hard serving limits on the canary."""

from __future__ import annotations

import pytest

from serving.analysis import GuardrailLimits, ServingCounters, check_guardrails

LIMITS = GuardrailLimits(max_error_rate=0.01, max_invalid_rate=0.01, max_p99_ms=250.0, min_requests=20)


def broken(counters: ServingCounters) -> set[str]:
    return {check.name for check in check_guardrails(counters, LIMITS) if not check.ok}


def test_a_healthy_canary_breaks_no_limit():
    assert broken(ServingCounters(requests=1000, errors=5, invalid=3, p99_ms=80.0)) == set()


def test_an_error_rate_above_the_limit_breaks_it():
    assert broken(ServingCounters(requests=1000, errors=20, p99_ms=80.0)) == {"error_rate"}


def test_empty_or_invalid_answers_above_the_limit_break_it():
    assert broken(ServingCounters(requests=1000, errors=0, invalid=50, p99_ms=80.0)) == {"invalid_rate"}


def test_a_slow_p99_breaks_it():
    assert broken(ServingCounters(requests=1000, errors=0, p99_ms=400.0)) == {"p99_ms"}


def test_a_dead_canary_fails_as_soon_as_it_has_min_requests():
    assert broken(ServingCounters(requests=20, errors=20, p99_ms=5.0)) == {"error_rate"}


def test_limits_are_not_judged_before_min_requests():
    checks = check_guardrails(ServingCounters(requests=5, errors=5, p99_ms=900.0), LIMITS)
    assert all(check.ok and not check.judged for check in checks)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_error_rate", 1.5), ("max_p99_ms", 0), ("min_requests", 0), ("max_invalid_rate", True)],
)
def test_invalid_limits_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}:"):
        GuardrailLimits(**{field: value})


def test_more_failures_than_requests_is_rejected():
    with pytest.raises(ValueError, match="errors \\+ invalid"):
        ServingCounters(requests=3, errors=2, invalid=2)
