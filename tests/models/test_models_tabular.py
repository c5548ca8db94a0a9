"""Any tabular multi-task dataset trains from a config file (pipelines.tabular)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models.artifact import load_artifact
from pipelines.config import ConfigError
from pipelines.tabular import main, train_tabular
from pipelines.tabular_config import load_tabular_config, tabular_config
from pipelines.tabular_data import DatasetError, load_split
from pipelines.tabular_synth import write_census_like

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "census_income.yaml"
TINY = ["--quiet"] + [
    arg for setting in ("train.epochs=2", "train.batch_size=128", "model.num_experts=2",
                        "model.expert_hidden=[16]")
    for arg in ("--set", setting)
]


@pytest.fixture()
def census_dir(tmp_path: Path) -> Path:
    """The example config next to generated files named like the UCI downloads."""
    shutil.copy(EXAMPLE, tmp_path / "census_income.yaml")
    write_census_like(tmp_path / "census-income.data.gz", rows=3000, seed=0)
    write_census_like(tmp_path / "census-income.test.gz", rows=1000, seed=1)
    return tmp_path


def _small_config(tmp_path: Path, frame: pd.DataFrame, **dataset) -> dict:
    frame.to_parquet(tmp_path / "data.parquet")
    return {
        "dataset": {"train": "data.parquet", "categorical": ["color"], "numeric": ["size"],
                    "labels": {"bought": {"column": "bought"}}, **dataset},
        "model": {"architecture": "shared_bottom", "expert_hidden": [8], "embedding_dim": 4},
        "train": {"epochs": 1, "batch_size": 128},
    }


def _shop_frame(rows: int = 1200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    color = rng.choice(["red", "green", "blue"], rows)
    size = rng.normal(size=rows)
    bought = (rng.random(rows) < np.where(color == "red", 0.6, 0.2)).astype(int)
    return pd.DataFrame({"color": color, "size": size, "bought": bought,
                         "spent": bought * np.exp(size + 2), "customer": rng.integers(0, 50, rows)})


def test_the_census_example_trains_from_the_config_file_alone(census_dir, capsys):
    code = main(["--config", str(census_dir / "census_income.yaml"), *TINY])
    assert code == 0
    printed = capsys.readouterr().out
    assert "income" in printed and "never_married" in printed
    model = load_artifact(census_dir / "census-mmoe")
    assert model.tasks == ("income", "never_married")
    assert "marital_stat" not in model.required_columns
    assert model.metrics["test"]["never_married"]["auc"] > 0.8


def test_a_parquet_dataset_with_a_regression_label_and_a_user_column(tmp_path):
    data = _small_config(tmp_path, _shop_frame(), user_column="customer")
    data["dataset"]["labels"]["spent"] = {"column": "spent", "type": "regression_log1p"}
    config = tabular_config(data, tmp_path)
    assert config.model.task_types == {"spent": "regression_log1p"}
    metrics = train_tabular(config, progress=False)
    assert np.isfinite(metrics["test"]["bought"]["gauc"])
    assert metrics["test"]["spent"]["rmse"] > 0


def test_a_missing_feature_column_is_named_with_the_columns_found(tmp_path):
    config = tabular_config(_small_config(tmp_path, _shop_frame(), categorical=["colour"]), tmp_path)
    missing = r"dataset.categorical: data.parquet has no column\(s\) \['colour'\]"
    with pytest.raises(DatasetError, match=missing):
        load_split(config)


def test_positive_values_that_never_occur_are_reported_with_the_values_seen(tmp_path):
    data = _small_config(tmp_path, _shop_frame())
    data["dataset"]["labels"]["bought"] = {"column": "color", "positive": ["purple"]}
    data["dataset"]["categorical"] = []
    with pytest.raises(DatasetError, match=r"positive: none of \['purple'\].*'blue'"):
        load_split(tabular_config(data, tmp_path))


def test_a_headerless_csv_without_column_names_says_how_to_name_them(census_dir):
    data = yaml.safe_load((census_dir / "census_income.yaml").read_text())
    del data["dataset"]["columns"]
    with pytest.raises(DatasetError, match=r"needs dataset.columns"):
        load_split(tabular_config(data, census_dir))


def test_text_in_a_numeric_column_is_refused_naming_the_column(tmp_path):
    frame = _shop_frame()
    frame["size"] = frame["size"].astype(str)
    frame.loc[3, "size"] = "large"
    with pytest.raises(DatasetError, match=r"column 'size' .* 'large'; declare it as categorical"):
        load_split(tabular_config(_small_config(tmp_path, frame), tmp_path))


def test_a_label_column_declared_as_a_feature_is_refused(tmp_path):
    data = _small_config(tmp_path, _shop_frame(), numeric=["size", "bought"])
    with pytest.raises(ConfigError, match=r"dataset: numeric: \['bought'\] are label columns"):
        tabular_config(data, tmp_path)


def test_model_tasks_other_than_the_labels_are_refused(tmp_path):
    data = _small_config(tmp_path, _shop_frame())
    data["model"]["tasks"] = ["click"]
    with pytest.raises(ConfigError, match=r"model.tasks: must be the dataset's label names \['bought'\]"):
        tabular_config(data, tmp_path)


def test_the_command_reports_a_bad_config_in_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: {train: missing.csv, numeric: [x], labels: {y: {column: y}}}\n")
    assert main(["--config", str(path), "--quiet"]) == 2
    assert "recforge train: dataset: no file at" in capsys.readouterr().err


def test_the_config_file_needs_a_dataset_section(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("model: {architecture: mmoe}\n")
    with pytest.raises(ConfigError, match=r"dataset.train"):
        load_tabular_config(path)
