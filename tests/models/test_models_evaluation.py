import numpy as np
import pytest

from models.config import ModelConfig
from models.data import TrainingData
from models.evaluation import evaluate, evaluate_by_scenario
from models.feature_spec import FeatureSpec
from models.network import MultiTaskRanker
from pipelines.training_step import LAYOUT

from factories import synthetic_frame, synthetic_text_table


def _model_and_frame():
    frame = synthetic_frame(rows=900)
    frame["request_id"] = np.arange(len(frame)) // 10
    spec = FeatureSpec.fit(frame, LAYOUT)
    config = ModelConfig(expert_hidden=(8,), num_experts=2, embedding_dim=4)
    return MultiTaskRanker(spec, config), frame


def test_metrics_per_scenario_equal_those_of_each_scenario_alone():
    model, frame = _model_and_frame()
    keys, matrix = synthetic_text_table()
    data = TrainingData.from_frame(frame, model.spec, model.config.tasks, keys, matrix,
                                   scenario_column="surface")
    per_surface = evaluate_by_scenario(model, data)
    assert sorted(per_surface) == ["home", "product_page", "search"]
    alone = TrainingData.from_frame(frame[frame["surface"] == "search"], model.spec,
                                    model.config.tasks, keys, matrix)
    assert per_surface["search"]["click"]["auc"] == pytest.approx(evaluate(model, alone)["click"]["auc"])


def test_every_binary_task_reports_ranking_fit_and_calibration_metrics():
    model, frame = _model_and_frame()
    data = TrainingData.from_frame(frame, model.spec, model.config.tasks, *synthetic_text_table())
    metrics = evaluate(model, data)["conversion"]
    assert {"auc", "gauc", "logloss", "calibration", "ece", "ndcg@10"} <= set(metrics)


def test_per_scenario_metrics_need_a_scenario_column():
    model, frame = _model_and_frame()
    data = TrainingData.from_frame(frame, model.spec, model.config.tasks, *synthetic_text_table())
    with pytest.raises(ValueError, match="no scenario column"):
        evaluate_by_scenario(model, data)
