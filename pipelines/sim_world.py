"""Hidden ground truth of the simulated shop, shared by the logged data and the online A/B.

Users have category affinities (partly explained by their demographics), a latent taste vector
that rotates slowly over the days (drift), a heavy-tailed activity level, a click bias, a price
sensitivity and a primary device. Items have a category, a brand, a price, a latent vector, a
quality and a popularity; some are created during the simulated days (cold start).

click logit = intercept + category affinity + taste . item + quality + user bias
              - position_bias * log(1 + position) + device + surface + time of day + noise
conversion logit (given a click) = intercept + taste . item + affinity / 2 + brand + quality
              - price sensitivity * log(price / category base price) + device + surface + noise

Ids are 1-based (``user_id = index + 1``, ``item_id = index + 1``); 0 is never a valid id, and
item ids grow with ``created_ts``. Times inside the world are int64 microseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from pipelines.sim_config import SimulationConfig
from pipelines.sim_text import CATEGORIES, STYLE_WORDS, brand_names, item_titles

DEVICES = ("mobile", "desktop", "tablet")
SURFACES = ("home", "search", "product_page")
AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("female", "male", "other")
REGIONS = ("us-west", "us-east", "brazil", "uk", "eu-central", "gulf", "japan")
REGION_UTC_OFFSET_HOURS = np.array([-8, -5, -3, 0, 1, 4, 9])

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR

_DEVICE_CLICK = np.array([0.0, -0.15, 0.1])
_DEVICE_CONVERSION = np.array([-0.1, 0.25, 0.0])
_SURFACE_CLICK = np.array([-0.2, 0.35, 0.1])
_SURFACE_CONVERSION = np.array([-0.1, 0.3, 0.2])
_SURFACE_SHARE = np.array([0.5, 0.3, 0.2])
_DEVICE_SHARE = np.array([0.6, 0.3, 0.1])
_PRIMARY_DEVICE_SHARE = 0.8
_LATENT_STRENGTH = 1.8
_LOGIT_NOISE = 0.3
_DWELL_MEDIAN_S = 25.0
_CALIBRATION_REQUESTS = 8_192
_ORDER_NOISE = 1.0
_DEDUPE_ROUNDS = 8
_MAX_ACTIVITY = 100.0  # heaviest user at most 100x the lightest, so no single user dominates

# Independent random streams, so that e.g. changing the number of impressions keeps the world.
STREAM_USERS, STREAM_ITEMS, STREAM_CALIBRATION, STREAM_REQUESTS, STREAM_BLOCKS = range(5)
STREAM_RESPOND = 5


def stream(seed: int, *key: int) -> np.random.Generator:
    """A generator for one named stream of a seeded simulation."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _diurnal_weights() -> np.ndarray:
    """Share of requests per local hour: quiet nights, a lunch peak and an evening peak."""
    hours = np.arange(24)
    weights = 0.15 + np.exp(-((hours - 12.5) ** 2) / 8.0) + 1.3 * np.exp(-((hours - 20.5) ** 2) / 6.0)
    return weights / weights.sum()


def to_micros(ts: datetime, field: str = "ts") -> int:
    """Microseconds since the epoch of an aware datetime; naive datetimes are rejected."""
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise ValueError(f"{field} must be a timezone-aware datetime; got {ts!r}")
    delta = ts.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc)


@dataclass(frozen=True)
class SlateOutcome:
    """What one user did with one shown slate, per position."""

    item_ids: np.ndarray  # int64
    click: np.ndarray  # int8 0/1
    conversion: np.ndarray  # int8 0/1, only where click
    dwell: np.ndarray  # float32 seconds, 0 where no click


@dataclass(frozen=True)
class Requests:
    """A batch of ranking requests (index arrays into the world's tables)."""

    user_idx: np.ndarray
    ts_us: np.ndarray
    device: np.ndarray
    surface: np.ndarray

    def __len__(self) -> int:
        return len(self.user_idx)

    def take(self, index: np.ndarray | slice) -> Requests:
        return Requests(self.user_idx[index], self.ts_us[index], self.device[index], self.surface[index])


@dataclass(frozen=True)
class Impressions:
    """Flat arrays, one entry per shown (request, position)."""

    user_idx: np.ndarray
    item_idx: np.ndarray
    position: np.ndarray
    ts_us: np.ndarray
    device: np.ndarray
    surface: np.ndarray

    def __len__(self) -> int:
        return len(self.user_idx)

    def head(self, n: int) -> Impressions:
        return Impressions(
            *(
                getattr(self, field)[:n]
                for field in ("user_idx", "item_idx", "position", "ts_us", "device", "surface")
            )
        )


