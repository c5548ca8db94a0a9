"""Data checks on the raw tables with Great Expectations, before anything learns from them.

``run_data_checks(data_dir, config, docs_dir)`` validates events, users and items (schema and
types, nulls, ranges, unique event ids, conversion implies click, referential integrity,
freshness), writes Data Docs HTML into ``docs_dir`` and returns a JSON-able result;
``enforce(result)`` raises :class:`DataCheckFailed` when a critical expectation failed, naming the
expectation, the column and example rows. Warnings are reported but never stop the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.check_config import DataCheckConfig
from pipelines.check_loading import RawTables, load_tables
from pipelines.check_runner import validate
from pipelines.check_suites import REFERENCES, SuiteInputs, build_suites, reference_column
from pipelines.sim_config import parse_utc

__all__ = ["DataCheckConfig", "DataCheckFailed", "DataCheckResult", "enforce", "run_data_checks"]


@dataclass(frozen=True)
class DataCheckResult:
    """``success`` is False exactly when a critical expectation failed."""

    success: bool
    failed_expectations: tuple[dict, ...]  # suite, expectation, column, severity, details, examples
    statistics: dict
    docs_index: str

    @property
    def critical_failures(self) -> list[dict]:
        return [f for f in self.failed_expectations if f["severity"] == "critical"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_expectations"] = list(self.failed_expectations)
        return data


class DataCheckFailed(Exception):
    """A critical expectation failed; the message names each one with its column and examples."""

    def __init__(self, result: DataCheckResult) -> None:
        self.result = result
        lines = [f"data checks failed: {len(result.critical_failures)} critical expectation(s)"]
        for failure in result.critical_failures:
            lines.append(
                f"- {failure['suite']}: {failure['expectation']} on column "
                f"{failure['column']!r}: {failure['details']}"
            )
            if failure["examples"]:
                lines.append(f"  example rows: {failure['examples'][:3]}")
        lines.append(f"Fix the data or its producer and rerun. Data Docs: {result.docs_index}")
        super().__init__("\n".join(lines))


def enforce(result: DataCheckResult) -> None:
    """Raise DataCheckFailed if a critical expectation failed; warnings pass."""
    if not result.success:
        raise DataCheckFailed(result)


def _event_times(events: pd.DataFrame) -> pd.Series | None:
    if "ts" not in events or not isinstance(events["ts"].dtype, pd.DatetimeTZDtype):
        return None
    times = events["ts"].dropna()
    return times if len(times) else None


def _reference_time(config: DataCheckConfig, events: pd.DataFrame) -> datetime:
    if config.reference_time is not None:
        return parse_utc("DataCheckConfig", "reference_time", config.reference_time)
    times = _event_times(events)
    return times.max().to_pydatetime() if times is not None else datetime.now(timezone.utc)


def _add_reference_columns(tables: RawTables) -> dict[str, pd.DataFrame]:
    """Events get one boolean column per foreign key: does the id exist in its table?"""
    frames = tables.frames()
    events = frames["events"].copy(deep=False)
    for _, key, referenced in REFERENCES:
        if key in events and key in frames[referenced]:
            events[reference_column(key, referenced)] = events[key].isin(frames[referenced][key])
    frames["events"] = events
    return frames


def _rate(values: pd.Series) -> float | None:
    numeric = pd.to_numeric(values, errors="coerce")
    return float(numeric.mean()) if numeric.notna().any() else None


def _statistics(tables: RawTables, reference: datetime, oldest_fresh: datetime) -> dict:
    events = tables.events
    times = _event_times(events)
    clicks = pd.to_numeric(events.get("click"), errors="coerce") if "click" in events else None
    conversions = pd.to_numeric(events.get("conversion"), errors="coerce") if "conversion" in events else None
    total_clicks = float(clicks.sum()) if clicks is not None else 0.0
    return {
        "rows": {name: len(frame) for name, frame in tables.frames().items()},
        "distinct_users_in_events": int(events["user_id"].nunique()) if "user_id" in events else 0,
        "distinct_items_in_events": int(events["item_id"].nunique()) if "item_id" in events else 0,
        "ctr": _rate(events["click"]) if "click" in events else None,
        "cvr_given_click": (
            float(conversions.sum()) / total_clicks if conversions is not None and total_clicks else None
        ),
        "first_event": times.min().isoformat() if times is not None else None,
        "last_event": times.max().isoformat() if times is not None else None,
        "reference_time": reference.isoformat(),
        "oldest_fresh_event": oldest_fresh.isoformat(),
    }


def run_data_checks(data_dir: Path, config: DataCheckConfig, docs_dir: Path) -> DataCheckResult:
    """Validate ``data_dir``'s events/, users.parquet and items.parquet; Data Docs to ``docs_dir``.

    Missing or unreadable files raise FileNotFoundError/ValueError naming the path; everything
    about the data's content is reported in the result instead.
    """
    started = time.perf_counter()
    tables = load_tables(Path(data_dir))
    loaded = time.perf_counter()
    reference = _reference_time(config, tables.events)
    oldest_fresh = reference - timedelta(hours=config.max_staleness_hours)
    suites = build_suites(
        SuiteInputs(
            max_null_fraction=config.max_null_fraction,
            min_events=config.min_events,
            oldest_fresh_event=oldest_fresh,
            ctr_range=tuple(config.ctr_range),
            max_price=config.max_price,
        )
    )
    failures, evaluated = validate(
        _add_reference_columns(tables), suites, Path(docs_dir), config.example_rows
    )
    statistics = _statistics(tables, reference, oldest_fresh)
    critical = sum(f["severity"] == "critical" for f in failures)
    statistics["expectations"] = {
        "evaluated": evaluated,
        "failed_critical": critical,
        "failed_warning": len(failures) - critical,
    }
    statistics["seconds"] = {
        "load": round(loaded - started, 3),
        "validate": round(time.perf_counter() - loaded, 3),
    }
    return DataCheckResult(
        success=critical == 0,
        failed_expectations=tuple(failures),
        statistics=statistics,
        docs_index=str(Path(docs_dir) / "index.html"),
    )
