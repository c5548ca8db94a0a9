"""Validation helpers: every error names the field, what it expects and what it got."""

from __future__ import annotations

import math
from numbers import Integral, Real


def is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def require(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


def require_int(name: str, value: object, low: int) -> None:
    require(is_int(value) and value >= low, name, f"an integer >= {low}", value)


def require_fraction(name: str, value: object, expected: str = "a fraction in [0, 1]") -> None:
    require(is_number(value) and 0 <= value <= 1, name, expected, value)


def require_level(name: str, value: object, high: float = 1.0) -> None:
    require(is_number(value) and 0 < value < high, name, f"a level in (0, {high:g}), e.g. 0.05", value)


def require_positive(name: str, value: object, unit: str = "a number") -> None:
    require(is_number(value) and value > 0, name, f"{unit} > 0", value)