@dataclass(frozen=True)
class Outcomes:
    """What the users did with a batch of impressions, aligned with it."""

    click: np.ndarray  # int8 0/1
    conversion: np.ndarray  # int8 0/1, only where click
    dwell: np.ndarray  # float32 seconds, 0 where no click


class World:
    """The hidden ground truth; rebuilt identically from the same config (seeded)."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.start_us = to_micros(config.start_time)
        self._build_users(stream(config.seed, STREAM_USERS))
        self._build_items(stream(config.seed, STREAM_ITEMS))
        self.click_intercept, self.conversion_intercept = self._calibrate(
            stream(config.seed, STREAM_CALIBRATION)
        )
        self._default_rng = stream(config.seed, STREAM_RESPOND)

    @classmethod
    def from_config(cls, config: SimulationConfig) -> World:
        return cls(config)

    # ----------------------------------------------------------------- construction
    def _build_users(self, rng: np.random.Generator) -> None:
        cfg = self.config
        n, c, d = cfg.num_users, cfg.num_categories, cfg.latent_dim
        self.age = rng.choice(len(AGE_BUCKETS), n, p=[0.15, 0.3, 0.25, 0.17, 0.13])
        self.gender = rng.choice(len(GENDERS), n, p=[0.48, 0.48, 0.04])
        self.region = rng.choice(len(REGIONS), n, p=[0.15, 0.25, 0.1, 0.15, 0.15, 0.05, 0.15])
        demographic_affinity = (
            rng.normal(0, 0.6, (len(AGE_BUCKETS), c))[self.age]
            + rng.normal(0, 0.6, (len(GENDERS), c))[self.gender]
            + rng.normal(0, 0.3, (len(REGIONS), c))[self.region]
        )
        self.category_affinity = demographic_affinity + rng.normal(0, 0.8, (n, c))
        taste = _unit_rows(rng.normal(size=(n, d)))
        turn = rng.normal(size=(n, d))
        turn = _unit_rows(turn - np.sum(turn * taste, axis=1, keepdims=True) * taste)
        self.taste_start = _LATENT_STRENGTH * taste
        self.taste_turn = _LATENT_STRENGTH * turn
        self.drift_speed = cfg.drift_radians_per_day * rng.uniform(0.5, 1.5, n)
        self.activity = np.minimum(rng.pareto(cfg.activity_tail, n) + 1.0, _MAX_ACTIVITY)
        self.click_bias = rng.normal(0, 0.4, n) + 0.15 * (
            np.log(self.activity) - np.log(self.activity).mean()
        )
        young = self.age <= 1
        self.price_sensitivity = np.clip(rng.normal(0.6 + 0.3 * young, 0.25), 0.05, None)
        self.primary_device = rng.choice(len(DEVICES), n, p=_DEVICE_SHARE)
        self.signup_us = self.start_us - rng.integers(US_PER_DAY, 730 * US_PER_DAY, n)
        self._user_cum_activity = np.cumsum(self.activity)

    def _build_items(self, rng: np.random.Generator) -> None:
        cfg = self.config
        m, c, b, d = cfg.num_items, cfg.num_categories, cfg.brands_per_category, cfg.latent_dim
        num_existing = max(cfg.slate_size, round(m * (1.0 - cfg.cold_start_fraction)))
        created = np.concatenate(
            [
                self.start_us - rng.integers(US_PER_DAY, 365 * US_PER_DAY, num_existing),
                self.start_us + rng.integers(0, cfg.days * US_PER_DAY, m - num_existing),
            ]
        )
        self.created_us = np.sort(created)  # item index order is creation order
        category_share = 1.0 / np.arange(1, c + 1) ** 0.6
        self.category = rng.choice(c, m, p=category_share / category_share.sum())
        brand_share = 1.0 / np.arange(1, b + 1) ** 0.8
        self.brand = self.category * b + rng.choice(b, m, p=brand_share / brand_share.sum())
        self.brand_names = brand_names(c * b, rng)
        brand_quality = rng.normal(0, 0.35, c * b)
        brand_premium = rng.normal(0, 0.5, c * b)
        self.brand_conversion = rng.normal(0, 0.4, c * b)
        self.quality = brand_quality[self.brand] + rng.normal(0, 0.45, m)
        self.category_base_price = np.array([CATEGORIES[k].base_price for k in range(c)])
        price = self.category_base_price[self.category] * np.exp(
            0.4 * brand_premium[self.brand] + 0.25 * self.quality + rng.normal(0, 0.35, m)
        )
        self.price = np.maximum(np.round(price, 2), 0.99).astype(np.float32)
        centroids = _unit_rows(rng.normal(size=(c, d)))
        self.item_vector = _unit_rows(centroids[self.category] + rng.normal(size=(m, d)) / np.sqrt(d))
        self.log_popularity = 1.2 * self.quality + rng.normal(0, 0.8, m)
        self._cum_popularity = np.cumsum(np.exp(self.log_popularity))
        self.titles = item_titles(
            categories=self.category,
            brand_of_item=[self.brand_names[k] for k in self.brand],
            prices=self.price.astype(np.float64),
            quality=self.quality,
            latent=self.item_vector,
            style_directions=_unit_rows(rng.normal(size=(len(STYLE_WORDS), d))),
            rng=rng,
        )

    def _calibrate(self, rng: np.random.Generator) -> tuple[float, float]:
        """Intercepts at which the logging policy's impressions hit the target CTR and CVR."""
        requests = self.sample_requests(_CALIBRATION_REQUESTS, rng)
        imp = self.expand(requests, self.logging_policy_slates(requests.ts_us, rng))
        noise = _LOGIT_NOISE * rng.normal(size=(2, len(imp)))
        taste = self._taste_match(imp)
        click_logit = noise[0] + self._click_logit(imp, taste)
        conversion_logit = noise[1] + self._conversion_logit(imp, taste)
        click_intercept = _solve_intercept(click_logit, self.config.target_ctr)
        click_weight = _sigmoid(click_intercept + click_logit)
        conversion_intercept = _solve_intercept(conversion_logit, self.config.target_cvr, click_weight)
        return click_intercept, conversion_intercept

    # ----------------------------------------------------------------- ground truth
    def local_hour(self, user_idx: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
        """Hour of day (0-23) at the user's region."""
        offset = REGION_UTC_OFFSET_HOURS[self.region[user_idx]] * US_PER_HOUR
        return ((ts_us + offset) // US_PER_HOUR) % 24

    def _taste_at(self, user_idx: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
        angle = self.drift_speed[user_idx] * ((ts_us - self.start_us) / US_PER_DAY)
        return (
            np.cos(angle)[:, None] * self.taste_start[user_idx]
            + np.sin(angle)[:, None] * self.taste_turn[user_idx]
        )

    def _category_affinity(self, imp: Impressions) -> np.ndarray:
        return self.category_affinity[imp.user_idx, self.category[imp.item_idx]]

    def _taste_match(self, imp: Impressions) -> np.ndarray:
        taste = self._taste_at(imp.user_idx, imp.ts_us)
        return np.sum(taste * self.item_vector[imp.item_idx], axis=1)

    def _click_logit(self, imp: Impressions, taste: np.ndarray) -> np.ndarray:
        """Click logit without intercept and noise."""
        hour = self.local_hour(imp.user_idx, imp.ts_us)
        return (
            self._category_affinity(imp)
            + taste
            + self.quality[imp.item_idx]
            + self.click_bias[imp.user_idx]
            - self.config.position_bias * np.log1p(imp.position)
            + _DEVICE_CLICK[imp.device]
            + _SURFACE_CLICK[imp.surface]
            + 0.15 * np.cos(2 * np.pi * (hour - 21) / 24)
        )

    def _conversion_logit(self, imp: Impressions, taste: np.ndarray) -> np.ndarray:
        """Conversion-given-click logit without intercept and noise."""
        item = imp.item_idx
        relative_price = self.price[item] / self.category_base_price[self.category[item]]
        return (
            taste
            + 0.5 * self._category_affinity(imp)
            + self.brand_conversion[self.brand[item]]
            + 0.4 * self.quality[item]
            - self.price_sensitivity[imp.user_idx] * np.log(relative_price)
            + _DEVICE_CONVERSION[imp.device]
            + _SURFACE_CONVERSION[imp.surface]
        )

    def click_probability(self, imp: Impressions) -> np.ndarray:
        """Noise-free click probability of each impression (what an oracle ranker knows)."""
        return _sigmoid(self.click_intercept + self._click_logit(imp, self._taste_match(imp)))

    def conversion_probability(self, imp: Impressions) -> np.ndarray:
        """Noise-free conversion probability of each impression given a click (its twin)."""
        return _sigmoid(self.conversion_intercept + self._conversion_logit(imp, self._taste_match(imp)))

    def draw_outcomes(self, imp: Impressions, rng: np.random.Generator) -> Outcomes:
        """Sample click, conversion (only after a click) and dwell for each impression."""
        n = len(imp)
        noise = _LOGIT_NOISE * rng.normal(size=(2, n))
        uniform = rng.random((2, n))
        taste = self._taste_match(imp)
        click_p = _sigmoid(self.click_intercept + noise[0] + self._click_logit(imp, taste))
        click = uniform[0] < click_p
        conversion_logit = self._conversion_logit(imp, taste)
        conversion_p = _sigmoid(self.conversion_intercept + noise[1] + conversion_logit)
        conversion = click & (uniform[1] < conversion_p)
        dwell = _DWELL_MEDIAN_S * np.exp(
            0.3 * taste + 0.3 * self.quality[imp.item_idx] + rng.normal(0, 0.6, n)
        )
        dwell = np.where(click, dwell * np.where(conversion, 1.8, 1.0), 0.0)
        return Outcomes(
            click=click.astype(np.int8),
            conversion=conversion.astype(np.int8),
            dwell=dwell.astype(np.float32),
        )

    # ----------------------------------------------------------------- traffic
    def sample_requests(self, n: int, rng: np.random.Generator) -> Requests:
        """``n`` requests: heavy-tailed users, uniform days, diurnal local hours."""
        cum = self._user_cum_activity
        user_idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
        local_us = (
            rng.integers(0, self.config.days, n) * US_PER_DAY
            + rng.choice(24, n, p=_diurnal_weights()) * US_PER_HOUR
            + rng.integers(0, US_PER_HOUR, n)
        )
        offset = REGION_UTC_OFFSET_HOURS[self.region[user_idx]] * US_PER_HOUR
        # wrapping by whole days keeps the local hour while staying inside the window
        ts_us = self.start_us + (local_us - offset) % (self.config.days * US_PER_DAY)
        device = np.where(
            rng.random(n) < _PRIMARY_DEVICE_SHARE,
            self.primary_device[user_idx],
            rng.choice(len(DEVICES), n, p=_DEVICE_SHARE),
        )
        surface = rng.choice(len(SURFACES), n, p=_SURFACE_SHARE)
        return Requests(user_idx, ts_us, device, surface)

    def available_items(self, ts_us: np.ndarray) -> np.ndarray:
        """Number of items created at or before each time (they are the lowest indices)."""
        return np.searchsorted(self.created_us, ts_us, side="right")

    def logging_policy_slates(self, ts_us: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(requests, slate_size) item indices: popularity-biased plus uniform exploration,
        distinct within a slate, only items that exist at the request time, ordered by noisy
        popularity (position 0 first)."""
        size = self.config.slate_size
        available = self.available_items(ts_us)[:, None]
        slates = np.sort(self._draw_slots(available, (len(ts_us), size), rng), axis=1)
        for attempt in range(_DEDUPE_ROUNDS + 1):
            repeated = np.zeros_like(slates, dtype=bool)
            repeated[:, 1:] = slates[:, 1:] == slates[:, :-1]
            rows = np.flatnonzero(repeated.any(axis=1))
            if len(rows) == 0:
                break
            if attempt < _DEDUPE_ROUNDS:  # redraw only the repeats, uniformly
                fresh = self._draw_slots(available[rows], (len(rows), size), rng, uniform=True)
                slates[rows] = np.sort(np.where(repeated[rows], fresh, slates[rows]), axis=1)
            else:  # nearly full catalogues: distinct items per remaining row
                for row in rows:
                    slates[row] = np.sort(rng.permutation(available[row, 0])[:size])
        score = self.log_popularity[slates] + _ORDER_NOISE * rng.gumbel(size=slates.shape)
        return np.take_along_axis(slates, np.argsort(-score, axis=1, kind="stable"), axis=1)

    def _draw_slots(self, available, shape, rng, uniform: bool = False) -> np.ndarray:
        uniform_pick = np.minimum((rng.random(shape) * available).astype(np.int64), available - 1)
        if uniform:
            return uniform_pick
        popular_pick = np.searchsorted(
            self._cum_popularity, rng.random(shape) * self._cum_popularity[available - 1], "right"
        )
        return np.where(rng.random(shape) < self.config.exploration, uniform_pick, popular_pick)

    def expand(self, requests: Requests, slates: np.ndarray) -> Impressions:
        """Flatten requests x slate positions into per-impression arrays ."""
        size = slates.shape[1]
        return Impressions(
            user_idx=np.repeat(requests.user_idx, size),
            item_idx=slates.reshape(-1),
            position=np.tile(np.arange(size), len(requests)),
            ts_us=np.repeat(requests.ts_us, size),
            device=np.repeat(requests.device, size),
            surface=np.repeat(requests.surface, size),
        )

    # ----------------------------------------------------------------- online API
    def _user_index(self, user_id: int) -> int:
        if isinstance(user_id, bool) or not isinstance(user_id, (int, np.integer)):
            raise ValueError(f"user_id must be an integer; got {user_id!r}")
        if not 1 <= user_id <= self.config.num_users:
            raise ValueError(
                f"user_id {user_id} is unknown: this world has user ids 1..{self.config.num_users}"
            )
        return int(user_id) - 1

    def respond(
        self,
        user_id: int,
        ranked_item_ids: Sequence[int],
        ts: datetime,
        device: str = "mobile",
        surface: str = "home",
        rng: np.random.Generator | None = None,
    ) -> SlateOutcome:
        """What the user does when shown ``ranked_item_ids`` (position 0 first) at ``ts``.

        Unknown item ids are never clicked. Without ``rng`` the world's own seeded stream is
        used, so a sequence of calls is reproducible for a given config.
        """
        user = self._user_index(user_id)
        ts_us = to_micros(ts)
        device_idx = _lookup("device", device, DEVICES)
        surface_idx = _lookup("surface", surface, SURFACES)
        item_ids = np.asarray(ranked_item_ids, dtype=np.int64).reshape(-1)
        known = np.flatnonzero((item_ids >= 1) & (item_ids <= self.config.num_items))
        n = len(known)
        shown = Impressions(
            user_idx=np.full(n, user),
            item_idx=item_ids[known] - 1,
            position=known,
            ts_us=np.full(n, ts_us),
            device=np.full(n, device_idx),
            surface=np.full(n, surface_idx),
        )
        drawn = self.draw_outcomes(shown, self._default_rng if rng is None else rng)
        click = np.zeros(len(item_ids), np.int8)
        conversion = np.zeros(len(item_ids), np.int8)
        dwell = np.zeros(len(item_ids), np.float32)
        click[known], conversion[known], dwell[known] = drawn.click, drawn.conversion, drawn.dwell
        return SlateOutcome(item_ids, click, conversion, dwell)

    def sample_request(self, rng: np.random.Generator) -> tuple[int, datetime, str, str]:
        """One request as the logs have them: (user_id, ts, device, surface)."""
        request = self.sample_requests(1, rng)
        return (
            int(request.user_idx[0]) + 1,
            from_micros(int(request.ts_us[0])),
            DEVICES[request.device[0]],
            SURFACES[request.surface[0]],
        )

    def candidate_items(self, user_id: int, n: int, rng: np.random.Generator, ts: datetime) -> np.ndarray:
        """Up to ``n`` distinct item ids that exist at ``ts``, in random order: about half
        drawn by popularity, a quarter from the user's three favourite categories, the rest
        uniformly. Fewer than ``n`` only when fewer items exist at ``ts``."""
        user = self._user_index(user_id)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        available = int(self.available_items(np.array([to_micros(ts)]))[0])
        n = min(int(n), available)
        popularity = np.exp(self.log_popularity[:available])
        chosen = rng.choice(available, n // 2, replace=False, p=popularity / popularity.sum())
        taken = np.zeros(available, bool)
        taken[chosen] = True
        favourites = np.argsort(-self.category_affinity[user])[:3]
        liked = np.flatnonzero(np.isin(self.category[:available], favourites) & ~taken)
        liked = rng.choice(liked, min(n // 4, len(liked)), replace=False)
        taken[liked] = True
        rest = rng.choice(np.flatnonzero(~taken), n - len(chosen) - len(liked), replace=False)
        picked = np.concatenate([chosen, liked, rest])
        return rng.permutation(picked).astype(np.int64) + 1


def _lookup(field: str, value: str, allowed: tuple[str, ...]) -> int:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}; got {value!r}")
    return allowed.index(value)


def _solve_intercept(logit: np.ndarray, target: float, weight: np.ndarray | None = None) -> float:
    """The b with weighted mean sigmoid(b + logit) == target (bisection; monotone in b)."""
    weight = np.ones_like(logit) if weight is None else weight
    low, high = -30.0, 30.0
    for _ in range(60):
        mid = (low + high) / 2
        rate = np.sum(weight * _sigmoid(mid + logit)) / np.sum(weight)
        low, high = (mid, high) if rate < target else (low, mid)
    return (low + high) / 2
