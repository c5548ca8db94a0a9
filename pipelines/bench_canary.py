"""`recforge bench canary`: the canary analysis proven by simulation.

Three measurements, each beside its baseline from the same simulated runs:

1. **A/A under continuous monitoring** — false-positive rate of the anytime-valid test (normal
   mixture, user-level delta-method variance) looked at every ``--look-every`` impressions,
   beside the naive z-test repeated at every look (user level and per impression) and the
   single-look z-tests.
2. **A/B** at −5 %, +2 %, +5 % relative CTR and −10 % CVR (CTR unchanged): power and
   impressions to a decision, beside the fixed-horizon z-test of the same α — the impressions it
   needs for 80 % power and for the power the sequential test reached. The same runs are also
   judged by the planned-effect test (two-point mixture at ±5 % in every scenario, stopped at
   ``planned_horizon_factor`` times its fixed-horizon size), whose A/A rate is measured too.
3. **Per-impression vs per-user variance**: the per-impression z-test's false-positive rate as
   users see more impressions each.

The users are a vectorised model of the simulator's World (:mod:`pipelines.bench_canary_model`
says what is measured and what is modelled); the statistics are the production code in
:mod:`serving.analysis`. Targets, printed at the end: A/A FPR ≤ α within Monte-Carlo error
(α + 2 standard errors), for both tests; +5 % CTR detected with ≥ 80 % power in fewer
impressions on average than the fixed-horizon test needs for 80 % power, judged for each test.
Exit status 0 after a run (1 with ``--strict`` when a target is missed), 2 on bad options.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipelines.bench_canary_model import (
    Scenario,
    UserModel,
    expected_users,
    simulate_looks,
    user_model_from_world,
)
from pipelines.bench_canary_stats import (
    analyse,
    first_decision,
    fixed_horizon_size,
    plan_impressions,
    rate,
    until,
)
from pipelines.sim_config import SimulationConfig
from pipelines.sim_world import World
from serving.analysis import SequentialTest, z_test_p_value
from serving.analysis.sequential import difference_estimate
from serving.analysis.srm import log_bayes_factor

AB_SCENARIOS = (
    ("CTR -5 %", "ctr", -0.05, 0.0),
    ("CTR +2 %", "ctr", 0.02, 0.0),
    ("CTR +5 %", "ctr", 0.05, 0.0),
    ("CVR -10 %", "cvr", 0.0, -0.10),
)
TARGET_SCENARIO = "CTR +5 %"
PLANNED_EFFECT = 0.05  # the planned-effect test's μ: the target scenario's change, in every scenario


@dataclass(frozen=True)
class BenchConfig:
    runs_aa: int = 1000
    runs_ab: int = 200
    users: int = 100_000
    aa_impressions: int = 1_000_000
    look_every: int = 5_000
    horizon_factor: float = 3.0  # A/B runs last this many times the planned fixed-horizon size,
    max_horizon: int = 8_000_000  # but at most this many impressions (half the runs past 4x A/A)
    planned_effect: float = PLANNED_EFFECT
    # the planned-effect test runs at most this many times its fixed-horizon size: an effect
    # known in advance bounds the experiment's duration, as it does for a fixed-horizon test
    planned_horizon_factor: float = 2.0
    alpha: float = 0.05
    power: float = 0.8
    base_ctr: float = 0.05
    base_cvr: float = 0.10
    pool_sizes: tuple[int, ...] = (100_000, 10_000, 2_000)
    runs_pool: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        counts = ("runs_aa", "runs_ab", "runs_pool", "users", "aa_impressions", "look_every", "max_horizon")
        for name in counts:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if self.aa_impressions < 2 * self.look_every:
            raise ValueError(
                f"aa_impressions: expected at least two looks (>= 2 x look_every), got {self.aa_impressions}"
            )
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha: expected a level in (0, 0.5), got {self.alpha}")
        if not 0.5 <= self.power < 1:
            raise ValueError(f"power: expected a probability in [0.5, 1), got {self.power}")
        if not (isinstance(self.planned_effect, (int, float)) and 0 < self.planned_effect < 1):
            raise ValueError(
                f"planned_effect: expected a relative change in (0, 1), got {self.planned_effect!r}"
            )
        if not 1 <= self.planned_horizon_factor <= self.horizon_factor:
            raise ValueError(
                "planned_horizon_factor: expected a number in [1, horizon_factor], "
                f"got {self.planned_horizon_factor!r}"
            )
        if not self.horizon_factor >= 1:
            raise ValueError(f"horizon_factor: expected a number >= 1, got {self.horizon_factor}")
        if any(not 2 <= size <= self.users for size in self.pool_sizes):
            raise ValueError(
                f"pool_sizes: expected user counts in [2, users={self.users}], got {self.pool_sizes}"
            )


class Bench:
    def __init__(self, config: BenchConfig, say: Callable[[str], None]) -> None:
        self.config = config
        self.say = say
        self.rng = np.random.default_rng(config.seed)
        self.results: dict = {"config": asdict(config)}
        self.targets: dict[str, bool] = {}

    def run(self) -> dict:
        started = time.perf_counter()
        model = self.build_model()
        plans = self.aa(model)
        self.ab(model, plans)
        self.pools(model)
        self.results["targets"] = self.targets
        self.results["wall_s"] = time.perf_counter() - started
        self.say(
            f"\nwall time {self.results['wall_s']:.0f} s; targets: "
            + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in self.targets.items())
        )
        return self.results

    def build_model(self) -> UserModel:
        c = self.config
        started = time.perf_counter()
        world = World.from_config(
            SimulationConfig(
                num_users=c.users, target_ctr=c.base_ctr, target_cvr=c.base_cvr, seed=c.seed + 42
            )
        )
        model = user_model_from_world(world, 3, self.rng).with_rates(c.base_ctr, c.base_cvr)
        spread = float(np.std(model.click) / np.mean(model.click))
        self.say(
            f"users: {c.users:,} from the simulator's World (activity, click and conversion ground truth), "
            f"CTR {model.ctr:.2%}, CVR {model.cvr:.2%}, user CTR spread (cv) {spread:.2f}; "
            f"built in {time.perf_counter() - started:.1f} s"
        )
        self.results["model"] = {"users": c.users, "ctr": model.ctr, "cvr": model.cvr, "click_cv": spread}
        return model

    # ------------------------------------------------------------------ A/A
    def aa(self, model: UserModel) -> dict[str, tuple[float, int]]:
        c = self.config
        looks = c.aa_impressions // c.look_every
        started = time.perf_counter()
        series = simulate_looks(
            model, Scenario("A/A", horizon_impressions=c.aa_impressions, looks=looks), c.runs_aa, self.rng
        )
        impressions = series.impressions.mean(axis=0)
        plans = {}
        for name, metric, ctr_lift, cvr_lift in AB_SCENARIOS:
            relative_effect = ctr_lift or cvr_lift
            _, _, _, variance = difference_estimate(series.primary, series.canary, metric, "relative")
            size = plan_impressions(
                impressions, np.nanmean(variance, axis=0), relative_effect, c.alpha, c.power
            )
            plans[name] = (size, max(2, round(expected_users(model, size))))
        test = SequentialTest(c.alpha, plans[TARGET_SCENARIO][1], "relative")
        self.say(
            f"\nA/A: {c.runs_aa} runs x {c.aa_impressions:,} impressions, a look every {c.look_every:,} "
            f"({looks} looks), alpha {c.alpha}; simulated in {time.perf_counter() - started:.0f} s\n"
            f"  sequential test planned for {test.planned_users:,} users (the {TARGET_SCENARIO} plan)\n"
            f"  {'false-positive rate (runs ever significant)':<52}{'CTR':>16}{'CVR':>16}"
        )
        planned = dataclasses.replace(test, planned_effect=c.planned_effect)
        planned_label = f"sequential, planned effect {c.planned_effect:.0%}, every look"
        rows: dict[str, dict[str, tuple[float, float]]] = {}
        for metric in ("ctr", "cvr"):
            rows.setdefault(planned_label, {})[metric] = rate(
                analyse(series, metric, planned).sequential_significant.any(axis=1)
            )
            arms = analyse(series, metric, test)
            user_p = z_test_p_value(arms.estimate, arms.user_variance)
            impression_p = z_test_p_value(arms.estimate, arms.impression_variance)
            for label, hits in (
                ("sequential, user level, every look", arms.sequential_significant.any(axis=1)),
                ("naive z-test, user level, every look", (user_p < c.alpha).any(axis=1)),
                ("naive z-test, per impression, every look", (impression_p < c.alpha).any(axis=1)),
                ("z-test, user level, one look at the end", user_p[:, -1] < c.alpha),
                ("z-test, per impression, one look at the end", impression_p[:, -1] < c.alpha),
            ):
                rows.setdefault(label, {})[metric] = rate(hits)
        counts = np.stack([series.primary.n, series.canary.n], axis=-1)
        srm = rate(np.any(log_bayes_factor(counts, [0.5, 0.5]) >= math.log(1 / c.alpha), axis=1))
        for label, by_metric in rows.items():
            cells = "".join(f"{_share(value):>16}" for value in by_metric.values())
            self.say(f"  {label:<52}{cells}")
        self.say(f"  {'sample-ratio check (sequential), every look':<52}{_share(srm):>16}")
        sequential = rows["sequential, user level, every look"]
        naive = rows["naive z-test, user level, every look"]
        self.say(
            "  ratio naive / sequential: "
            + ", ".join(
                f"{m.upper()} {naive[m][0] / max(sequential[m][0], 1 / c.runs_aa):.1f}x" for m in sequential
            )
        )
        bound = c.alpha + 2 * math.sqrt(c.alpha * (1 - c.alpha) / c.runs_aa)
        self.targets["A/A FPR <= alpha"] = all(
            v <= bound
            for label in ("sequential, user level, every look", planned_label)
            for v, _ in rows[label].values()
        )
        self.results["aa"] = {
            "runs": c.runs_aa,
            "looks": looks,
            "planned_users": test.planned_users,
            "false_positive_rate": {k: {m: v[0] for m, v in d.items()} for k, d in rows.items()},
            "srm_false_alarm_rate": srm[0],
            "bound": bound,
        }
        return plans

    # ------------------------------------------------------------------ A/B
    def ab(self, model: UserModel, plans: dict[str, tuple[float, int]]) -> None:
        c = self.config
        self.say(
            f"\nA/B: power and impressions to a decision (sequential, stopped at the first significant look) "
            f"beside the fixed-horizon z-test at the same alpha\n"
            f"  {'scenario':<11}{'runs':>5}{'horizon':>11}{'power':>8}{'wrong':>7}{'mean to':>11}"
            f"{'fixed @':>11}{'ratio':>7}{'fixed @':>11}{'ratio':>7}\n"
            f"  {'':<11}{'':>5}{'':>11}{'':>8}{'sign':>7}{'decision':>11}"
            f"{'same power':>11}{'':>7}{f'{c.power:.0%} power':>11}{'':>7}"
        )
        self.results["ab"] = {}
        planned_lines = []
        for name, metric, ctr_lift, cvr_lift in AB_SCENARIOS:
            effect = ctr_lift or cvr_lift
            planned_impressions, planned_users = plans[name]
            horizon = min(int(c.horizon_factor * planned_impressions), c.max_horizon)
            looks = max(2, horizon // c.look_every)
            runs = c.runs_ab if horizon <= 4 * c.aa_impressions else max(20, c.runs_ab // 2)
            scenario = Scenario(name, ctr_lift, cvr_lift, horizon, looks)
            series = simulate_looks(model, scenario, runs, self.rng)
            arms = analyse(series, metric, SequentialTest(c.alpha, planned_users, "relative"))
            decided = _decided(arms, effect)
            fixed = {
                "fixed_horizon_impressions_same_power": fixed_horizon_size(
                    arms, effect, c.alpha, decided["power"]
                ),
                "fixed_horizon_impressions_target_power": fixed_horizon_size(arms, effect, c.alpha, c.power),
            }
            at_target = fixed["fixed_horizon_impressions_target_power"]
            row = {
                "metric": metric,
                "relative_effect": effect,
                "runs": runs,
                "horizon_impressions": horizon,
                "planned_users": planned_users,
                **decided,
                **fixed,
            }
            self.results["ab"][name] = row
            self.say(_ab_line(name, row))
            planned = self._planned_effect_row(series, metric, plans[name], effect) | fixed
            row["planned_effect_test"] = planned
            planned_lines.append(_ab_line(name, {"runs": runs, **planned}))
            if name == TARGET_SCENARIO:
                goal = f"{name} power >= {c.power:.0%} in fewer impressions than fixed horizon"
                for label, judged in (("normal mixture", row), ("planned effect", planned)):
                    self.targets[f"{goal} ({label})"] = bool(
                        judged["power"] >= c.power
                        and at_target is not None
                        and judged["mean_impressions_to_decision"] < at_target
                    )
        self.say(
            "  (mean to decision counts runs that never decide at the horizon; each scenario's\n"
            "   sequential test is planned for the users its fixed-horizon test needs;\n"
            "   ratio = mean to decision / fixed)\n"
            "  the same runs judged by the planned-effect test (two-point mixture at "
            f"+-{c.planned_effect:.0%} in every scenario),\n"
            f"  stopped at {c.planned_horizon_factor:g}x the fixed-horizon size:"
        )
        for line in planned_lines:
            self.say(line)
        self.say(
            "  (it cannot resolve changes below about half its planned effect: the CTR +2 % row shows\n"
            "   the price)"
        )
        self._versus_unknown_effect(plans)

    def _planned_effect_row(self, series, metric: str, plan: tuple[float, int], effect: float) -> dict:
        c = self.config
        planned_impressions, planned_users = plan
        test = SequentialTest(c.alpha, planned_users, "relative", planned_effect=c.planned_effect)
        arms = until(analyse(series, metric, test), c.planned_horizon_factor * planned_impressions)
        return {
            "planned_effect": c.planned_effect,
            "horizon_impressions": int(arms.impressions[:, -1].mean()),
            **_decided(arms, effect),
        }

    def _versus_unknown_effect(self, plans: dict[str, tuple[float, int]]) -> None:
        """A fixed-horizon test must be sized before the effect is known: for the smallest CTR
        change worth detecting. The sequential test stops earlier when the change is larger."""
        ab = self.results["ab"]
        ctr = [name for name, row in ab.items() if row["metric"] == "ctr"]
        smallest = min(ctr, key=lambda name: abs(ab[name]["relative_effect"]))
        fixed = plans[smallest][0]
        ratios = {name: ab[name]["mean_impressions_to_decision"] / fixed for name in ctr}
        self.results["ab_versus_fixed_sized_for_smallest_effect"] = {
            "sized_for": smallest,
            "fixed_horizon_impressions": fixed,
            "ratio": ratios,
        }
        self.say(
            f"  a fixed-horizon test sized for the smallest CTR change ({smallest}, "
            f"{self.config.power:.0%} power, as planned) needs {fixed:,.0f} impressions whatever the true "
            "change; sequential mean to decision / that: "
            + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
        )

    # ------------------------------------------------------------------ per-user vs per-impression
    def pools(self, model: UserModel) -> None:
        c = self.config
        self.say(
            f"\nPer-impression vs per-user variance (A/A, one look at {c.aa_impressions:,} impressions, "
            f"{c.runs_pool} runs per pool)\n"
            f"  {'users':>9}{'imps/user':>11}{'variance':>10}{'FPR per':>14}{'FPR per':>14}\n"
            f"  {'':>9}{'':>11}{'ratio':>10}{'impression':>14}{'user':>14}"
        )
        self.results["pools"] = []
        for size in c.pool_sizes:
            pool = model if size >= len(model.rate) else model.subset(size, self.rng)
            scenario = Scenario("pool", horizon_impressions=c.aa_impressions, looks=1)
            arms = analyse(
                simulate_looks(pool, scenario, c.runs_pool, self.rng), "ctr", SequentialTest(c.alpha)
            )
            per_impression = rate(z_test_p_value(arms.estimate, arms.impression_variance)[:, -1] < c.alpha)
            per_user = rate(z_test_p_value(arms.estimate, arms.user_variance)[:, -1] < c.alpha)
            ratio = float(np.nanvar(arms.estimate[:, -1]) / np.nanmean(arms.impression_variance[:, -1]))
            per_user_impressions = float(np.mean(arms.impressions[:, -1] / arms.users[:, -1]))
            self.say(
                f"  {size:>9,}{per_user_impressions:>11.1f}{ratio:>9.1f}x"
                f"{_share(per_impression):>14}{_share(per_user):>14}"
            )
            self.results["pools"].append(
                {
                    "users": size,
                    "impressions_per_user": per_user_impressions,
                    "variance_ratio_true_to_per_impression": ratio,
                    "fpr_per_impression": per_impression[0],
                    "fpr_per_user": per_user[0],
                }
            )
        self.say("  (variance ratio: the estimate's variance across runs over the per-impression formula's)")


def _share(value: tuple[float, float]) -> str:
    return f"{value[0]:.3f} ± {value[1]:.3f}"


def _decided(arms, effect: float) -> dict:
    """One test's power, wrong-sign rate and impressions to a decision over a scenario's runs."""
    right, wrong, to_decision = first_decision(arms, effect)
    return {
        "power": float(right.mean()),
        "wrong_direction": float(wrong.mean()),
        "mean_impressions_to_decision": float(to_decision.mean()),
        "median_impressions_when_detected": float(np.median(to_decision[right])) if right.any() else None,
    }


def _ab_line(name: str, row: dict) -> str:
    """One A/B table row from a scenario's results (runs, horizon, power, ... fixed sizes)."""
    mean = row["mean_impressions_to_decision"]
    return (
        f"  {name:<11}{row['runs']:>5}{row['horizon_impressions']:>11,}{row['power']:>8.3f}"
        f"{row['wrong_direction']:>7.3f}{mean:>11,.0f}"
        f"{_versus(mean, row['fixed_horizon_impressions_same_power'])}"
        f"{_versus(mean, row['fixed_horizon_impressions_target_power'])}"
    )


