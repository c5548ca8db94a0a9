"""`recforge bench train`: our multi-task models against DeepCTR-Torch 0.3.0, side by side.

    recforge bench train                                  # simulator + generated Census stand-in
    recforge bench train --datasets simulator --impressions 1000000 --epochs 3
    recforge bench train --tabular-config examples/census_income.yaml   # the real UCI files
    recforge bench train --no-deepctr --architectures mmoe single_task

Per dataset: one split and one fitted feature spec; every model sees the same encoded rows.
Each architecture trains with each seed in both implementations (same layer sizes, epochs,
batch size and learning rate; the epoch with the best validation AUC is kept) and is measured on
the test rows. Printed: per-task test AUC mean ± std over seeds and training samples/s (the
training loop only), with our speed-up over DeepCTR-Torch measured in this run. The targets
(match DeepCTR's AUC within noise at >= 2x its throughput; MMoE/PLE beat single-task on the
sparser task) are checked at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from models.architectures import ARCHITECTURES
from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.evaluation import evaluate
from models.feature_spec import FeatureSpec
from models.fitting import TextTable, encode
from models.metrics import auc
from models.network import MultiTaskRanker
from models.training import train, uses_bfloat16
from pipelines.bench_train_data import (
    DEFAULT_CACHE,
    load_simulator_data,
    quiet_training_logs,
    simulator_training_dir,
)
from pipelines.bench_train_deepctr import DeepCTRUnavailable, import_deepctr, train_deepctr
from pipelines.bench_train_report import difference, mean_std
from pipelines.tabular_config import load_tabular_config, tabular_config
from pipelines.tabular_data import data_columns, layout, load_split
from pipelines.tabular_synth import write_census_like
from pipelines.training_step import LAYOUT

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "census_income.yaml"
DEEPCTR = "deepctr-torch"


@dataclass(frozen=True)
class BenchData:
    """One dataset, split and encoded once for every model."""

    name: str
    spec: FeatureSpec
    model: ModelConfig
    training: TrainConfig
    train: TrainingData
    valid: TrainingData
    test: TrainingData
    chained: bool
    """Its later tasks imply the first (click → conversion): ESMM applies."""


@dataclass(frozen=True)
class Run:
    dataset: str
    architecture: str
    implementation: str
    seed: int
    test_auc: dict[str, float]
    samples_per_second: float
    best_epoch: int


def simulator_data(impressions: int, training_dir: Path | None) -> BenchData:
    directory = training_dir or simulator_training_dir(
        {"num_users": 20_000, "num_items": 5_000, "num_impressions": impressions}
    )
    simulator = load_simulator_data(directory)
    config = ModelConfig()
    spec = FeatureSpec.fit(simulator.split.train, LAYOUT)
    text = TextTable(simulator.text_keys, simulator.text_matrix)
    train_data, valid_data, test_data = (
        encode(frame, spec, config, text)
        for frame in (simulator.split.train, simulator.split.valid, simulator.split.holdout)
    )
    return BenchData("simulator", spec, config, TrainConfig(), train_data, valid_data, test_data,
                     chained=True)


def tabular_data(config_path: Path | None, rows: int, cache_dir: Path) -> BenchData:
    """The tabular config's dataset; by default the Census example on generated files."""
    if config_path is None:
        if not EXAMPLE_CONFIG.is_file():
            raise FileNotFoundError(f"{EXAMPLE_CONFIG} is missing; pass --tabular-config FILE")
        folder = Path(cache_dir).resolve() / f"census-like-{rows}"
        data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
        data["dataset"]["train"] = str(_generated(folder / "train.csv.gz", rows, seed=0))
        data["dataset"]["test"] = str(_generated(folder / "test.csv.gz", rows // 2, seed=1))
        config, name = tabular_config(data, folder), "census-like (generated)"
    else:
        config, name = load_tabular_config(config_path), Path(config_path).stem
    split = load_split(config)
    spec = FeatureSpec.fit(split.train, layout(config.dataset))
    columns = data_columns(config.dataset)
    train_data, valid_data, test_data = (
        encode(frame, spec, config.model, None, columns)
        for frame in (split.train, split.valid, split.test)
    )
    return BenchData(name, spec, config.model, config.train, train_data, valid_data, test_data,
                     chained=False)


def _generated(path: Path, rows: int, seed: int) -> Path:
    return path if path.is_file() else write_census_like(path, rows, seed)


def architecture_config(base: ModelConfig, architecture: str) -> ModelConfig:
    """The dataset's model with another body. PLE: one shared and one specific expert per task
    per level, two levels (DeepCTR-Torch 0.3.0 builds only `specific_expert_num` shared experts,
    so larger shared counts would not run there)."""
    changes: dict = {"architecture": architecture}
    if architecture == "ple":
        changes |= {"num_experts": 1, "specific_experts": 1, "num_levels": 2}
    return dataclasses.replace(base, **changes)


def ours(train_config: TrainConfig) -> str:
    """Our implementation's name: recforge-bf16 or recforge-fp32."""
    bfloat16 = uses_bfloat16(train_config.precision, torch.device("cpu"))
    return f"recforge-{'bf16' if bfloat16 else 'fp32'}"


def run_ours(data: BenchData, config: ModelConfig, train_config: TrainConfig) -> Run:
    torch.manual_seed(train_config.seed)
    model = MultiTaskRanker(data.spec, config)
    result = train(model, data.train, data.valid, train_config, progress=False)
    test = evaluate(model, data.test)
    return Run(data.name, config.architecture, ours(train_config), train_config.seed,
               {task: test[task]["auc"] for task in config.tasks}, result.samples_per_second,
               result.best_epoch)


def run_deepctr(data: BenchData, config: ModelConfig, train_config: TrainConfig) -> Run:
    tasks = config.tasks

    def mean_valid_auc(predictions: np.ndarray) -> float:
        return float(np.nanmean([auc(data.valid.labels[:, t], predictions[:, t])
                                 for t in range(len(tasks))]))

    baseline = train_deepctr(config.architecture, data.spec, config, train_config, data.train,
                             data.valid, data.test, mean_valid_auc)
    test_auc = {task: auc(data.test.labels[:, t], baseline.test_predictions[:, t])
                for t, task in enumerate(tasks)}
    return Run(data.name, config.architecture, DEEPCTR, train_config.seed, test_auc,
               baseline.samples_per_second, baseline.best_epoch)


def benchmark(
    data: BenchData,
    architectures: Sequence[str],
    seeds: Sequence[int],
    train_config: TrainConfig,
    precisions: Sequence[str],
    with_deepctr: bool,
    report: Callable[[Run], None] = lambda run: None,
) -> list[Run]:
    """Every architecture x seed x implementation on `data`: ours once per precision."""
    runs = []
    for architecture in architectures:
        if architecture == "esmm" and not data.chained:
            continue
        config = architecture_config(data.model, architecture)
        for seed in seeds:
            seeded = dataclasses.replace(train_config, seed=seed)
            for precision in dict.fromkeys(precisions):
                runs.append(run_ours(data, config, dataclasses.replace(seeded, precision=precision)))
                report(runs[-1])
            if with_deepctr and architecture != "single_task":
                runs.append(run_deepctr(data, config, seeded))
                report(runs[-1])
    return runs


def summary_table(runs: Sequence[Run], tasks: Sequence[str]) -> str:
    lines = [f"{'architecture':<14}{'implementation':<16}"
             + "".join(f"{task + ' AUC':>22}" for task in tasks)
             + f"{'samples/s':>12}{'vs deepctr':>12}"]
    for architecture in dict.fromkeys(run.architecture for run in runs):
        implementations = dict.fromkeys(r.implementation for r in runs
                                        if r.architecture == architecture)
        rates = {impl: statistics.mean(r.samples_per_second
                                       for r in _group(runs, architecture, impl))
                 for impl in implementations}
        for implementation, rate in rates.items():
            group = _group(runs, architecture, implementation)
            cells = "".join(f"{mean_std([r.test_auc[t] for r in group]):>22}" for t in tasks)
            ratio = (f"{rate / rates[DEEPCTR]:>11.2f}x"
                     if implementation != DEEPCTR and DEEPCTR in rates else "")
            lines.append(f"{architecture:<14}{implementation:<16}{cells}{rate:>12.0f}{ratio}")
    return "\n".join(lines)


def target_checks(runs: Sequence[Run], tasks: Sequence[str], ours: str) -> list[str]:
    """One line per target for implementation `ours`: AUC vs DeepCTR's (a difference beyond
    two standard errors counts) at >= 2x its throughput; MMoE / PLE vs single-task on the last
    task (the sparser one)."""
    lines = []
    for architecture in dict.fromkeys(r.architecture for r in runs):
        mine, theirs = (_group(runs, architecture, impl) for impl in (ours, DEEPCTR))
        if not mine or not theirs:
            continue
        for task in tasks:
            gap, noise = _difference(mine, theirs, task)
            verdict = "better" if gap > noise else "within noise" if gap >= -noise else "WORSE"
            lines.append(f"{architecture} {task}: {ours} - deepctr = {gap:+.4f} AUC "
                         f"(noise {noise:.4f}): {verdict}")
        speed = (statistics.mean(r.samples_per_second for r in mine)
                 / statistics.mean(r.samples_per_second for r in theirs))
        lines.append(f"{architecture} throughput: {ours} {speed:.2f}x DeepCTR-Torch "
                     f"({'meets' if speed >= 2 else 'MISSES'} the 2x target)")
    single = _group(runs, "single_task", ours)
    for architecture in ("mmoe", "ple"):
        multi = _group(runs, architecture, ours)
        if single and multi:
            task = tasks[-1]
            gap, noise = _difference(multi, single, task)
            verdict = "beats" if gap > noise else "does NOT beat"
            lines.append(f"{architecture} {verdict} single-task on {task}: {gap:+.4f} AUC "
                         f"(noise {noise:.4f})")
    return lines


def _group(runs: Sequence[Run], architecture: str, implementation: str) -> list[Run]:
    return [r for r in runs if r.architecture == architecture and r.implementation == implementation]


def _difference(a: Sequence[Run], b: Sequence[Run], task: str) -> tuple[float, float]:
    return difference([r.test_auc[task] for r in a], [r.test_auc[task] for r in b])


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recforge bench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=["simulator", "tabular"],
                        default=["simulator", "tabular"])
    parser.add_argument("--architectures", nargs="+", choices=sorted(ARCHITECTURES),
                        default=["single_task", "shared_bottom", "mmoe", "ple", "esmm"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N")
    parser.add_argument("--epochs", type=int,
                        help="default: 3 on the simulator, the config file's on tabular data")
    parser.add_argument("--batch-size", type=int, help="default: the dataset's training config")
    parser.add_argument("--learning-rate", type=float,
                        help="dense layers; default: the dataset's training config")
    parser.add_argument("--embedding-learning-rate", type=float,
                        help="embedding tables; default: the dataset's training config")
    parser.add_argument("--impressions", type=int, default=150_000,
                        help="simulated impressions (20k users, 5k items, 14 days)")
    parser.add_argument("--training-dir", type=Path,
                        help="a pipeline run's build-training-set folder instead of simulating")
    parser.add_argument("--tabular-config", type=Path,
                        help="a `recforge train` config (default: the Census example on a "
                             "generated stand-in)")
    parser.add_argument("--tabular-rows", type=int, default=40_000,
                        help="rows of the generated stand-in's training file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--precisions", nargs="+", choices=["auto", "float32", "bfloat16"],
                        default=["auto"],
                        help="ours once per precision (auto: bfloat16 where it is native); "
                             "add float32 to see both")
    parser.add_argument("--no-deepctr", action="store_true", help="ours only")
    parser.add_argument("--json", type=Path, help="also write every run here")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    quiet_training_logs()
    with_deepctr = not args.no_deepctr
    if with_deepctr:
        try:
            import_deepctr()
        except DeepCTRUnavailable as error:
            print(f"recforge bench train: {error} (or pass --no-deepctr)", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    seeds = range(1, args.seeds + 1)
    all_runs: list[Run] = []
    for dataset in args.datasets:
        data = (simulator_data(args.impressions, args.training_dir) if dataset == "simulator"
                else tabular_data(args.tabular_config, args.tabular_rows, args.cache_dir))
        train_config = bench_training(data, args)
        print(f"\n{data.name}: {len(data.train)} train / {len(data.valid)} valid / "
              f"{len(data.test)} test rows, {train_config.epochs} epochs, batch "
              f"{train_config.batch_size}, lr {train_config.learning_rate} (tables "
              f"{train_config.embedding_learning_rate}), {len(seeds)} seeds, "
              f"{args.threads} torch thread(s)", flush=True)
        runs = benchmark(data, args.architectures, seeds, train_config, args.precisions,
                         with_deepctr,
                         report=lambda run: print(f"  {run.architecture:<14}{run.implementation:<16}"
                                                  f"seed {run.seed}: "
                                                  f"{_rounded(run.test_auc)} "
                                                  f"{run.samples_per_second:.0f}/s", flush=True))
        print(summary_table(runs, data.model.tasks))
        mine = ours(dataclasses.replace(train_config, precision=args.precisions[0]))
        print("\n".join(target_checks(runs, data.model.tasks, mine)))
        all_runs += runs
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in all_runs], indent=2))
    return 0


def bench_training(data: BenchData, args: argparse.Namespace) -> TrainConfig:
    """The dataset's training config with the command line's overrides; every epoch runs (the
    best one on validation is kept) so both implementations train the same number of rows."""
    base = data.training
    epochs = args.epochs or (3 if data.name == "simulator" else base.epochs)
    learning_rate = args.learning_rate or base.learning_rate
    return dataclasses.replace(
        base, epochs=epochs, patience=epochs, batch_size=args.batch_size or base.batch_size,
        learning_rate=learning_rate,
        embedding_learning_rate=args.embedding_learning_rate or base.embedding_learning_rate,
    )


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in values.items()}


if __name__ == "__main__":
    raise SystemExit(main())
