"""Knowledge distillation on the simulator: a large MMoE teacher, a small shared-bottom student.

    python -m pipelines.bench_train_distill                 # 300k simulated impressions, 3 seeds
    python -m pipelines.bench_train_distill --training-dir DIR --alpha 0.5

Per seed: the teacher, the student distilled from it (targets = (1 - alpha) x label + alpha x
teacher), and the same student trained on the labels alone. Printed: test AUC per task, parameter
counts, and the serving latency of each saved artifact (`load_artifact(...).score` of one request
of `--candidates` rows, the call the model server makes; and the network's forward alone),
median over `--repeats` interleaved calls in this run, one torch thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.artifact import LoadedModel, load_artifact, save_artifact
from models.config import ModelConfig, TrainConfig
from models.distillation import distill, parameter_count
from models.evaluation import evaluate
from models.fitting import TextTable, encode, fit
from models.network import MultiTaskRanker
from pipelines.bench_train_data import (
    SimulatorData,
    load_simulator_data,
    quiet_training_logs,
    simulator_training_dir,
)
from pipelines.bench_train_report import table
from pipelines.training_step import LAYOUT

TEACHER = ModelConfig(architecture="mmoe", embedding_dim=32, num_experts=8,
                      expert_hidden=(256, 128), tower_hidden=(64,), text_projection_dim=64)
STUDENT = ModelConfig(architecture="shared_bottom", embedding_dim=16, expert_hidden=(64,),
                      tower_hidden=(16,), text_projection_dim=16)


def request_frame(model: LoadedModel, rows: pd.DataFrame, text: TextTable) -> dict[str, np.ndarray]:
    """What a served request carries: every column the model reads, text vectors included."""
    frame = {name: rows[name].to_numpy() for name in model.required_columns if name in rows}
    position = pd.Index(text.keys).get_indexer(rows["item_id"].to_numpy())
    frame["text_embedding"] = text.matrix[np.maximum(position, 0)]
    return frame


def median_ms(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each call, alternating between them so load affects all alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm-up
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(1e3 * (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in times.items()}


def latencies(models: dict[str, MultiTaskRanker], rows: pd.DataFrame, text: TextTable,
              repeats: int) -> dict[str, dict[str, float]]:
    """Serving latency of each model through a saved and reloaded artifact."""
    with tempfile.TemporaryDirectory() as folder:
        loaded = {}
        for name, model in models.items():
            save_artifact(model, Path(folder) / name, name=name, version="bench")
            loaded[name] = load_artifact(Path(folder) / name)
        frames = {name: request_frame(model, rows, text) for name, model in loaded.items()}
        encoded = {name: model.spec.encode(frames[name]) for name, model in loaded.items()}
        score = median_ms({name: (lambda m=model, f=frames[name]: m.score(f))
                           for name, model in loaded.items()}, repeats)
        forward = median_ms({name: (lambda m=model, e=encoded[name]: _forward(m, e))
                             for name, model in loaded.items()}, repeats)
    return {name: {"score_ms": score[name], "forward_ms": forward[name]} for name in models}


def _forward(model: LoadedModel, encoded) -> torch.Tensor:
    with torch.no_grad():
        return model.network.predict(torch.from_numpy(encoded.categorical),
                                     torch.from_numpy(encoded.numeric),
                                     torch.from_numpy(encoded.text))


def study(data: SimulatorData, seeds: Sequence[int], train_config: TrainConfig, alpha: float,
          candidates: int, repeats: int) -> None:
    text = TextTable(data.text_keys, data.text_matrix)
    results: dict[str, dict[str, list[float]]] = {"teacher": {}, "student distilled": {},
                                                  "student alone": {}}
    models: dict[str, MultiTaskRanker] = {}
    for seed in seeds:
        seeded = dataclasses.replace(train_config, seed=seed)
        teacher = fit(data.split.train, data.split.valid, LAYOUT, TEACHER, seeded, text=text,
                      progress=False)
        test = encode(data.split.holdout, teacher.model.spec, TEACHER, text)
        student, _ = distill(teacher.model, STUDENT, teacher.train_data, teacher.valid_data,
                             seeded, alpha=alpha, progress=False)
        alone, _ = distill(teacher.model, STUDENT, teacher.train_data, teacher.valid_data,
                           seeded, alpha=0.0, progress=False)
        models = {"teacher": teacher.model, "student distilled": student, "student alone": alone}
        for name, model in models.items():
            for task, metrics in evaluate(model, test).items():
                results[name].setdefault(f"{task} AUC", []).append(metrics["auc"])
        print(f"  seed {seed}: " + ", ".join(
            f"{name} {results[name][f'{task} AUC'][-1]:.4f}"
            for name in results for task in TEACHER.tasks), flush=True)
    rows = data.split.holdout.iloc[:candidates]
    timing = latencies(models, rows, text, repeats)
    for name, model in models.items():
        results[name]["parameters"] = [float(parameter_count(model))]
        results[name][f"score ms ({candidates} rows)"] = [timing[name]["score_ms"]]
        results[name]["forward ms"] = [timing[name]["forward_ms"]]
    print(table(results, "model"))
    for task in TEACHER.tasks:
        key = f"{task} AUC"
        gap = statistics.mean(results["teacher"][key]) - statistics.mean(
            results["student distilled"][key])
        print(f"{task}: student {100 * gap:.2f} AUC points below the teacher "
              f"({'within' if gap <= 0.005 else 'OUTSIDE'} the 0.5-point target)")
    for kind in ("score_ms", "forward_ms"):
        ratio = timing["teacher"][kind] / timing["student distilled"][kind]
        print(f"serving latency ({kind}): the student is {ratio:.2f}x faster "
              f"({'meets' if ratio >= 3 else 'MISSES'} the 3x target)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recforge bench train-distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training-dir", type=Path)
    parser.add_argument("--impressions", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.9,
                        help="weight of the teacher's labels (0.5 and 0.9 tried: 0.9 was better)")
    parser.add_argument("--candidates", type=int, default=100, help="rows per served request")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_training_logs()
    torch.set_num_threads(args.threads)
    directory = args.training_dir or simulator_training_dir(
        {"num_users": 20_000, "num_items": 5_000, "num_impressions": args.impressions})
    data = load_simulator_data(directory)
    print(f"teacher {TEACHER.architecture} {TEACHER.expert_hidden} x{TEACHER.num_experts}, "
          f"student {STUDENT.architecture} {STUDENT.expert_hidden}; alpha {args.alpha}; "
          f"{len(data.split.train)} training rows, {args.epochs} epochs", flush=True)
    study(data, range(1, args.seeds + 1), TrainConfig(epochs=args.epochs, patience=args.epochs),
          args.alpha, args.candidates, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