def _versus(mean_to_decision: float, fixed: float | None) -> str:
    if fixed is None:
        return f"{'> horizon':>11}{'':>7}"
    return f"{fixed:>11,.0f}{mean_to_decision / fixed:>6.2f}x"


_OPTIONS = (
    ("--runs-aa", "runs_aa", "A/A runs"),
    ("--runs-ab", "runs_ab", "runs per A/B scenario (half for horizons past 4x the A/A one)"),
    ("--runs-pool", "runs_pool", "runs per user pool"),
    ("--users", "users", "users in the simulator's World"),
    ("--aa-impressions", "aa_impressions", "A/A horizon in impressions"),
    ("--look-every", "look_every", "impressions between looks"),
    ("--max-horizon", "max_horizon", "cap on an A/B run's impressions"),
    ("--alpha", "alpha", "significance level of every test"),
    ("--power", "power", "power the fixed-horizon baseline is sized for"),
    ("--planned-effect", "planned_effect", "relative change the planned-effect test is planned for"),
    (
        "--planned-horizon-factor",
        "planned_horizon_factor",
        "the planned-effect test's longest run, in fixed-horizon sizes",
    ),
    ("--seed", "seed", "random seed"),
)
_QUICK = {"runs_aa": 200, "runs_ab": 60, "runs_pool": 100}


def _parser() -> argparse.ArgumentParser:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="recforge bench canary",
        description="Prove the canary analysis by simulation: A/A false positives under continuous "
        "monitoring, A/B power and impressions to a decision, per-user vs per-impression variance.",
        epilog="example: recforge bench canary --runs-aa 2000 --runs-ab 500 --json canary-bench.json",
    )
    for flag, field, text in _OPTIONS:
        default = getattr(defaults, field)
        parser.add_argument(flag, type=type(default), default=default, help=f"{text} (default %(default)s)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {', '.join(f'{k}={v}' for k, v in _QUICK.items())}",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    options = {field: getattr(args, field) for _, field, _ in _OPTIONS} | (_QUICK if args.quick else {})
    pools = tuple(size for size in BenchConfig().pool_sizes if size <= args.users) or (args.users,)
    try:
        config = BenchConfig(**options, pool_sizes=pools)
    except ValueError as error:
        parser.exit(2, f"recforge bench canary: {error}\n")
    results = Bench(config, print).run()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 1 if args.strict and not all(results["targets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
