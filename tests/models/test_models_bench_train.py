"""The training benchmarks: DeepCTR-Torch imported offline, same inputs, verdicts, end to end."""

import subprocess
import sys

import numpy as np
import pytest

from models.config import ModelConfig
from models.feature_spec import FeatureSpec
from models.fitting import TextTable, encode
from pipelines.bench_train import Run, main, target_checks
from pipelines.bench_train_data import SimulatorData
from pipelines.training_step import LAYOUT, time_split

from factories import synthetic_frame, synthetic_text_table

deepctr = pytest.importorskip("deepctr_torch", reason="the deepctr-torch extra is not installed")


def test_deepctr_is_imported_without_its_network_version_check():
    probe = (
        "import socket, threading\n"
        "def refuse(*a, **k): raise AssertionError('network')\n"
        "socket.socket.connect = refuse\n"
        "from pipelines.bench_train_deepctr import import_deepctr\n"
        "import_deepctr()\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_deepctr_sees_exactly_our_encoded_features():
    from pipelines.bench_train_deepctr import deepctr_inputs

    frame = synthetic_frame(rows=300)
    keys, matrix = synthetic_text_table()
    spec = FeatureSpec.fit(frame, LAYOUT)
    data = encode(frame, spec, ModelConfig(), TextTable(keys, matrix))
    inputs = deepctr_inputs(spec, data, embedding_dim=4)
    np.testing.assert_array_equal(inputs.features["item_id"], data.encoded.categorical[:, 1])
    np.testing.assert_array_equal(inputs.features["price"], data.encoded.numeric[:, -1])
    np.testing.assert_array_equal(inputs.features["text_embedding"], data.batch(np.arange(300))[2])
    assert [c.name for c in inputs.feature_columns][:2] == ["user_id", "item_id"]


def _runs(implementation, aucs, rate, architecture="mmoe"):
    return [Run("d", architecture, implementation, seed, {"click": a}, rate, 1)
            for seed, a in enumerate(aucs, 1)]


def test_target_checks_call_a_gap_inside_two_standard_errors_noise():
    runs = _runs("recforge-bf16", [0.760, 0.770, 0.765], 300) + _runs(
        "deepctr-torch", [0.764, 0.766, 0.768], 100)
    lines = target_checks(runs, ["click"], "recforge-bf16")
    assert "within noise" in lines[0]
    assert "3.00x DeepCTR-Torch (meets the 2x target)" in lines[1]


def test_target_checks_flag_a_slower_or_worse_model():
    runs = _runs("recforge-bf16", [0.700, 0.701, 0.700], 150) + _runs(
        "deepctr-torch", [0.760, 0.761, 0.760], 100)
    lines = target_checks(runs, ["click"], "recforge-bf16")
    assert "WORSE" in lines[0] and "MISSES" in lines[1]


def test_the_benchmark_runs_end_to_end_on_a_small_tabular_dataset(tmp_path, capsys):
    code = main(["--datasets", "tabular", "--tabular-rows", "3000", "--seeds", "2",
                 "--epochs", "1", "--architectures", "single_task", "mmoe",
                 "--cache-dir", str(tmp_path), "--json", str(tmp_path / "runs.json")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "recforge-bf16" in printed or "recforge-fp32" in printed
    assert "deepctr-torch" in printed and "mmoe throughput" in printed
    assert (tmp_path / "runs.json").is_file()


def _tiny_simulator() -> SimulatorData:
    frame = synthetic_frame(rows=6000)
    frame["request_id"] = np.arange(len(frame)) // 10
    keys, matrix = synthetic_text_table()
    return SimulatorData(time_split(frame, holdout_days=2), keys, matrix)


def test_the_cold_start_study_compares_layouts_with_and_without_text():
    from models.config import TrainConfig
    from pipelines.bench_train_coldstart import LAYOUTS, study

    frame = synthetic_frame(rows=6000)
    frame.loc[frame["ts"] > frame["ts"].quantile(0.7), "item_id"] += 40  # items new in the test days
    keys, matrix = synthetic_text_table(items=120)
    data = SimulatorData(time_split(frame, holdout_days=2), keys, matrix)
    small = ModelConfig(expert_hidden=(8,), num_experts=2, embedding_dim=4)
    results = study(data, [1], small, TrainConfig(epochs=1, batch_size=512))
    assert set(results) == set(LAYOUTS)
    assert {"cold click AUC", "warm click AUC"} <= set(results["ids only + text"])


def test_the_scenario_study_trains_alone_shared_and_with_scenario_gates():
    from models.config import TrainConfig
    from pipelines.bench_train_scenario import study

    results = study(_tiny_simulator(), "search", keep=0.5, seeds=[1],
                    train_config=TrainConfig(epochs=1, batch_size=512))
    assert list(results) == ["alone", "shared", "shared, scenario gates"]
    assert all(len(values["click AUC"]) == 1 for values in results.values())


def test_the_step_benchmark_times_each_optimizer_against_the_first(tmp_path, capsys):
    import pandas as pd

    from pipelines.bench_train_step import main as step_main

    frame = synthetic_frame(rows=3000)
    frame["request_id"] = np.arange(len(frame)) // 10
    frame.to_parquet(tmp_path / "training.parquet")
    keys, matrix = synthetic_text_table()
    pd.DataFrame({"item_id": keys, "text_embedding": list(matrix)}).to_parquet(
        tmp_path / "text_embeddings.parquet")
    assert step_main(["--training-dir", str(tmp_path), "--steps", "2", "--rounds", "1",
                      "--batch-size", "64", "--optimizers", "dense", "adam",
                      "--precisions", "float32"]) == 0
    printed = capsys.readouterr().out
    assert "dense, float32" in printed and "adam, float32" in printed and "1.00x" in printed


def test_the_distillation_study_reports_quality_size_and_latency(capsys):
    from models.config import TrainConfig
    from pipelines.bench_train_distill import study

    study(_tiny_simulator(), seeds=[1], train_config=TrainConfig(epochs=1, batch_size=512),
          alpha=0.9, candidates=20, repeats=2)
    printed = capsys.readouterr().out
    assert "student distilled" in printed and "parameters" in printed
    assert "serving latency (score_ms)" in printed
