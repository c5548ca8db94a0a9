"""Knowledge distillation: a small student learns from a larger teacher's per-task soft labels.

The student's training target is (1 - alpha) x label + alpha x the teacher's prediction. For
BCE and MSE, the loss on that blend equals the blend of the two losses up to a constant, so this
is "soft labels plus true labels" at the cost of one teacher pass over the training rows.
Validation and the best epoch use the true labels only.
"""

from __future__ import annotations

import torch

from models.config import ModelConfig, TrainConfig
from models.data import TrainingData
from models.evaluation import predict
from models.network import MultiTaskRanker
from models.training import TrainResult, train


def soft_targets(teacher: MultiTaskRanker, data: TrainingData, alpha: float) -> TrainingData:
    """`data` with targets blended from its labels and the teacher's predictions."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: the weight of the teacher's labels must be in [0, 1], got {alpha}")
    return data.with_targets((1.0 - alpha) * data.labels + alpha * predict(teacher, data))


def distill(
    teacher: MultiTaskRanker,
    student_config: ModelConfig,
    train_data: TrainingData,
    valid_data: TrainingData,
    train_config: TrainConfig,
    alpha: float = 0.5,
    progress: bool = True,
) -> tuple[MultiTaskRanker, TrainResult]:
    """A student with the teacher's features and tasks, trained on soft targets."""
    if student_config.tasks != teacher.config.tasks:
        raise ValueError(f"student model.tasks {list(student_config.tasks)} must be the teacher's "
                         f"{list(teacher.config.tasks)}")
    torch.manual_seed(train_config.seed)
    student = MultiTaskRanker(teacher.spec, student_config)
    result = train(student, soft_targets(teacher, train_data, alpha), valid_data, train_config,
                   progress=progress)
    return student, result


def parameter_count(model: MultiTaskRanker) -> int:
    return sum(p.numel() for p in model.parameters())
