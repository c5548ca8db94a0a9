"""The config file of `recforge train --config FILE`: a tabular dataset's schema, model and training.

```yaml
dataset:
  train: census-income.data.gz        # CSV (any compression pandas reads) or Parquet
  test: census-income.test.gz         # optional; otherwise test_fraction of train is held out
  columns: [age, class_of_worker, ...] # names for a CSV without a header line
  categorical: [class_of_worker, education, ...]
  numeric: [age, wage_per_hour, ...]
  log1p: [capital_gains]              # numeric columns scaled as log(1 + x)
  labels:                             # task name -> label column, type, positive values
    income: {column: income, positive: ["50000+."]}
    never_married: {column: marital_stat, positive: ["Never married"]}
  user_column: ""                     # optional: GAUC per user, NDCG per user
model: {architecture: mmoe, num_experts: 8}   # ModelConfig fields; tasks come from labels
train: {epochs: 5, batch_size: 1024}          # TrainConfig fields
output: census-mmoe                   # optional artifact directory
```

Relative paths are relative to the config file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.config import ModelConfig, TrainConfig
from models.tasks import TASK_TYPES
from pipelines.config import ConfigError, build, read_config_file


@dataclass(frozen=True)
class LabelSpec:
    """Where a task's label comes from. A binary task reads a 0/1 column, or, with `positive`,
    is 1 where the column's value (as text, stripped) is one of those values."""

    column: str
    type: str = "binary"
    positive: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"type: unknown task type {self.type!r}; choose one of {sorted(TASK_TYPES)}")
        if self.positive and self.type != "binary":
            raise ValueError("positive: only a binary task can list positive values")


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    header: bool = True
    skip_initial_space: bool = True
    na_values: tuple[str, ...] = ("?",)


@dataclass(frozen=True)
class DatasetConfig:
    train: str
    labels: dict[str, LabelSpec]
    test: str = ""
    format: str = "auto"
    columns: tuple[str, ...] = ()
    csv: CsvOptions = field(default_factory=CsvOptions)
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    log1p: tuple[str, ...] = ()
    user_column: str = ""
    list_column: str = ""
    scenario_column: str = ""
    valid_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 7
    max_rows: int = 0

    def __post_init__(self) -> None:
        if self.format not in ("auto", "csv", "parquet"):
            raise ValueError(f"format: {self.format!r} is not one of auto, csv, parquet")
        if not self.labels:
            raise ValueError("labels: declare at least one task, e.g. {click: {column: click}}")
        if not (self.categorical or self.numeric):
            raise ValueError("categorical / numeric: declare at least one feature column")
        label_columns = {spec.column for spec in self.labels.values()}
        for name in ("categorical", "numeric"):
            clash = sorted(label_columns & set(getattr(self, name)))
            if clash:
                raise ValueError(f"{name}: {clash} are label columns; a feature must not be a label")
        stray = sorted(set(self.log1p) - set(self.numeric))
        if stray:
            raise ValueError(f"log1p: {stray} are not in numeric")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise ValueError(f"categorical / numeric: {both} are declared as both")
        if not 0 < self.valid_fraction < 1:
            raise ValueError("valid_fraction: must be in (0, 1)")
        if not self.test and not 0 < self.test_fraction < 1 - self.valid_fraction:
            raise ValueError("test_fraction: must be in (0, 1 - valid_fraction) when there is no test file")
        if self.max_rows < 0:
            raise ValueError("max_rows: must be >= 0 (0 = every row)")


@dataclass(frozen=True)
class TabularConfig:
    dataset: DatasetConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: str = ""
    base_dir: str = "."

    def path(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path


def tabular_config(data: dict[str, Any], base_dir: Path = Path(".")) -> TabularConfig:
    """Build and validate; `model.tasks` / `task_types` default to the dataset's labels."""
    data = copy.deepcopy(data)
    labels = data.get("dataset", {}).get("labels") if isinstance(data.get("dataset"), dict) else None
    if isinstance(labels, dict):
        model = data.setdefault("model", {})
        if not isinstance(model, dict):
            raise ConfigError("model: expected a mapping of ModelConfig fields")
        tasks = list(labels)
        if model.get("tasks", tasks) != tasks:
            raise ConfigError(f"model.tasks: must be the dataset's label names {tasks} in that order "
                              "(or leave it out)")
        model["tasks"] = tasks
        model.setdefault("task_types", {
            task: spec.get("type", "binary") for task, spec in labels.items()
            if isinstance(spec, dict) and spec.get("type", "binary") != "binary"
        })
    data["base_dir"] = str(base_dir)
    return build(TabularConfig, data, "")


def load_tabular_config(path: Path) -> TabularConfig:
    data = read_config_file(path)
    dataset = data.get("dataset")
    if not isinstance(dataset, dict) or not dataset.get("train"):
        raise ConfigError(f"dataset.train: {path} must name the training file (CSV or Parquet) "
                          "in a dataset section; see `recforge train --help`")
    return tabular_config(data, Path(path).resolve().parent)
