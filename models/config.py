"""Typed configuration of a multi-task model and of its training run."""

from __future__ import annotations

from dataclasses import dataclass, field

# "dense": the tables join the Adam optimizer of the other weights (a dense gradient per step);
# the others are fused into the embedding backward, which updates only the rows a batch touched.
EMBEDDING_OPTIMIZERS = ("dense", "sgd", "adagrad", "rowwise_adagrad", "adam")


def _require(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{field_name}: {message}")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network: shared encoders, the multi-task body and the task towers."""

    architecture: str = "mmoe"
    tasks: tuple[str, ...] = ("click", "conversion")
    embedding_dim: int = 16
    num_experts: int = 4
    expert_hidden: tuple[int, ...] = (128, 64)
    tower_hidden: tuple[int, ...] = (32,)
    text_projection_dim: int = 32
    dropout: float = 0.0
    embedding_backend: str = "auto"

    def __post_init__(self) -> None:
        from models.architectures import ARCHITECTURES

        _require(
            self.architecture in ARCHITECTURES,
            "model.architecture",
            f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}",
        )
        _require(len(self.tasks) >= 1, "model.tasks", "name at least one task")
        _require(len(set(self.tasks)) == len(self.tasks), "model.tasks", "task names must be unique")
        _require(self.embedding_dim >= 1, "model.embedding_dim", "must be >= 1")
        _require(self.num_experts >= 1, "model.num_experts", "must be >= 1")
        _require(
            len(self.expert_hidden) >= 1 and min(self.expert_hidden) >= 1,
            "model.expert_hidden",
            "give one or more positive layer widths, e.g. [128, 64]",
        )
        _require(
            all(width >= 1 for width in self.tower_hidden),
            "model.tower_hidden",
            "layer widths must be positive, e.g. [32]",
        )
        _require(self.text_projection_dim >= 1, "model.text_projection_dim", "must be >= 1")
        _require(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        _require(
            self.embedding_backend in ("auto", "reference", "cpu", "cuda", "triton"),
            "model.embedding_backend",
            "choose one of auto, reference, cpu, cuda, triton",
        )


@dataclass(frozen=True)
class TrainConfig:
    """How a model is fitted: batches, optimisers, early stopping, seed.

    Dense layers use Adam (`learning_rate`); embedding tables use `embedding_optimizer` at
    `embedding_learning_rate`.
    """

    batch_size: int = 2048
    epochs: int = 3
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 0
    seed: int = 7
    task_weights: dict[str, float] = field(default_factory=dict)
    threads: int = 0
    # fused (lazy) Adam: the validation AUC of dense Adam at the same speed; row-wise Adagrad was
    # 0.4-1 click-AUC points lower on the default world at learning rates 0.01-0.1
    embedding_optimizer: str = "adam"
    embedding_learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        _require(self.epochs >= 1, "train.epochs", "must be >= 1")
        _require(self.learning_rate > 0, "train.learning_rate", "must be > 0")
        _require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _require(self.patience >= 0, "train.patience", "must be >= 0")
        _require(self.threads >= 0, "train.threads", "must be >= 0 (0 = torch's default)")
        _require(
            self.embedding_optimizer in EMBEDDING_OPTIMIZERS,
            "train.embedding_optimizer",
            f"choose one of {', '.join(EMBEDDING_OPTIMIZERS)} (dense = Adam with the other weights)",
        )
        _require(self.embedding_learning_rate > 0, "train.embedding_learning_rate", "must be > 0")
        for task, weight in self.task_weights.items():
            _require(weight >= 0, f"train.task_weights.{task}", "must be >= 0")
