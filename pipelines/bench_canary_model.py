"""A vectorised model of the simulator's users, fast enough for thousands of canary runs.

What comes from the simulator's ground truth (:class:`pipelines.sim_world.World`):

- each user's **request rate**: the World's activity (heavy-tailed, the shares ``sample_requests``
  draws users with);
- each user's **click probability per impression** ``p_u`` and **conversion probability per
  click** ``q_u``: the World's noise-free click and conversion probabilities averaged over the
  logging policy's slates for that user (``q_u`` weighted by the click probability). A few
  requests per user leave item-sampling noise in these means; it is removed by shrinking each
  user's mean towards the population so that the spread across users matches the World's
  between-user spread (within-user variance measured on the same impressions).

What is modelled: users arrive as independent Poisson processes at their rates; a request shows a
slate of ``slate_size`` items; clicks ~ Binomial(slate, p_u), conversions ~ Binomial(clicks, q_u).
Each run splits users between the arms with an independent Bernoulli draw (what a fresh hash salt
does — ``serving.assignment`` points are uniform). A treatment multiplies the canary users' p_u
(CTR) or q_u (CVR).

``simulate_looks`` returns, per run and look, each arm's :class:`serving.analysis.UserMoments`,
so the benchmark runs the production analysis code on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.sim_world import Requests, World
from serving.analysis import UserMoments

_CHUNK_IMPRESSIONS = 1_000_000
# Per-request quantities summed per (run, arm, look): new users, Σ(I, C, V), Σ of products.
_PRODUCTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


@dataclass(frozen=True)
class UserModel:
    rate: np.ndarray  # share of requests per user (sums to 1)
    click: np.ndarray  # click probability per impression
    conversion: np.ndarray  # conversion probability per click
    slate_size: int

    @property
    def ctr(self) -> float:
        return float(np.sum(self.rate * self.click))

    @property
    def cvr(self) -> float:
        return float(np.sum(self.rate * self.click * self.conversion) / self.ctr)

    def with_rates(self, ctr: float, cvr: float) -> UserModel:
        """Rescaled so that the traffic-weighted CTR and CVR are exactly ``ctr`` and ``cvr``."""
        click = np.clip(self.click * ctr / self.ctr, 0.0, 1.0)
        scaled = UserModel(self.rate, click, self.conversion, self.slate_size)
        conversion = np.clip(self.conversion * cvr / scaled.cvr, 0.0, 1.0)
        return UserModel(self.rate, click, conversion, self.slate_size)

    def subset(self, users: int, rng: np.random.Generator) -> UserModel:
        """A random ``users`` of the population (rates renormalised): fewer users, more
        impressions each for the same traffic."""
        keep = rng.choice(len(self.rate), users, replace=False)
        rate = self.rate[keep] / self.rate[keep].sum()
        return UserModel(rate, self.click[keep], self.conversion[keep], self.slate_size)


def user_model_from_world(world: World, requests_per_user: int, rng: np.random.Generator) -> UserModel:
    """Measure every user's rates from the World (see the module docstring)."""
    num_users = world.config.num_users
    sums = np.zeros((5, num_users))  # impressions, Σp, Σp², Σp·q, Σ(p·q)²
    users_per_chunk = max(1, _CHUNK_IMPRESSIONS // (requests_per_user * world.config.slate_size))
    for first in range(0, num_users, users_per_chunk):
        user_idx = np.repeat(np.arange(first, min(num_users, first + users_per_chunk)), requests_per_user)
        context = world.sample_requests(len(user_idx), rng)  # times, devices, surfaces
        requests = Requests(user_idx, context.ts_us, context.device, context.surface)
        shown = world.expand(requests, world.logging_policy_slates(requests.ts_us, rng))
        click = world.click_probability(shown)
        both = click * world.conversion_probability(shown)
        for row, values in enumerate((np.ones_like(click), click, click**2, both, both**2)):
            sums[row] += np.bincount(shown.user_idx, values, num_users)
    impressions, click, click_sq, both, both_sq = sums
    click_mean = _between_user_means(click, click_sq, impressions)
    both_mean = _between_user_means(both, both_sq, impressions)
    activity = world.activity
    return UserModel(
        rate=activity / activity.sum(),
        click=click_mean,
        conversion=np.clip(both_mean / click_mean, 0.0, 1.0),
        slate_size=world.config.slate_size,
    )


def _between_user_means(total: np.ndarray, total_sq: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Users' means shrunk towards the population so that their variance across users is the
    between-user variance (the sample means' variance minus the within-user sampling part)."""
    means = total / count
    within = np.mean((total_sq / count - means**2) / (count - 1))  # Var(mean) from item sampling
    grand = means.mean()
    observed = means.var()
    keep = np.sqrt(max(observed - within, 0.0) / observed)
    return np.clip(grand + keep * (means - grand), 1e-6, 1.0)


@dataclass(frozen=True)
class Scenario:
    """One kind of canary: the true relative changes, how long it runs and how often we look."""

    name: str
    ctr_lift: float = 0.0
    cvr_lift: float = 0.0
    horizon_impressions: int = 1_000_000
    looks: int = 200
    canary_share: float = 0.5


@dataclass(frozen=True)
class LookSeries:
    """Per run (rows) and look (columns): impressions so far and each arm's user moments."""

    impressions: np.ndarray
    primary: UserMoments
    canary: UserMoments


def simulate_looks(model: UserModel, scenario: Scenario, runs: int, rng: np.random.Generator) -> LookSeries:
    """``runs`` independent canaries of ``scenario``, analysed at ``scenario.looks`` equally
    spaced times up to ``horizon_impressions`` (expected) impressions."""
    expected_requests = scenario.horizon_impressions / model.slate_size
    runs_per_chunk = max(1, int(4 * _CHUNK_IMPRESSIONS / model.slate_size // expected_requests))
    parts = []
    for first in range(0, runs, runs_per_chunk):
        chunk = min(runs_per_chunk, runs - first)
        log = _draw_requests(model, scenario, chunk, rng)
        parts.append(moments_by_look(log, chunk * 2, scenario.looks).reshape(chunk, 2, scenario.looks, -1))
    totals = np.concatenate(parts, axis=0)  # (runs, arm, look, quantity)
    primary, canary = to_moments(totals[:, 0]), to_moments(totals[:, 1])
    return LookSeries(primary.sums[..., 0] + canary.sums[..., 0], primary, canary)


@dataclass(frozen=True)
class RequestLog:
    """Requests ordered by unit (a user in a run), then by look interval."""

    unit: np.ndarray  # a unit's requests are contiguous
    group: np.ndarray  # run * 2 + arm (0 primary, 1 canary)
    interval: np.ndarray  # look interval the request falls in
    counts: np.ndarray  # (requests, 3): impressions, clicks, conversions


def _draw_requests(model: UserModel, scenario: Scenario, runs: int, rng: np.random.Generator) -> RequestLog:
    num_users, looks, slate = len(model.rate), scenario.looks, model.slate_size
    expected_requests = scenario.horizon_impressions / slate
    per_user = rng.poisson(expected_requests * model.rate, size=(runs, num_users))
    canary = rng.random((runs, num_users)) < scenario.canary_share
    unit = np.repeat(np.arange(runs * num_users), per_user.reshape(-1))
    # each request falls in a uniformly random look interval; sorting orders a unit's requests
    key = np.sort(unit * looks + rng.integers(0, looks, len(unit)))
    unit, interval = key // looks, key % looks
    user, in_canary = unit % num_users, canary.reshape(-1)[unit]
    click_p = model.click[user] * np.where(in_canary, 1.0 + scenario.ctr_lift, 1.0)
    conversion_p = model.conversion[user] * np.where(in_canary, 1.0 + scenario.cvr_lift, 1.0)
    clicks = rng.binomial(slate, np.clip(click_p, 0.0, 1.0))
    conversions = rng.binomial(clicks, np.clip(conversion_p, 0.0, 1.0))
    counts = np.stack([np.full(len(unit), slate), clicks, conversions], axis=1)
    return RequestLog(unit, (unit // num_users) * 2 + in_canary, interval, counts)


def moments_by_look(log: RequestLog, groups: int, looks: int) -> np.ndarray:
    """(groups, looks, 10): per group and look, the users seen so far, Σ of their (impressions,
    clicks, conversions) and Σ of their pairwise products (``_PRODUCTS`` order), cumulative.

    A user's contribution to Σx_i·x_j changes by ``b_i d_j + d_i b_j + d_i d_j`` when a request
    adds ``d`` to their totals ``b`` so far, so summing these per look interval and accumulating
    gives every look's moments in one pass."""
    first = np.flatnonzero(np.r_[True, log.unit[1:] != log.unit[:-1]])
    length = np.diff(np.r_[first, len(log.unit)])
    step = log.counts.astype(np.float64)
    running = np.cumsum(step, axis=0) - step
    before = running - np.repeat(running[first], length, axis=0)  # the unit's totals so far
    columns = [np.arange(len(log.unit)) == np.repeat(first, length), step[:, 0], step[:, 1], step[:, 2]]
    for i, j in _PRODUCTS:
        columns.append(before[:, i] * step[:, j] + step[:, i] * before[:, j] + step[:, i] * step[:, j])
    bucket = log.group * looks + log.interval
    per_interval = np.stack([np.bincount(bucket, c, groups * looks) for c in columns], axis=-1)
    return np.cumsum(per_interval.reshape(groups, looks, len(columns)), axis=1)


def to_moments(totals: np.ndarray) -> UserMoments:
    """``moments_by_look`` quantities as :class:`UserMoments` (batched over leading axes)."""
    products = np.zeros(totals.shape[:-1] + (3, 3))
    for k, (i, j) in enumerate(_PRODUCTS):
        products[..., i, j] = products[..., j, i] = totals[..., 4 + k]
    return UserMoments(totals[..., 0], totals[..., 1:4], products)


def expected_users(model: UserModel, impressions: float) -> float:
    """Users expected to have made at least one request after ``impressions`` impressions."""
    requests = impressions / model.slate_size
    return float(np.sum(-np.expm1(-requests * model.rate)))
