import numpy as np
import pytest
import torch

from models.architectures import ARCHITECTURES
from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.evaluation import predict
from models.feature_spec import FeatureSpec
from models.network import MultiTaskRanker
from pipelines.training_step import LAYOUT, fit_ranker

from factories import synthetic_frame, synthetic_text_table

SMALL = {"expert_hidden": (16,), "num_experts": 2, "embedding_dim": 4, "tower_hidden": (8,),
         "text_projection_dim": 4}


def _model_and_data(architecture: str, rows: int = 300, **config):
    frame = synthetic_frame(rows=rows)
    keys, matrix = synthetic_text_table()
    spec = FeatureSpec.fit(frame, LAYOUT)
    model_config = ModelConfig(architecture=architecture, **{**SMALL, **config})
    data = TrainingData.from_frame(frame, spec, model_config.tasks, keys, matrix,
                                   task_types=model_config.task_types)
    return MultiTaskRanker(spec, model_config), data, frame


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_learns_the_synthetic_click_signal(architecture):
    frame = synthetic_frame(rows=12000)
    keys, matrix = synthetic_text_table()
    config = ModelConfig(architecture=architecture, expert_hidden=(32,), num_experts=2,
                         embedding_dim=8)
    _, result = fit_ranker(frame.iloc[:10000], frame.iloc[10000:], keys, matrix, config,
                           TrainConfig(epochs=3, batch_size=512), progress=False)
    assert result.validation["click"]["auc"] > 0.7


def test_single_task_networks_share_no_parameter():
    model, data, _ = _model_and_data("single_task")
    model(*data.batch(np.arange(64)))[:, 0].sum().backward()
    copy_size = model.embeddings.weight.numel() // 2
    assert model.embeddings.weight.grad[:copy_size].abs().sum() > 0
    assert model.embeddings.weight.grad[copy_size:].abs().sum() == 0
    text_rows = model.text_projection.weight.grad.shape[0] // 2
    assert model.text_projection.weight.grad[text_rows:].abs().sum() == 0
    assert all(p.grad is None or not p.grad.any() for p in model.body.nets[1].parameters())


def test_esmm_conversion_is_click_probability_times_conditional_conversion():
    model, data, _ = _model_and_data("esmm")
    batch = data.batch(np.arange(64))
    with torch.no_grad():
        probabilities = model.predict(*batch)
        representations = model.body(model._inputs(*batch))
        raw = [tower(r).squeeze(1) for tower, r in zip(model.towers, representations, strict=True)]
    expected = torch.sigmoid(raw[0]) * torch.sigmoid(raw[1])
    torch.testing.assert_close(probabilities[:, 1], expected, rtol=1e-4, atol=1e-6)
    assert torch.all(probabilities[:, 1] <= probabilities[:, 0])


def test_ple_stacks_the_configured_levels_and_only_the_last_has_no_shared_gate():
    model, _, _ = _model_and_data("ple", num_levels=3, specific_experts=2)
    levels = model.body.levels
    assert len(levels) == 3
    assert [level.shared_gate is None for level in levels] == [False, False, True]
    assert all(len(experts) == 2 for experts in levels[0].specific)
    assert levels[0].task_gates[0].out_features == 2 + SMALL["num_experts"]


def _dwell_frame(rows: int):
    frame = synthetic_frame(rows=rows)
    noise = np.random.default_rng(1).exponential(2.0, rows)
    frame["dwell"] = (10 + 8 * np.sin(frame["item_id"]) + noise).astype(np.float32)
    return frame


def _fit_dwell(task_type: str):
    frame = _dwell_frame(8000)
    keys, matrix = synthetic_text_table()
    config = ModelConfig(tasks=("click", "dwell"), task_types={"dwell": task_type}, **SMALL)
    model, result = fit_ranker(frame.iloc[:7000], frame.iloc[7000:], keys, matrix, config,
                               TrainConfig(epochs=3, batch_size=256), progress=False)
    valid = frame.iloc[7000:]
    data = TrainingData.from_frame(valid, model.spec, config.tasks, keys, matrix,
                                   task_types=config.task_types)
    return valid, result, predict(model, data)[:, 1]


def test_a_regression_task_fits_dwell_better_than_its_mean():
    valid, result, _ = _fit_dwell("regression")
    constant_rmse = float(np.sqrt(np.mean((valid["dwell"] - valid["dwell"].mean()) ** 2)))
    assert result.validation["dwell"]["rmse"] < 0.5 * constant_rmse
    assert "valid_rmse" in result.history[0] and "dwell" not in result.history[0]["valid_auc"]


def test_a_log1p_regression_task_predicts_non_negative_dwell_that_ranks_it():
    valid, result, predicted = _fit_dwell("regression_log1p")
    assert predicted.min() >= 0
    assert np.corrcoef(predicted, valid["dwell"])[0, 1] > 0.8
    assert result.validation["dwell"]["ndcg@10"] > 0


def test_a_binary_task_with_non_binary_labels_names_the_column_and_the_fix():
    model, _, frame = _model_and_data("mmoe")
    frame["click"] = frame["click"] * 2.5
    with pytest.raises(ValueError, match=r"'click' of a binary task.*model.task_types"):
        TrainingData.from_frame(frame, model.spec, ("click",), *synthetic_text_table())


def test_task_types_must_name_a_configured_task():
    with pytest.raises(ValueError, match=r"model.task_types.dwel: not one of model.tasks"):
        ModelConfig(task_types={"dwel": "regression"})


def test_unknown_task_type_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown type 'poisson'.*binary"):
        ModelConfig(tasks=("click", "dwell"), task_types={"dwell": "poisson"})


def test_esmm_needs_a_binary_first_task_and_a_later_one_that_implies_it():
    with pytest.raises(ValueError, match=r"model.tasks: esmm needs the first task binary"):
        ModelConfig(architecture="esmm", tasks=("click",))


@pytest.mark.parametrize("widths", [(16,), (16, 8)])
def test_experts_run_together_give_what_each_gives_alone(widths):
    from models.architectures import expert_outputs, mlp

    torch.manual_seed(0)
    experts = torch.nn.ModuleList(mlp(12, widths, dropout=0.0) for _ in range(3))
    x = torch.randn(5, 12)
    torch.testing.assert_close(expert_outputs(experts, x),
                               torch.stack([expert(x) for expert in experts], dim=1))
