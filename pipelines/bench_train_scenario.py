"""Multi-scenario transfer: does training with the other app surfaces help a surface with little data?

    python -m pipelines.bench_train_scenario                       # product_page keeps 10% of rows
    python -m pipelines.bench_train_scenario --scenario search --keep 0.05

The chosen surface keeps only `--keep` of its training rows (a new or small scenario); the other
surfaces keep theirs. Three MMoE models are measured on that surface's test rows: trained on its
own rows alone, trained on every surface (shared), and trained on every surface with
scenario-aware gates (model.scenario_feature = surface). Printed: test AUC mean ± std over
seeds, and the gain of sharing over training alone.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.config import ModelConfig, TrainConfig
from models.evaluation import evaluate
from models.fitting import TextTable, encode, fit
from pipelines.bench_train_data import (
    SimulatorData,
    load_simulator_data,
    quiet_training_logs,
    simulator_training_dir,
)
from pipelines.bench_train_report import difference, table
from pipelines.training_step import LAYOUT, SCENARIO


def study(data: SimulatorData, scenario: str, keep: float, seeds: Sequence[int],
          train_config: TrainConfig) -> dict[str, dict[str, list[float]]]:
    text = TextTable(data.text_keys, data.text_matrix)
    train, valid, test = data.split.train, data.split.valid, data.split.holdout
    rng = np.random.default_rng(0)
    mine = (train[SCENARIO] == scenario).to_numpy()
    train = train[~mine | (rng.random(len(train)) < keep)]
    alone = train[train[SCENARIO] == scenario]
    target_test = test[test[SCENARIO] == scenario]
    print(f"{scenario}: {len(alone)} training rows ({int(alone['click'].sum())} clicks, "
          f"{int(alone['conversion'].sum())} conversions); all surfaces: {len(train)}; test rows "
          f"{len(target_test)} ({int(target_test['click'].sum())} clicks, "
          f"{int(target_test['conversion'].sum())} conversions)", flush=True)
    target_valid = valid[valid[SCENARIO] == scenario]
    base = ModelConfig()
    variants = {
        "alone": (alone, target_valid, base),
        "shared": (train, valid, base),
        "shared, scenario gates": (train, valid,
                                   dataclasses.replace(base, scenario_feature=SCENARIO)),
    }
    results: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for seed in seeds:
        seeded = dataclasses.replace(train_config, seed=seed)
        for name, (train_rows, valid_rows, config) in variants.items():
            fitted = fit(train_rows, valid_rows, LAYOUT, config, seeded, text=text, progress=False)
            metrics = evaluate(fitted.model, encode(target_test, fitted.model.spec, config, text))
            for task in config.tasks:
                results[name].setdefault(f"{task} AUC", []).append(metrics[task]["auc"])
        print(f"  seed {seed}: click AUC " + ", ".join(
            f"{name} {values['click AUC'][-1]:.4f}" for name, values in results.items()),
            flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recforge bench train-scenario", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training-dir", type=Path)
    parser.add_argument("--impressions", type=int, default=300_000)
    parser.add_argument("--scenario", default="product_page",
                        help="the surface with little data: home, search or product_page")
    parser.add_argument("--keep", type=float, default=0.1,
                        help="share of that surface's training rows kept")
    parser.add_argument("--holdout-days", type=int, default=2,
                        help="test days: more of them give the small surface more test positives")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_training_logs()
    if not 0 < args.keep <= 1:
        parser.error("--keep must be in (0, 1]")
    torch.set_num_threads(args.threads)
    directory = args.training_dir or simulator_training_dir(
        {"num_users": 20_000, "num_items": 5_000, "num_impressions": args.impressions})
    data = load_simulator_data(directory, holdout_days=args.holdout_days)
    if args.scenario not in set(data.split.train[SCENARIO]):
        parser.error(f"--scenario {args.scenario!r} is not a surface of this data; choose one of "
                     f"{sorted(set(data.split.train[SCENARIO]))}")
    results = study(data, args.scenario, args.keep, range(1, args.seeds + 1),
                    TrainConfig(epochs=args.epochs, patience=args.epochs))
    print(table(results, f"{args.scenario} model"))
    for name in ("shared", "shared, scenario gates"):
        for task in ModelConfig().tasks:
            gain, noise = difference(results[name][f"{task} AUC"], results["alone"][f"{task} AUC"])
            print(f"{name} vs alone, {task}: {gain:+.4f} AUC (noise {noise:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
