"""Printing the training studies: metrics over seeds as mean ± std, one row per variant."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def mean_std(values: Sequence[float]) -> str:
    """Several values: mean ± std; one value: itself (whole numbers without decimals)."""
    if len(values) == 1:
        value = values[0]
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of a minus mean of b, and two standard errors of that difference."""
    variance = sum((statistics.variance(v) if len(v) > 1 else 0.0) / len(v) for v in (a, b))
    return statistics.mean(a) - statistics.mean(b), 2 * variance**0.5


def table(rows: Mapping[str, Mapping[str, Sequence[float]]], first: str = "variant") -> str:
    """rows: variant → column → values over seeds."""
    columns = list(dict.fromkeys(c for values in rows.values() for c in values))
    width = max([len(first)] + [len(name) for name in rows]) + 2
    lines = [f"{first:<{width}}" + "".join(f"{c:>22}" for c in columns)]
    for name, values in rows.items():
        lines.append(f"{name:<{width}}" + "".join(
            f"{mean_std(values[c]) if c in values else '':>22}" for c in columns))
    return "\n".join(lines)
