"""Per-arm, per-user sufficient statistics and the ratio metrics built on them.

Users — not impressions — are what the router randomises, so every metric is a ratio of two
per-user sums (CTR = Σ clicks / Σ impressions) and its variance is taken over users. An arm is
summarised by its number of users ``n``, the sums of the per-user counts and the sums of their
pairwise products: enough for every metric's delta-method variance, additive across time and
shards, and exportable as plain counters (a controller does not need the per-user rows).

Arrays may carry leading batch dimensions (``n: (...)``, ``sums: (..., 3)``, ``products:
(..., 3, 3)``): the benchmark evaluates thousands of runs and looks at once with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIELDS = ("impressions", "clicks", "conversions")
# (i, j) with i <= j: the distinct entries of the symmetric products matrix
PRODUCT_PAIRS = tuple((i, j) for i in range(len(FIELDS)) for j in range(i, len(FIELDS)))
# The moments as named numbers (how a server exports them as counters): users, Σ per field,
# Σ of per-user products ("clicks_x_impressions" is Σ_u clicks_u · impressions_u)
STATISTICS = (
    "users",
    *FIELDS,
    *(f"{FIELDS[j]}_x_{FIELDS[i]}" for i, j in PRODUCT_PAIRS),
)


@dataclass(frozen=True)
class RatioMetric:
    """A business metric: Σ numerator / Σ denominator over an arm's users."""

    name: str
    numerator: str
    denominator: str
    description: str

    @property
    def indices(self) -> tuple[int, int]:
        return FIELDS.index(self.numerator), FIELDS.index(self.denominator)


METRICS: dict[str, RatioMetric] = {
    metric.name: metric
    for metric in (
        RatioMetric("ctr", "clicks", "impressions", "clicks per impression"),
        RatioMetric("cvr", "conversions", "clicks", "conversions per click (post-click)"),
        RatioMetric("ctcvr", "conversions", "impressions", "conversions per impression"),
    )
}


def metric_named(name: str) -> RatioMetric:
    if name not in METRICS:
        raise ValueError(f"metric: expected one of {sorted(METRICS)}, got {name!r}")
    return METRICS[name]


