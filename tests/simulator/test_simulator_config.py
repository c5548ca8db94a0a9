"""SimulationConfig rejects bad values with an error naming the field and the allowed range."""

from __future__ import annotations

import pytest

from pipelines.simulator import SimulationConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", -1),
        ("num_users", 0),
        ("num_items", 0),
        ("num_impressions", 0),
        ("days", 0),
        ("slate_size", 0),
        ("chunk_rows", 10),
        ("num_categories", 1),
        ("num_categories", 21),
        ("brands_per_category", 0),
        ("latent_dim", 1),
        ("target_ctr", 0.0),
        ("target_cvr", 1.0),
        ("position_bias", -0.1),
        ("drift_radians_per_day", 4.0),
        ("cold_start_fraction", 0.95),
        ("exploration", 1.5),
        ("activity_tail", 0.1),
        ("num_users", 2.5),
        ("num_users", True),
        ("target_ctr", "0.05"),
    ],
)
def test_out_of_range_values_name_the_field_and_the_allowed_range(field, value):
    with pytest.raises(ValueError, match=rf"SimulationConfig\.{field} must be .* in \["):
        SimulationConfig(**{field: value})


def test_a_slate_larger_than_the_catalogue_is_rejected():
    with pytest.raises(ValueError, match=r"SimulationConfig\.slate_size .* \[1, 5\]; got 10"):
        SimulationConfig(num_items=5)


@pytest.mark.parametrize("start", ["2026-01-01T00:00:00", "yesterday", 20260101])
def test_a_start_without_a_utc_offset_is_rejected_with_an_example(start):
    with pytest.raises(ValueError, match=r"SimulationConfig\.start .* e\.g\. '2026-01-01T00"):
        SimulationConfig(start=start)


def test_start_with_any_offset_is_read_as_utc():
    config = SimulationConfig(start="2026-01-01T09:00:00+09:00")
    assert config.start_time.isoformat() == "2026-01-01T00:00:00+00:00"


def test_the_defaults_are_the_documented_laptop_world():
    config = SimulationConfig()
    assert (config.num_users, config.num_items, config.num_impressions, config.days) == (
        20_000,
        5_000,
        1_000_000,
        14,
    )
