import numpy as np
import pytest
import torch

from models.architectures import Gate
from models.config import ModelConfig, TrainConfig
from models.feature_spec import FeatureSpec
from models.network import MultiTaskRanker
from pipelines.training_step import LAYOUT, fit_ranker

from factories import synthetic_frame, synthetic_text_table


@pytest.mark.parametrize("architecture", ["mmoe", "ple"])
def test_scenario_aware_gating_learns_the_synthetic_click_signal(architecture):
    frame = synthetic_frame(rows=12000)
    keys, matrix = synthetic_text_table()
    config = ModelConfig(architecture=architecture, expert_hidden=(32,), num_experts=2,
                         embedding_dim=8, scenario_feature="surface")
    model, result = fit_ranker(frame.iloc[:10000], frame.iloc[10000:], keys, matrix, config,
                               TrainConfig(epochs=3, batch_size=512), progress=False)
    assert result.validation["click"]["auc"] > 0.7
    gate = model.body.gates[0] if architecture == "mmoe" else model.body.levels[0].task_gates[0]
    per_scenario = gate.per_scenario.weight.view(-1, gate.out_features, gate.in_features)
    assert per_scenario[1:].abs().sum() > 0  # the three surfaces learned their own terms


def test_an_unseen_scenario_uses_the_shared_gate():
    torch.manual_seed(0)
    gate = Gate(input_dim=5, num_experts=3, num_scenarios=4)
    with torch.no_grad():
        gate.per_scenario.weight.view(4, 3, 5)[1:].normal_()
    x = torch.randn(6, 5)
    unseen = torch.zeros(6, dtype=torch.int64)
    torch.testing.assert_close(gate(x, unseen), torch.nn.functional.linear(x, gate.weight, gate.bias))
    assert not torch.allclose(gate(x, unseen + 2), gate(x, unseen))


def test_scenario_gating_needs_a_gated_architecture():
    with pytest.raises(ValueError, match=r"model.scenario_feature: .*gated architecture.*mmoe"):
        ModelConfig(architecture="shared_bottom", scenario_feature="surface")


def test_the_scenario_feature_must_be_a_categorical_feature():
    spec = FeatureSpec.fit(synthetic_frame(rows=200), LAYOUT)
    with pytest.raises(ValueError, match=r"model.scenario_feature: 'price' is not a categorical"):
        MultiTaskRanker(spec, ModelConfig(scenario_feature="price"))


def test_a_scenario_aware_model_scores_rows_of_every_surface():
    spec = FeatureSpec.fit(synthetic_frame(rows=200), LAYOUT)
    model = MultiTaskRanker(spec, ModelConfig(scenario_feature="surface", expert_hidden=(8,)))
    encoded = spec.encode(synthetic_frame(rows=30, seed=5), with_text=False)
    outputs = model.predict(torch.from_numpy(encoded.categorical),
                            torch.from_numpy(encoded.numeric), torch.zeros(30, 384))
    assert outputs.shape == (30, 2) and np.all(np.isfinite(outputs.detach().numpy()))