@dataclass(frozen=True)
class UserMoments:
    """One arm's users: count, per-field sums and sums of per-user products.

    ``sums[i] = Σ_u x_ui`` and ``products[i, j] = Σ_u x_ui · x_uj`` over ``FIELDS``.
    """

    n: np.ndarray
    sums: np.ndarray
    products: np.ndarray

    @classmethod
    def from_per_user(cls, per_user: np.ndarray) -> UserMoments:
        """From rows of (impressions, clicks, conversions), one row per user."""
        rows = np.asarray(per_user)
        if rows.ndim != 2 or rows.shape[1] != len(FIELDS):
            raise ValueError(f"per_user: expected shape (users, 3) with columns {FIELDS}, got {rows.shape}")
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"per_user: expected integer counts, got dtype {rows.dtype}")
        ordered = (rows[:, 2] >= 0) & (rows[:, 2] <= rows[:, 1]) & (rows[:, 1] <= rows[:, 0])
        if not np.all(ordered):
            raise ValueError("per_user: need 0 <= conversions <= clicks <= impressions in every row")
        values = rows.astype(np.float64)
        return cls(np.float64(len(values)), values.sum(axis=0), values.T @ values)

    @classmethod
    def from_sums(cls, users: float, sums, products) -> UserMoments:
        """From exported counters (e.g. a controller scraping the router); validated."""
        sums = np.asarray(sums, dtype=np.float64)
        products = np.asarray(products, dtype=np.float64)
        if sums.shape != (3,) or products.shape != (3, 3):
            raise ValueError(
                f"sums/products: expected shapes (3,) and (3, 3) over {FIELDS}, "
                f"got {sums.shape} and {products.shape}"
            )
        if isinstance(users, bool) or not np.isfinite(users) or users < 0:
            raise ValueError(f"users: expected a count >= 0, got {users!r}")
        if not (np.all(np.isfinite(sums)) and np.all(np.isfinite(products))):
            raise ValueError("sums/products: expected finite numbers")
        if np.any(sums < 0) or np.any(np.diag(products) < 0) or not np.allclose(products, products.T):
            raise ValueError("sums/products: expected non-negative sums and a symmetric products matrix")
        return cls(np.float64(users), sums, products)

    @classmethod
    def from_statistics(cls, values: dict[str, float]) -> UserMoments:
        """From ``{name: value}`` over ``STATISTICS`` (e.g. counters read back from Prometheus)."""
        missing = [name for name in STATISTICS if name not in values]
        if missing:
            raise ValueError(f"statistics: missing {missing}; expected all of {list(STATISTICS)}")
        products = np.zeros((3, 3))
        for (i, j), name in zip(PRODUCT_PAIRS, STATISTICS[1 + len(FIELDS) :], strict=True):
            products[i, j] = products[j, i] = values[name]
        return cls.from_sums(values["users"], [values[field] for field in FIELDS], products)

    def statistics(self) -> dict[str, float]:
        """The inverse of :meth:`from_statistics` (one unbatched arm)."""
        products = [float(self.products[i, j]) for i, j in PRODUCT_PAIRS]
        sums = [float(value) for value in self.sums]
        return dict(zip(STATISTICS, [float(self.n), *sums, *products], strict=True))

    @classmethod
    def empty(cls) -> UserMoments:
        return cls(np.float64(0.0), np.zeros(3), np.zeros((3, 3)))

    def __add__(self, other: UserMoments) -> UserMoments:
        """Pool two disjoint sets of users (e.g. two shards of the same arm)."""
        return UserMoments(self.n + other.n, self.sums + other.sums, self.products + other.products)

    def total(self, field: str) -> np.ndarray:
        return self.sums[..., FIELDS.index(field)]

    def to_dict(self) -> dict:
        return {
            "users": float(self.n),
            **{field: float(self.sums[i]) for i, field in enumerate(FIELDS)},
        }


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio metric of one arm and the user-level variance of that estimate."""

    value: np.ndarray
    variance: np.ndarray
    users: np.ndarray
    denominator: np.ndarray


def ratio_estimate(moments: UserMoments, metric: str | RatioMetric) -> RatioEstimate:
    """``Σx/Σy`` and its delta-method variance (Deng, Knoblich & Lu, KDD 2018).

    ``Var(Σx/Σy) ≈ (σ²_x − 2 r σ_xy + r² σ²_y) / (n μ_y²)`` with ``r = μ_x/μ_y`` and sample
    (co)variances over the ``n`` users. Undefined values (no users, ``Σy = 0``, ``n < 2``) are
    NaN; callers treat NaN as "no evidence yet".
    """
    metric = metric_named(metric) if isinstance(metric, str) else metric
    i, j = metric.indices
    n = np.asarray(moments.n, dtype=np.float64)
    sx, sy = moments.sums[..., i], moments.sums[..., j]
    sxx, syy, sxy = moments.products[..., i, i], moments.products[..., j, j], moments.products[..., i, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sy > 0, sx / sy, np.nan)
        mean_y = sy / n
        var_x = (sxx - sx * sx / n) / (n - 1)
        var_y = (syy - sy * sy / n) / (n - 1)
        cov_xy = (sxy - sx * sy / n) / (n - 1)
        variance = (var_x - 2 * ratio * cov_xy + ratio**2 * var_y) / (n * mean_y**2)
        variance = np.where(n >= 2, np.maximum(variance, 0.0), np.nan)
    return RatioEstimate(ratio, variance, n, sy)


def per_trial_variance(moments: UserMoments, metric: str | RatioMetric) -> np.ndarray:
    """The binomial variance ``r(1−r)/Σy`` that treats every impression (or click) as an
    independent trial — what today's rule and Kayenta-style checks use. It understates the
    variance when users contribute many correlated trials; kept to show exactly that."""
    metric = metric_named(metric) if isinstance(metric, str) else metric
    i, j = metric.indices
    sx, sy = moments.sums[..., i], moments.sums[..., j]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sx / sy
        return np.where(sy > 0, ratio * (1 - ratio) / sy, np.nan)
