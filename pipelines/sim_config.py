"""Typed, validated configuration of the e-commerce simulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from numbers import Integral, Real

from pipelines.sim_text import CATEGORIES, MAX_BRANDS_PER_CATEGORY


def require_int(owner: str, field: str, value: object, low: int, high: int) -> None:
    """Raise ValueError naming ``owner.field`` unless ``value`` is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise ValueError(f"{owner}.{field} must be an integer in [{low}, {high}]; got {value!r}")


def require_float(owner: str, field: str, value: object, low: float, high: float) -> None:
    """Raise ValueError naming ``owner.field`` unless ``value`` is a number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= float(value) <= high:
        raise ValueError(f"{owner}.{field} must be a number in [{low}, {high}]; got {value!r}")


def parse_utc(owner: str, field: str, value: object) -> datetime:
    """Parse an ISO-8601 timestamp that carries a UTC offset; the error names the field."""
    hint = f"{owner}.{field} must be an ISO-8601 time with a UTC offset, e.g. '2026-01-01T00:00:00+00:00'"
    if not isinstance(value, str):
        raise ValueError(f"{hint}; got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{hint}; got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{hint}; got {value!r} (no offset)")
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated world and its impression log; every default runs on a laptop.

    Click and conversion rates are targets: the world calibrates its intercepts so that the
    logging policy's impressions hit them (within sampling noise).
    """

    seed: int = 42
    num_users: int = 20_000
    num_items: int = 5_000
    num_impressions: int = 1_000_000
    days: int = 14
    start: str = "2026-01-01T00:00:00+00:00"
    slate_size: int = 10
    chunk_rows: int = 200_000
    num_categories: int = 20
    brands_per_category: int = 8
    latent_dim: int = 8
    target_ctr: float = 0.06
    target_cvr: float = 0.10  # conversions per click
    position_bias: float = 0.6  # click logit falls by position_bias * log(1 + position)
    drift_radians_per_day: float = 0.06  # how fast user tastes rotate in latent space
    cold_start_fraction: float = 0.15  # share of items created during the simulated days
    exploration: float = 0.3  # share of logged slate slots filled uniformly at random
    activity_tail: float = 1.3  # Pareto shape of user activity; smaller = heavier tail

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_int(owner, "seed", self.seed, 0, 2**63 - 1)
        require_int(owner, "num_users", self.num_users, 1, 10_000_000)
        require_int(owner, "num_items", self.num_items, 1, 10_000_000)
        require_int(owner, "num_impressions", self.num_impressions, 1, 1_000_000_000)
        require_int(owner, "days", self.days, 1, 3650)
        parse_utc(owner, "start", self.start)
        require_int(owner, "slate_size", self.slate_size, 1, min(100, self.num_items))
        require_int(owner, "chunk_rows", self.chunk_rows, 1_000, 50_000_000)
        require_int(owner, "num_categories", self.num_categories, 2, len(CATEGORIES))
        require_int(owner, "brands_per_category", self.brands_per_category, 1, MAX_BRANDS_PER_CATEGORY)
        require_int(owner, "latent_dim", self.latent_dim, 2, 256)
        require_float(owner, "target_ctr", self.target_ctr, 0.001, 0.5)
        require_float(owner, "target_cvr", self.target_cvr, 0.001, 0.9)
        require_float(owner, "position_bias", self.position_bias, 0.0, 5.0)
        require_float(owner, "drift_radians_per_day", self.drift_radians_per_day, 0.0, 3.1416)
        require_float(owner, "cold_start_fraction", self.cold_start_fraction, 0.0, 0.9)
        require_float(owner, "exploration", self.exploration, 0.0, 1.0)
        require_float(owner, "activity_tail", self.activity_tail, 0.5, 10.0)

    @property
    def start_time(self) -> datetime:
        """``start`` as an aware UTC datetime."""
        return parse_utc(type(self).__name__, "start", self.start)
