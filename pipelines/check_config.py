"""Thresholds of the data checks (kept apart from Great Expectations so configs load fast)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.sim_config import parse_utc, require_float, require_int


@dataclass(frozen=True)
class DataCheckConfig:
    """Thresholds of the data checks.

    Freshness: the newest event must be at most ``max_staleness_hours`` older than
    ``reference_time``. With ``reference_time=None`` the reference is the newest event itself, so
    freshness holds for any non-empty data (right for simulated data, whose clock is its own);
    set it (e.g. to the run's start time) when checking a live feed.
    """

    max_staleness_hours: float = 48.0
    reference_time: str | None = None  # ISO-8601 with offset, e.g. "2026-01-15T00:00:00+00:00"
    max_null_fraction: float = 0.0  # per column; 0 = no nulls at all
    min_events: int = 1
    ctr_range: tuple[float, float] = (0.001, 0.5)  # warning outside
    max_price: float = 100_000.0  # warning above
    example_rows: int = 5  # offending rows reported per failed expectation

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_float(owner, "max_staleness_hours", self.max_staleness_hours, 0.0, 87_600.0)
        if self.reference_time is not None:
            parse_utc(owner, "reference_time", self.reference_time)
        require_float(owner, "max_null_fraction", self.max_null_fraction, 0.0, 0.99)
        require_int(owner, "min_events", self.min_events, 1, 10**12)
        if not (
            isinstance(self.ctr_range, tuple | list)
            and len(self.ctr_range) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in self.ctr_range)
            and 0.0 <= self.ctr_range[0] < self.ctr_range[1] <= 1.0
        ):
            raise ValueError(
                f"{owner}.ctr_range must be two numbers (low, high) with 0 <= low < high <= 1; "
                f"got {self.ctr_range!r}"
            )
        require_float(owner, "max_price", self.max_price, 0.01, 1e12)
        require_int(owner, "example_rows", self.example_rows, 1, 100)
