import numpy as np
import pytest
import torch

from models.config import ModelConfig, TrainConfig
from pipelines.training_step import fit_ranker, time_split

from factories import synthetic_frame, synthetic_text_table


def test_training_is_reproducible_with_the_same_seed():
    frame = synthetic_frame(rows=3000)
    keys, matrix = synthetic_text_table()
    config = ModelConfig(expert_hidden=(16,), num_experts=2, embedding_dim=4)
    runs = [
        fit_ranker(frame.iloc[:2500], frame.iloc[2500:], keys, matrix, config,
                   TrainConfig(epochs=1, batch_size=256, seed=11), progress=False)[1]
        for _ in range(2)
    ]
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]


def test_time_split_keeps_the_last_day_for_holdout_and_the_day_before_for_validation():
    frame = synthetic_frame(rows=3000)
    split = time_split(frame, holdout_days=1)
    assert split.train["ts"].max() < split.valid["ts"].min()
    assert split.valid["ts"].max() < split.holdout["ts"].min()
    assert len(split.train) + len(split.valid) + len(split.holdout) == len(frame)


def test_unknown_architecture_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"model.architecture: unknown architecture 'mmeo'.*mmoe"):
        ModelConfig(architecture="mmeo")


def test_time_split_on_too_short_data_explains_the_need():
    frame = synthetic_frame(rows=100)
    frame = frame[frame["ts"] < frame["ts"].min() + np.timedelta64(1, "D")]
    with pytest.raises(ValueError, match="too few"):
        time_split(frame, holdout_days=1)


def _tiny_model_and_data(rows: int = 600):
    from models.data import TrainingData
    from models.feature_spec import FeatureSpec
    from models.network import MultiTaskRanker
    from pipelines.training_step import LAYOUT

    frame = synthetic_frame(rows=rows)
    keys, matrix = synthetic_text_table()
    spec = FeatureSpec.fit(frame, LAYOUT)
    model = MultiTaskRanker(spec, ModelConfig(expert_hidden=(8,), num_experts=2, embedding_dim=4))
    return model, TrainingData.from_frame(frame, spec, ("click", "conversion"), keys, matrix)


def test_fused_embedding_optimizer_updates_only_touched_rows_without_a_dense_gradient():
    from models.training import TrainingStep

    model, data = _tiny_model_and_data()
    step = TrainingStep(model, TrainConfig(embedding_optimizer="rowwise_adagrad"))
    users = model.embeddings.table(0)  # user_id is the first table
    before = users.detach().clone()
    rows = np.arange(64)
    step(data, rows)
    seen = np.unique(data.encoded.categorical[rows, 0])
    unseen = np.setdiff1d(np.arange(users.shape[0]), seen)
    assert model.embeddings.weight.grad is None
    assert not torch.equal(users[seen], before[seen])
    assert torch.equal(users[unseen], before[unseen])


def test_training_leaves_no_optimizer_state_in_the_model():
    from models.network import MultiTaskRanker
    from models.training import train

    model, data = _tiny_model_and_data()
    fresh_keys = set(MultiTaskRanker(model.spec, model.config).state_dict())
    train(model, data, data, TrainConfig(epochs=1, batch_size=256), progress=False)
    assert set(model.state_dict()) == fresh_keys


def test_unknown_embedding_optimizer_names_the_choices():
    with pytest.raises(ValueError, match=r"train.embedding_optimizer: choose one of dense, sgd"):
        TrainConfig(embedding_optimizer="lamb")


def test_precision_float32_never_autocasts_and_bfloat16_always_does():
    from models.training import uses_bfloat16

    cpu = torch.device("cpu")
    assert not uses_bfloat16("float32", cpu)
    assert uses_bfloat16("bfloat16", cpu)


def test_bfloat16_training_keeps_float32_weights():
    from models.training import TrainingStep

    model, data = _tiny_model_and_data()
    TrainingStep(model, TrainConfig(precision="bfloat16"))(data, np.arange(64))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match=r"train.precision: choose one of auto, float32, bfloat16"):
        TrainConfig(precision="float16")
