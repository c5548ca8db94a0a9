"""Cold-start items: does the item text embedding help where the item id has never been seen?

    python -m pipelines.bench_train_coldstart                    # 300k impressions, 30% new items
    python -m pipelines.bench_train_coldstart --training-dir DIR --holdout-days 6

Training days come first, then one validation day, then `--holdout-days` test days; items first
shown in the test days are cold (their id is out of vocabulary). Four layouts, each with and
without the text embedding of the item title (the offline sentence encoder's vector, projected
by the model): ids only (user, item, request context) and all the pipeline's features. The
tables learn at 2e-3 here (`--embedding-learning-rate`): an ids-only model has nothing but its
ids. Printed: test AUC on cold and warm rows, mean ± std over seeds, and the text's gain on cold
rows.
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
from pipelines.training_step import LAYOUT

IDS_ONLY = dataclasses.replace(
    LAYOUT,
    categorical={name: source for name, source in LAYOUT.categorical.items()
                 if name in ("user_id", "item_id", "device", "surface", "hour")},
    numeric={},
    log1p=frozenset(),
)
LAYOUTS = {
    "ids only": dataclasses.replace(IDS_ONLY, text=None),
    "ids only + text": IDS_ONLY,
    "all features": dataclasses.replace(LAYOUT, text=None),
    "all features + text": LAYOUT,
}


def study(data: SimulatorData, seeds: Sequence[int], model_config: ModelConfig,
          train_config: TrainConfig) -> dict[str, dict[str, list[float]]]:
    text = TextTable(data.text_keys, data.text_matrix)
    test = data.split.holdout
    cold = ~test["item_id"].isin(set(data.split.train["item_id"]))
    print(f"test rows: {int(cold.sum())} of cold items ({test.loc[cold, 'item_id'].nunique()} "
          f"items, {int(test.loc[cold, 'click'].sum())} clicks), {int((~cold).sum())} warm",
          flush=True)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in LAYOUTS}
    for seed in seeds:
        seeded = dataclasses.replace(train_config, seed=seed)
        for name, layout in LAYOUTS.items():
            fitted = fit(data.split.train, data.split.valid, layout, model_config, seeded,
                         text=text if layout.text else None, progress=False)
            for part, rows in (("cold", cold), ("warm", ~cold)):
                metrics = evaluate(fitted.model, encode(test[rows.to_numpy()], fitted.model.spec,
                                                        model_config, text))
                for task in model_config.tasks:
                    results[name].setdefault(f"{part} {task} AUC", []).append(metrics[task]["auc"])
        print(f"  seed {seed}: cold click AUC " + ", ".join(
            f"{name} {values['cold click AUC'][-1]:.4f}" for name, values in results.items()),
            flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recforge bench train-coldstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training-dir", type=Path)
    parser.add_argument("--impressions", type=int, default=300_000)
    parser.add_argument("--cold-start-fraction", type=float, default=0.3)
    parser.add_argument("--holdout-days", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--embedding-learning-rate", type=float, default=2e-3,
                        help="the tables' rate (at the training default 1e-4 an ids-only model's "
                             "warm click AUC stays near 0.58)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_training_logs()
    torch.set_num_threads(args.threads)
    directory = args.training_dir or simulator_training_dir(
        {"num_users": 20_000, "num_items": 5_000, "num_impressions": args.impressions,
         "cold_start_fraction": args.cold_start_fraction})
    data = load_simulator_data(directory, holdout_days=args.holdout_days)
    results = study(data, range(1, args.seeds + 1), ModelConfig(),
                    TrainConfig(epochs=args.epochs, patience=args.epochs,
                                embedding_learning_rate=args.embedding_learning_rate))
    print(table(results, "layout"))
    for base in ("ids only", "all features"):
        for task in ModelConfig().tasks:
            key = f"cold {task} AUC"
            gain, noise = difference(results[f"{base} + text"][key], results[base][key])
            print(f"text on cold items, {base}, {task}: {gain:+.4f} AUC (noise {noise:.4f})"
                  f"{'' if np.isfinite(gain) else ' (too few positives)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
