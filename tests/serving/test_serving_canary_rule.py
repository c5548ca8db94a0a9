"""The local canary's config validation and its per-arm recorder (the rule itself: tests/analysis)."""

from __future__ import annotations

import numpy as np
import pytest

from serving.canary import CanaryConfig
from serving.metrics import ArmRecorder


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("canary_percent", 0),
        ("canary_percent", 100),
        ("canary_percent", 12.5),
        ("num_requests", 0),
        ("slate_size", 60),
        ("candidates_per_request", 501),
        ("max_error_rate", 1.5),
        ("max_p99_ms", 0),
        ("alpha", 0.7),
        ("min_relative_ctr", 1.2),
        ("min_relative_cvr", 0.0),
        ("concurrency", True),
        ("salt", ""),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"canary.{field}"):
        CanaryConfig(**{field: value})


def test_recorder_aggregates_outcomes_per_user():
    recorder = ArmRecorder()
    recorder.record_request(10.0)
    recorder.record_request(30.0, error=True)
    recorder.record_outcome(7, impressions=10, clicks=2, conversions=1)
    recorder.record_outcome(7, impressions=10, clicks=1, conversions=0)
    recorder.record_outcome(9, impressions=10, clicks=0, conversions=0)
    stats = recorder.snapshot()
    assert (stats.requests, stats.errors, stats.users) == (2, 1, 2)
    assert (stats.impressions, stats.clicks, stats.conversions) == (30, 3, 1)
    assert sorted(stats.per_user.tolist()) == [[10, 0, 0], [20, 3, 1]]
    assert stats.ctr == pytest.approx(0.1) and stats.cvr == pytest.approx(1 / 3)
    assert np.isclose(stats.p50_ms, 20.0)


def test_recorder_rejects_an_impossible_outcome():
    with pytest.raises(ValueError, match="conversions <= clicks"):
        ArmRecorder().record_outcome(1, impressions=5, clicks=1, conversions=2)
