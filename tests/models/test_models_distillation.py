import numpy as np
import pytest

from models.config import ModelConfig, TrainConfig
from models.distillation import distill, parameter_count, soft_targets
from models.evaluation import predict
from models.fitting import TextTable, encode
from pipelines.training_step import fit_ranker

from factories import synthetic_frame, synthetic_text_table

STUDENT = ModelConfig(architecture="shared_bottom", expert_hidden=(8,), embedding_dim=4,
                      tower_hidden=(), text_projection_dim=4)


@pytest.fixture(scope="module")
def teacher_and_data():
    frame = synthetic_frame(rows=12000)
    keys, matrix = synthetic_text_table()
    teacher, _ = fit_ranker(frame.iloc[:10000], frame.iloc[10000:], keys, matrix,
                            ModelConfig(expert_hidden=(32,), num_experts=2, embedding_dim=8),
                            TrainConfig(epochs=3, batch_size=512), progress=False)
    train_data, valid_data = (encode(part, teacher.spec, teacher.config, TextTable(keys, matrix))
                              for part in (frame.iloc[:10000], frame.iloc[10000:]))
    return teacher, train_data, valid_data


def test_soft_targets_blend_labels_with_the_teachers_predictions(teacher_and_data):
    teacher, train_data, _ = teacher_and_data
    blended = soft_targets(teacher, train_data, alpha=0.25)
    expected = 0.75 * train_data.labels + 0.25 * predict(teacher, train_data)
    np.testing.assert_allclose(blended.targets, expected, rtol=1e-6)
    np.testing.assert_array_equal(blended.labels, train_data.labels)


def test_a_distilled_student_is_smaller_and_learns_the_signal(teacher_and_data):
    teacher, train_data, valid_data = teacher_and_data
    student, result = distill(teacher, STUDENT, train_data, valid_data,
                              TrainConfig(epochs=3, batch_size=512), progress=False)
    assert parameter_count(student) < parameter_count(teacher) / 2
    assert result.validation["click"]["auc"] > 0.7


def test_the_teacher_weight_must_be_a_fraction(teacher_and_data):
    teacher, train_data, _ = teacher_and_data
    with pytest.raises(ValueError, match=r"alpha: .* must be in \[0, 1\]"):
        soft_targets(teacher, train_data, alpha=1.5)


def test_the_student_must_have_the_teachers_tasks(teacher_and_data):
    teacher, train_data, valid_data = teacher_and_data
    with pytest.raises(ValueError, match=r"student model.tasks \['click'\] must be the teacher's"):
        distill(teacher, ModelConfig(tasks=("click",)), train_data, valid_data, TrainConfig())
