"""Time of one training step of the pipeline's ranker for each embedding-table optimizer.

    python -m pipelines.bench_train_step                      # default world: 20k users, 5k items
    python -m pipelines.bench_train_step --training-dir DIR   # a pipeline run's training set
    python -m pipelines.bench_train_step --optimizers dense adam --precisions float32 --threads 1

A step is what training does per mini-batch: gather the batch, forward, per-task losses,
backward, update. "dense" is Adam over the tables' dense gradient (every row, every step); the
others are fused into the tables' backward and touch only the rows of the batch. Each optimizer
runs at each `--precisions` (float32, or auto: bfloat16 autocast where native). "dense, float32"
is how the ranker trained before the fused kernels. Every setting starts from the same weights
and sees the same batches; rounds alternate between them and the median is printed with its
ratio to the first setting, all from this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.config import EMBEDDING_OPTIMIZERS, PRECISIONS, ModelConfig, TrainConfig
from models.data import TrainingData
from models.feature_spec import FeatureSpec
from models.network import MultiTaskRanker
from models.training import TrainingStep
from pipelines.bench_train_data import load_simulator_data, quiet_training_logs, simulator_training_dir
from pipelines.training_step import LAYOUT


def step_times(
    data: TrainingData,
    spec: FeatureSpec,
    model_config: ModelConfig,
    settings: Sequence[tuple[str, str]],
    batch_size: int,
    steps: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Milliseconds per step, one entry per round, for each (embedding optimizer, precision)."""
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(data), batch_size, replace=False) for _ in range(steps)]
    runners = {}
    for optimizer, precision in settings:
        torch.manual_seed(0)
        runners[f"{optimizer}, {precision}"] = TrainingStep(
            MultiTaskRanker(spec, model_config),
            TrainConfig(embedding_optimizer=optimizer, precision=precision),
        )
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for name, step in runners.items():
            started = time.perf_counter()
            for rows in batches:
                step(data, rows)
            times[name].append(1e3 * (time.perf_counter() - started) / steps)
    return {name: values[1:] for name, values in times.items()}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="recforge bench train-step",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--training-dir", type=Path,
                        help="training.parquet + text_embeddings.parquet (default: simulate)")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--impressions", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--optimizers", nargs="+", default=["dense", "rowwise_adagrad", "adam"],
                        choices=EMBEDDING_OPTIMIZERS)
    parser.add_argument("--precisions", nargs="+", default=["float32", "auto"],
                        choices=PRECISIONS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    quiet_training_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    training_dir = args.training_dir or simulator_training_dir(
        {"num_users": args.users, "num_items": args.items, "num_impressions": args.impressions}
    )
    simulator = load_simulator_data(training_dir)
    spec = FeatureSpec.fit(simulator.split.train, LAYOUT)
    model_config = ModelConfig()
    data = TrainingData.from_frame(simulator.split.train, spec, model_config.tasks,
                                   simulator.text_keys, simulator.text_matrix)
    settings = [(o, p) for p in args.precisions for o in args.optimizers]
    times = step_times(data, spec, model_config, settings, args.batch_size, args.steps,
                       args.rounds)
    rows = sum(f.num_embeddings for f in spec.categorical)
    print(f"training step of the default ranker ({model_config.architecture}, "
          f"{len(spec.categorical)} tables, {rows} rows x {model_config.embedding_dim}), "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads, {training_dir}")
    first = next(iter(times))
    baseline = statistics.median(times[first])
    print(f"{'tables, precision':<28}{'ms/step':>10}{'samples/s':>12}{'vs first':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:>10.2f}{1e3 * args.batch_size / median:>12.0f}"
              f"{baseline / median:>9.2f}x   rounds: {' '.join(f'{v:.1f}' for v in values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
