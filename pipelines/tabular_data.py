"""Reading a tabular multi-task dataset as its config declares it: files, labels, feature layout, split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.feature_spec import FeatureLayout
from models.fitting import DataColumns
from pipelines.tabular_config import DatasetConfig, TabularConfig


class DatasetError(ValueError):
    """The files do not match the declared schema; the message names the column and the fix."""


@dataclass(frozen=True)
class TabularSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def layout(dataset: DatasetConfig) -> FeatureLayout:
    """Every feature comes with the request: a tabular row has no user or item lookup."""
    return FeatureLayout(
        categorical={name: "request" for name in dataset.categorical},
        numeric={name: "request" for name in dataset.numeric},
        log1p=frozenset(dataset.log1p),
    )


def data_columns(dataset: DatasetConfig) -> DataColumns:
    return DataColumns(
        user=dataset.user_column or None,
        list=dataset.list_column or None,
        scenario=dataset.scenario_column or None,
    )


def read_table(path: Path, dataset: DatasetConfig) -> pd.DataFrame:
    """One file as declared: labels derived, categorical columns as text; checked against the schema."""
    if not path.is_file():
        raise DatasetError(f"dataset: no file at {path}")
    kind = dataset.format
    if kind == "auto":
        kind = "parquet" if path.suffix in (".parquet", ".pq") else "csv"
    if kind == "parquet":
        frame = pd.read_parquet(path)
    else:
        options = dataset.csv
        frame = pd.read_csv(
            path,
            sep=options.delimiter,
            header=0 if options.header else None,
            names=list(dataset.columns) or None,
            skipinitialspace=options.skip_initial_space,
            na_values=list(options.na_values),
            nrows=dataset.max_rows or None,
            low_memory=False,
        )
    if dataset.max_rows:
        frame = frame.iloc[: dataset.max_rows]
    _check_columns(frame, dataset, path)
    return _prepared(frame, dataset, path)


def load_split(config: TabularConfig) -> TabularSplit:
    """Train / validation / test frames: the test file when given, else a random share of train;
    validation is a random share of the rest (seeded by `split_seed`)."""
    dataset = config.dataset
    frame = read_table(config.path(dataset.train), dataset)
    rng = np.random.default_rng(dataset.split_seed)
    if dataset.test:
        test = read_table(config.path(dataset.test), dataset)
    else:
        is_test = rng.random(len(frame)) < dataset.test_fraction
        frame, test = frame[~is_test], frame[is_test]
    is_valid = rng.random(len(frame)) < dataset.valid_fraction
    split = TabularSplit(frame[~is_valid], frame[is_valid], test)
    for name in ("train", "valid", "test"):
        if len(getattr(split, name)) == 0:
            raise DatasetError(f"dataset: the {name} part is empty; use more rows or other fractions")
    return split


def _check_columns(frame: pd.DataFrame, dataset: DatasetConfig, path: Path) -> None:
    needed = {
        "categorical": dataset.categorical,
        "numeric": dataset.numeric,
        "labels": tuple(spec.column for spec in dataset.labels.values()),
        "user_column": (dataset.user_column,) if dataset.user_column else (),
        "list_column": (dataset.list_column,) if dataset.list_column else (),
        "scenario_column": (dataset.scenario_column,) if dataset.scenario_column else (),
    }
    for field_name, columns in needed.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            hint = ("; a CSV without a header line needs dataset.columns (and csv.header: false)"
                    if not dataset.columns else "")
            raise DatasetError(
                f"dataset.{field_name}: {path.name} has no column(s) {missing}; it has "
                f"{list(frame.columns)[:50]}{hint}"
            )


def _prepared(frame: pd.DataFrame, dataset: DatasetConfig, path: Path) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for task, spec in dataset.labels.items():
        out[task] = _label(frame[spec.column], task, spec.positive, path)
    for name in dataset.categorical:
        column = frame[name]
        out[name] = column.astype(str).str.strip().where(column.notna(), None)
    for name in dataset.numeric:
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = values.isna() & frame[name].notna()
        if bad.any():
            raise DatasetError(
                f"dataset.numeric: column {name!r} of {path.name} has non-numeric values such as "
                f"{frame[name][bad].iloc[0]!r}; declare it as categorical or clean it"
            )
        out[name] = values.astype(np.float32)
    for name in {dataset.user_column, dataset.list_column, dataset.scenario_column} - {""}:
        out[name] = frame[name].to_numpy()
    return out.reset_index(drop=True)


def _label(column: pd.Series, task: str, positive: tuple[str, ...], path: Path) -> np.ndarray:
    if positive:
        text = column.astype(str).str.strip()
        if not text.isin(positive).any():
            raise DatasetError(
                f"dataset.labels.{task}.positive: none of {list(positive)} occurs in column "
                f"{column.name!r} of {path.name}; its values include {sorted(text.unique())[:10]}"
            )
        return text.isin(positive).to_numpy(dtype=np.float32)
    values = pd.to_numeric(column, errors="coerce")
    if values.isna().any():
        raise DatasetError(
            f"dataset.labels.{task}: column {column.name!r} of {path.name} has missing or "
            "non-numeric labels; list the values meaning 1 under positive, or clean the column"
        )
    return values.to_numpy(dtype=np.float32)
