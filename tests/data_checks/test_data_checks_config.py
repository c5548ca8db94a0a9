"""DataCheckConfig validation, and clear errors for missing or unreadable inputs."""

from __future__ import annotations

import json

import pytest

from pipelines.data_checks import DataCheckConfig, run_data_checks


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_staleness_hours", -1.0, r"max_staleness_hours must be a number in \[0\.0, "),
        ("reference_time", "2026-01-15", r"reference_time must be an ISO-8601 time with a UTC"),
        ("reference_time", "soon", r"reference_time must be an ISO-8601 time"),
        ("max_null_fraction", 1.0, r"max_null_fraction must be a number in \[0\.0, 0\.99\]"),
        ("min_events", 0, r"min_events must be an integer in \[1, "),
        ("ctr_range", (0.5, 0.1), r"ctr_range must be two numbers \(low, high\) with 0 <= low"),
        ("ctr_range", (0.1,), r"ctr_range must be two numbers"),
        ("max_price", 0.0, r"max_price must be a number in"),
        ("example_rows", 0, r"example_rows must be an integer in \[1, 100\]"),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_values(field, value, message):
    with pytest.raises(ValueError, match=rf"DataCheckConfig\.{message}"):
        DataCheckConfig(**{field: value})


def test_the_default_config_needs_no_reference_time():
    config = DataCheckConfig()
    assert config.reference_time is None
    assert config.max_staleness_hours == 48.0


def test_a_folder_without_raw_tables_names_the_missing_files_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        run_data_checks(tmp_path, DataCheckConfig(), tmp_path / "docs")
    message = str(raised.value)
    assert str(tmp_path / "events" / "part-*.parquet") in message
    assert str(tmp_path / "users.parquet") in message
    assert "pipelines.simulator.simulate" in message


def test_a_corrupt_parquet_file_is_named(clean_dir, tmp_path, spoiled):
    raw = spoiled("users.parquet", lambda users: None)
    (raw / "users.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"users\.parquet is not a readable Parquet file"):
        run_data_checks(raw, DataCheckConfig(), tmp_path / "docs")


def test_the_result_is_plain_json(clean_dir, tmp_path):
    result = run_data_checks(clean_dir, DataCheckConfig(ctr_range=(0.4, 0.5)), tmp_path / "docs")
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"success", "failed_expectations", "statistics", "docs_index"}
    assert set(data["failed_expectations"][0]) == {
        "suite", "expectation", "column", "severity", "details", "examples"
    }  # fmt: skip
    assert data["statistics"]["rows"]["events"] == 20_000
