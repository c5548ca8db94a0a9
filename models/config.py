"""Typed configuration of a multi-task model and of its training run."""

from __future__ import annotations

from dataclasses import dataclass, field

# "dense": the tables join the Adam optimizer of the other weights (a dense gradient per step);
# the others are fused into the embedding backward, which updates only the rows a batch touched.
EMBEDDING_OPTIMIZERS = ("dense", "sgd", "adagrad", "rowwise_adagrad", "adam")
PRECISIONS = ("auto", "float32", "bfloat16")


def _require(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{field_name}: {message}")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network: shared encoders, the multi-task body and the task towers.

    `tasks` name label columns; `task_types` maps a task to "binary" (the default),
    "regression" or "regression_log1p". `num_experts` is MMoE's expert count and PLE's shared
    experts per level; PLE adds `specific_experts` per task per level, over `num_levels` levels.
    `scenario_feature` (a categorical column, e.g. surface) makes MMoE's / PLE's gates
    scenario-aware: each scenario adds its own term to every gate.
    """

    architecture: str = "mmoe"
    tasks: tuple[str, ...] = ("click", "conversion")
    task_types: dict[str, str] = field(default_factory=dict)
    embedding_dim: int = 16
    num_experts: int = 4
    specific_experts: int = 1
    num_levels: int = 2
    expert_hidden: tuple[int, ...] = (128, 64)
    tower_hidden: tuple[int, ...] = (32,)
    text_projection_dim: int = 32
    dropout: float = 0.0
    embedding_backend: str = "auto"
    scenario_feature: str = ""

    def __post_init__(self) -> None:
        from models.architectures import ARCHITECTURES
        from models.tasks import TASK_TYPES

        _require(
            self.architecture in ARCHITECTURES,
            "model.architecture",
            f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}",
        )
        _require(len(self.tasks) >= 1, "model.tasks", "name at least one task")
        _require(len(set(self.tasks)) == len(self.tasks), "model.tasks", "task names must be unique")
        for task, kind in self.task_types.items():
            _require(task in self.tasks, f"model.task_types.{task}",
                     f"not one of model.tasks {list(self.tasks)}")
            _require(kind in TASK_TYPES, f"model.task_types.{task}",
                     f"unknown type {kind!r}; choose one of {sorted(TASK_TYPES)}")
        if ARCHITECTURES[self.architecture].chain_tasks:
            binary = [task for task in self.tasks if self.type_of(task) == "binary"]
            _require(
                len(binary) >= 2 and binary[0] == self.tasks[0],
                "model.tasks",
                f"{self.architecture} needs the first task binary (e.g. click) and a later binary "
                "task that implies it (e.g. conversion)",
            )
        _require(
            not self.scenario_feature or ARCHITECTURES[self.architecture].gated,
            "model.scenario_feature",
            "scenario-aware gating needs a gated architecture: one of "
            f"{sorted(n for n, a in ARCHITECTURES.items() if a.gated)}",
        )
        _require(self.embedding_dim >= 1, "model.embedding_dim", "must be >= 1")
        _require(self.num_experts >= 1, "model.num_experts", "must be >= 1")
        _require(self.specific_experts >= 1, "model.specific_experts", "must be >= 1")
        _require(self.num_levels >= 1, "model.num_levels", "must be >= 1")
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

    def type_of(self, task: str) -> str:
        return self.task_types.get(task, "binary")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is fitted: batches, optimisers, early stopping, seed.

    Dense layers use Adam (`learning_rate`); embedding tables use `embedding_optimizer` at
    `embedding_learning_rate`. `task_weighting` ("fixed", "uncertainty", "pcgrad") combines the
    per-task losses; `task_weights` scale them (default 1 per task).
    """

    batch_size: int = 2048
    epochs: int = 3
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    patience: int = 0
    seed: int = 7
    task_weights: dict[str, float] = field(default_factory=dict)
    task_weighting: str = "fixed"
    threads: int = 0
    # fused (lazy) Adam: the validation AUC of dense Adam at the same speed (row-wise Adagrad was
    # 0.4-1 click-AUC points lower at learning rates 0.01-0.1). A low table learning rate keeps
    # the ids from overfitting in the first epoch: on the default world's holdout 1e-4 gave
    # click/conversion AUC 0.777/0.831 against 0.773/0.824 at 2e-3 (3 epochs, best kept)
    embedding_optimizer: str = "adam"
    embedding_learning_rate: float = 1e-4
    # bfloat16 autocast of the forward: same AUC on the default world and the Census stand-in,
    # 1.4-1.6x the samples/s on this AVX512-BF16 CPU; "auto" uses it where it is native
    precision: str = "auto"

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
        _require(self.precision in PRECISIONS, "train.precision",
                 f"choose one of {', '.join(PRECISIONS)}")
        from models.weighting import WEIGHTINGS

        _require(self.task_weighting in WEIGHTINGS, "train.task_weighting",
                 f"unknown method {self.task_weighting!r}; choose one of {sorted(WEIGHTINGS)}")
        for task, weight in self.task_weights.items():
            _require(weight >= 0, f"train.task_weights.{task}", "must be >= 0")
