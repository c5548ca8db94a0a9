import numpy as np
import pytest
import torch

from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.feature_spec import FeatureSpec
from models.network import MultiTaskRanker
from models.training import TrainingStep
from models.weighting import WEIGHTINGS, PCGrad
from pipelines.training_step import LAYOUT, fit_ranker

from factories import synthetic_frame, synthetic_text_table

SMALL = ModelConfig(expert_hidden=(16,), num_experts=2, embedding_dim=4, tower_hidden=(8,),
                    text_projection_dim=4)


def _model_and_data(rows: int = 400):
    frame = synthetic_frame(rows=rows)
    keys, matrix = synthetic_text_table()
    spec = FeatureSpec.fit(frame, LAYOUT)
    return MultiTaskRanker(spec, SMALL), TrainingData.from_frame(frame, spec, SMALL.tasks, keys,
                                                                 matrix)


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_every_task_weighting_learns_the_synthetic_click_signal(weighting):
    frame = synthetic_frame(rows=12000)
    keys, matrix = synthetic_text_table()
    config = ModelConfig(expert_hidden=(32,), num_experts=2, embedding_dim=8)
    _, result = fit_ranker(frame.iloc[:10000], frame.iloc[10000:], keys, matrix, config,
                           TrainConfig(epochs=3, batch_size=512, task_weighting=weighting),
                           progress=False)
    assert result.validation["click"]["auc"] > 0.7


def test_uncertainty_weighting_gives_the_task_with_the_larger_loss_less_weight():
    model, data = _model_and_data()
    step = TrainingStep(model, TrainConfig(task_weighting="uncertainty", learning_rate=0.05))
    for _ in range(30):
        step(data, np.arange(len(data)))
    precision = torch.exp(-step.weighting.log_variance.detach())
    # click's BCE is larger than that of the rarer conversion
    assert precision[0] < precision[1]


def test_pcgrad_leaves_no_conflict_between_the_update_and_either_task():
    torch.manual_seed(0)
    model, data = _model_and_data()
    click = model(*data.batch(np.arange(len(data))))[:, 0]
    label = torch.from_numpy(data.labels[:, 0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    # the second loss wants the opposite of the first: their body gradients conflict
    losses = torch.stack([bce(click, label), bce(click, 1 - label)])
    surgery = PCGrad(torch.ones(2), model)
    raw = [surgery._flat_grad(loss) for loss in losses]
    assert raw[0] @ raw[1] < 0
    surgery.backward(losses)
    update = torch.cat([p.grad.reshape(-1) for p in surgery.shared])
    assert all(update @ g >= -1e-6 * g.norm() * update.norm() for g in raw)
    assert all(p.grad is not None for p in model.towers[0].parameters())


def test_unknown_task_weighting_lists_the_choices():
    with pytest.raises(ValueError, match=r"train.task_weighting: unknown method 'gradnorm'.*pcgrad"):
        TrainConfig(task_weighting="gradnorm")


def test_task_weights_for_an_unknown_task_are_refused():
    model, _ = _model_and_data()
    with pytest.raises(ValueError, match=r"train.task_weights.clik: not one of model.tasks"):
        TrainingStep(model, TrainConfig(task_weights={"clik": 2.0}))
