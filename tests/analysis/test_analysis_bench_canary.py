"""`recforge bench canary`: its per-look moments are exact, and it runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.bench_canary import main
from pipelines.bench_canary_model import RequestLog, moments_by_look, to_moments
from pipelines.bench_canary_stats import Arms, until
from serving.analysis import UserMoments


def random_log(rng: np.random.Generator, groups: int, looks: int) -> RequestLog:
    units = rng.integers(0, 40, 400)
    interval = rng.integers(0, looks, 400)
    order = np.lexsort((interval, units))
    impressions = rng.integers(1, 6, 400)
    clicks = rng.binomial(impressions, 0.3)
    conversions = rng.binomial(clicks, 0.5)
    return RequestLog(
        unit=units[order],
        group=(units % groups)[order],
        interval=interval[order],
        counts=np.stack([impressions, clicks, conversions], axis=1)[order],
    )


def test_per_look_moments_equal_per_user_totals_recomputed_at_every_look():
    groups, looks = 3, 5
    log = random_log(np.random.default_rng(0), groups, looks)
    fast = to_moments(moments_by_look(log, groups, looks))
    for group in range(groups):
        for look in range(looks):
            seen = (log.group == group) & (log.interval <= look)
            per_user = np.array(
                [log.counts[seen & (log.unit == u)].sum(axis=0) for u in np.unique(log.unit[seen])]
            ).reshape(-1, 3)
            direct = UserMoments.from_per_user(per_user)
            assert float(fast.n[group, look]) == float(direct.n)
            np.testing.assert_allclose(fast.sums[group, look], direct.sums)
            np.testing.assert_allclose(fast.products[group, look], direct.products)


def test_a_small_bench_run_reports_every_section_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "--users", "3000", "--runs-aa", "40", "--runs-ab", "8", "--runs-pool", "8",
            "--aa-impressions", "60000", "--look-every", "6000", "--max-horizon", "200000",
            "--json", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    for section in ("A/A:", "A/B:", "Per-impression vs per-user", "targets:"):
        assert section in printed
    results = json.loads(out.read_text())
    assert set(results["ab"]) == {"CTR -5 %", "CTR +2 %", "CTR +5 %", "CVR -10 %"}
    assert 0.0 <= results["aa"]["false_positive_rate"]["sequential, user level, every look"]["ctr"] <= 1.0
    assert "sequential, planned effect 5%, every look" in results["aa"]["false_positive_rate"]
    planned = results["ab"]["CTR +5 %"]["planned_effect_test"]
    assert planned["planned_effect"] == 0.05 and 0.0 <= planned["power"] <= 1.0
    # the planned-effect test stops at twice its fixed-horizon size, or the runs' end (a look's
    # impressions vary around the nominal horizon)
    assert planned["horizon_impressions"] <= 1.01 * results["ab"]["CTR +5 %"]["horizon_impressions"]
    assert {"CTR +5 % power >= 80% in fewer impressions than fixed horizon (normal mixture)",
            "CTR +5 % power >= 80% in fewer impressions than fixed horizon (planned effect)"} <= set(
        results["targets"])
    versus = results["ab_versus_fixed_sized_for_smallest_effect"]
    assert versus["sized_for"] == "CTR +2 %" and set(versus["ratio"]) == {"CTR -5 %", "CTR +2 %", "CTR +5 %"}


def test_until_keeps_each_runs_looks_up_to_the_impressions_given():
    impressions = np.array([[10.0, 20.0, 30.0], [12.0, 22.0, 32.0]])
    zeros = np.zeros_like(impressions)
    arms = Arms(zeros, zeros, zeros, zeros.astype(bool), impressions, zeros)
    assert until(arms, 21.0).impressions.tolist() == [[10.0, 20.0], [12.0, 22.0]]
    assert until(arms, 1.0).impressions.shape == (2, 1)


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--runs-aa", "0", "runs_aa"),
        ("--alpha", "0.7", "alpha"),
        ("--look-every", "0", "look_every"),
        ("--planned-effect", "0", "planned_effect"),
        ("--planned-horizon-factor", "0.5", "planned_horizon_factor"),
    ],
)
def test_bad_options_exit_2_naming_the_field(flag, value, field, capsys):
    with pytest.raises(SystemExit) as stop:
        main([flag, value])
    assert stop.value.code == 2
    assert field in capsys.readouterr().err
