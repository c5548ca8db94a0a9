"""The hidden ground truth: position bias, drift, cold start, heavy users, and the online API."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from pipelines.sim_text import CATEGORIES
from pipelines.sim_world import DEVICES, SURFACES, US_PER_DAY, Impressions, World


def _impressions(events: pd.DataFrame, ts_us: np.ndarray | None = None) -> Impressions:
    """The logged events as the world's index arrays (optionally at other times)."""
    logged_ts = events["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    return Impressions(
        user_idx=events["user_id"].to_numpy() - 1,
        item_idx=events["item_id"].to_numpy() - 1,
        position=events["position"].to_numpy(),
        ts_us=logged_ts if ts_us is None else ts_us,
        device=pd.Categorical(events["device"], categories=DEVICES).codes,
        surface=pd.Categorical(events["surface"], categories=SURFACES).codes,
    )


def _log_likelihood(click: np.ndarray, probability: np.ndarray) -> float:
    return float(np.mean(click * np.log(probability) + (1 - click) * np.log1p(-probability)))


def test_position_bias_is_visible_in_the_logged_click_rates(small_sim):
    ctr = small_sim.events.groupby("position")["click"].mean().to_numpy()
    assert ctr[0] > 2 * ctr[-1]
    assert ctr[0] > ctr[1] > ctr[2] > ctr[3]


def test_the_same_impression_is_more_likely_clicked_at_the_top(small_sim):
    imp = _impressions(small_sim.events.iloc[:5_000])
    top = dataclasses.replace(imp, position=np.zeros_like(imp.position))
    bottom = dataclasses.replace(imp, position=np.full_like(imp.position, 9))
    world = small_sim.world
    assert np.all(world.click_probability(top) > world.click_probability(bottom))


def test_user_tastes_drift_so_late_clicks_fit_the_late_truth_better(small_sim):
    world, events = small_sim.world, small_sim.events
    late = events[events["ts"] >= events["ts"].min() + pd.Timedelta(days=10)]
    imp = _impressions(late)
    same_hour_on_day_one = world.start_us + (imp.ts_us - world.start_us) % US_PER_DAY
    then = world.click_probability(dataclasses.replace(imp, ts_us=same_hour_on_day_one))
    now = world.click_probability(imp)
    click = late["click"].to_numpy()
    assert _log_likelihood(click, now) > _log_likelihood(click, then) + 0.002


def test_without_drift_the_truth_is_the_same_every_day(small_sim):
    world = World.from_config(dataclasses.replace(small_sim.config, drift_radians_per_day=0.0))
    imp = _impressions(small_sim.events.iloc[:5_000])
    a_week_later = dataclasses.replace(imp, ts_us=imp.ts_us + 7 * US_PER_DAY)
    np.testing.assert_allclose(
        world.click_probability(imp), world.click_probability(a_week_later), rtol=1e-12
    )


def test_cold_start_items_appear_only_after_they_are_created(small_sim):
    items, events = small_sim.items, small_sim.events
    start = events["ts"].min()
    cold = items[items["created_ts"] > start]
    assert len(cold) == small_sim.summary.num_cold_start_items >= 0.1 * len(items)
    shown = events.merge(cold, on="item_id")
    assert (shown["ts"] >= shown["created_ts"]).all()
    assert shown["item_id"].nunique() >= 0.5 * len(cold)


def test_user_activity_is_heavy_tailed(small_sim):
    per_user = small_sim.events.groupby("user_id").size().sort_values(ascending=False)
    top_percent = per_user.iloc[: max(1, len(per_user) // 100)].sum()
    assert top_percent >= 0.08 * len(small_sim.events)
    assert per_user.max() >= 20 * per_user.median()


def test_requests_follow_a_diurnal_pattern_in_local_time(small_sim):
    per_hour = small_sim.events.groupby("hour")["request_id"].nunique()
    assert per_hour[20] > 3 * per_hour[4]


def test_titles_name_the_brand_and_a_noun_of_the_category(small_sim):
    nouns = {c.name: c.nouns for c in CATEGORIES}
    for item in small_sim.items.itertuples():
        assert item.title.endswith(f" by {item.brand}")
        assert any(noun in item.title for noun in nouns[item.category])


def test_price_words_in_titles_follow_the_price_within_a_category(small_sim):
    items = small_sim.items.assign(
        tier=small_sim.items["title"].str.extract(r"\b(budget|luxury)\b", expand=False)
    )
    relative = items["price"] / items.groupby("category")["price"].transform("median")
    by_tier = relative.groupby(items["tier"]).mean()
    assert by_tier["luxury"] > 1.5 * by_tier["budget"]


def test_respond_matches_the_click_and_conversion_rates_of_the_logged_slates(small_sim):
    events = small_sim.events[small_sim.events["request_id"] < 3_000]
    rng = np.random.default_rng(0)
    clicks, conversions = 0, 0
    for _, slate in events.groupby("request_id"):
        first = slate.iloc[0]
        outcome = small_sim.world.respond(
            int(first["user_id"]),
            slate["item_id"].tolist(),
            first["ts"].to_pydatetime(),
            device=first["device"],
            surface=first["surface"],
            rng=rng,
        )
        clicks += int(outcome.click.sum())
        conversions += int(outcome.conversion.sum())
    n = len(events)
    for responded, logged in (
        (clicks / n, events["click"].mean()),
        (conversions / n, events["conversion"].mean()),
    ):
        four_sigma = 4 * np.sqrt(2 * logged * (1 - logged) / n)
        assert abs(responded - logged) < four_sigma


def test_respond_never_clicks_unknown_items(small_sim):
    world, rng = small_sim.world, np.random.default_rng(1)
    slate = [0, -3, 10**9, small_sim.config.num_items + 1]
    ts = datetime(2026, 1, 5, 20, tzinfo=timezone.utc)
    outcomes = [world.respond(7, slate, ts, surface="search", rng=rng) for _ in range(300)]
    assert sum(int(o.click.sum() + o.conversion.sum()) for o in outcomes) == 0
    assert all(o.dwell.sum() == 0 and list(o.item_ids) == slate for o in outcomes)


def test_respond_gives_one_outcome_per_position_with_conversions_only_after_clicks(small_sim):
    world, rng = small_sim.world, np.random.default_rng(2)
    ts = datetime(2026, 1, 3, 12, tzinfo=timezone.utc)
    outcomes = [world.respond(11, list(range(1, 51)), ts, rng=rng) for _ in range(200)]
    click = np.stack([o.click for o in outcomes])
    conversion = np.stack([o.conversion for o in outcomes])
    assert click.shape == (200, 50) and click.dtype == np.int8
    assert click.sum() > 0 and not np.any(conversion > click)


def test_respond_without_rng_is_reproducible_per_config(small_sim):
    ts = datetime(2026, 1, 3, 12, tzinfo=timezone.utc)

    def replay() -> list[list[int]]:
        world = World.from_config(small_sim.config)
        return [world.respond(3, range(1, 101), ts).click.tolist() for _ in range(20)]

    assert replay() == replay()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w, ts: w.respond(0, [1], ts), r"user_id 0 is unknown: .* user ids 1\.\.2000"),
        (lambda w, ts: w.respond(1, [1], ts, device="tv"), r"device must be one of \['mobile'"),
        (lambda w, ts: w.respond(1, [1], ts, surface="cart"), r"surface must be one of"),
        (lambda w, ts: w.respond(1, [1], ts.replace(tzinfo=None)), r"ts must be .*timezone"),
        (lambda w, ts: w.candidate_items(1, 0, np.random.default_rng(), ts), r"n must be"),
    ],
)
def test_bad_online_requests_name_the_field(small_sim, call, message):
    with pytest.raises(ValueError, match=message):
        call(small_sim.world, datetime(2026, 1, 3, tzinfo=timezone.utc))


def test_candidate_items_are_distinct_existing_items(small_sim):
    world, items = small_sim.world, small_sim.items.set_index("item_id")
    ts = datetime(2026, 1, 10, tzinfo=timezone.utc)
    candidates = world.candidate_items(5, 100, np.random.default_rng(3), ts)
    assert len(candidates) == len(set(candidates)) == 100
    assert (items.loc[candidates, "created_ts"] <= pd.Timestamp(ts)).all()


def test_candidate_items_are_capped_by_what_exists_at_the_time(small_sim):
    world, config = small_sim.world, small_sim.config
    existing = config.num_items - small_sim.summary.num_cold_start_items
    candidates = world.candidate_items(5, config.num_items, np.random.default_rng(4), config.start_time)
    assert sorted(candidates) == list(range(1, existing + 1))


def test_sampled_requests_look_like_the_logged_ones(small_sim):
    world, config = small_sim.world, small_sim.config
    rng = np.random.default_rng(5)
    for _ in range(50):
        user_id, ts, device, surface = world.sample_request(rng)
        assert 1 <= user_id <= config.num_users
        assert config.start_time <= ts < config.start_time + timedelta(days=config.days)
        assert device in DEVICES and surface in SURFACES


def test_logged_conversions_fit_the_conversion_probability_better_than_the_mean_rate(small_sim):
    clicked = small_sim.events[small_sim.events["click"] == 1]
    conversion = clicked["conversion"].to_numpy()
    truth = small_sim.world.conversion_probability(_impressions(clicked))
    assert np.all((truth > 0) & (truth < 1))
    flat = np.full_like(truth, conversion.mean())
    assert _log_likelihood(conversion, truth) > _log_likelihood(conversion, flat)
