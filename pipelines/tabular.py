"""`recforge train --config FILE`: train a multi-task model on any tabular dataset from a config file.

    recforge train --config examples/census_income.yaml
    recforge train --config my_data.yaml --output models/v1 --set model.architecture=ple

The config declares the files, the feature columns, the labels with their task types, the model
and the training (format: `pipelines.tabular_config`). Prints per-task validation and test
metrics; with `output` (in the file or --output) saves the model artifact there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from models.artifact import ArtifactError, save_artifact
from models.evaluation import evaluate
from models.fitting import encode, fit
from pipelines.config import ConfigError
from pipelines.tabular_config import TabularConfig, load_tabular_config, tabular_config
from pipelines.tabular_data import DatasetError, data_columns, layout, load_split


def train_tabular(config: TabularConfig, progress: bool = True) -> dict[str, Any]:
    """Fit on the train part, keep the best epoch on validation, measure the test part; save the
    artifact when `config.output` is set. Returns the metrics."""
    split = load_split(config)
    columns = data_columns(config.dataset)
    fitted = fit(split.train, split.valid, layout(config.dataset), config.model, config.train,
                 columns=columns, progress=progress)
    test = evaluate(fitted.model, encode(split.test, fitted.model.spec, config.model, None, columns))
    metrics = {
        "validation": fitted.result.validation,
        "test": test,
        "best_epoch": fitted.result.best_epoch,
        "history": fitted.result.history,
        "rows": {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "samples_per_second": fitted.result.samples_per_second,
    }
    if config.output:
        save_artifact(fitted.model, config.path(config.output), name=Path(config.output).name,
                      version="1", metrics=metrics)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True,
                        help="YAML file with dataset, model and train sections")
    parser.add_argument("--output", type=Path, help="artifact directory (overrides the file's)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override one field, e.g. model.architecture=ple (value in YAML)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        config = _with_overrides(load_tabular_config(args.config), args.set, args.output)
        metrics = train_tabular(config, progress=not args.quiet)
    except (ConfigError, DatasetError, ArtifactError) as error:
        print(f"recforge train: {error}", file=sys.stderr)
        return 2
    print(_summary(config, metrics))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recforge train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _with_overrides(config: TabularConfig, assignments: list[str], output: Path | None
                    ) -> TabularConfig:
    if not assignments and output is None:
        return config
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"--set {assignment}: write SECTION.FIELD=VALUE, e.g. train.epochs=3")
        *sections, name = key.split(".")
        target = data
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = yaml.safe_load(value)
    if output is not None:
        data["output"] = str(output.resolve())
    return tabular_config(data, Path(config.base_dir))


def _summary(config: TabularConfig, metrics: dict[str, Any]) -> str:
    lines = [f"{config.model.architecture}: {metrics['rows']['train']} training rows, best epoch "
             f"{metrics['best_epoch']}, {metrics['samples_per_second']:.0f} samples/s"]
    for task in config.model.tasks:
        valid, test = metrics["validation"][task], metrics["test"][task]
        key = "auc" if "auc" in test else "rmse"
        lines.append(f"  {task:<20} valid {key} {valid[key]:.4f}   test {key} {test[key]:.4f}")
    if config.output:
        lines.append(f"  artifact: {config.path(config.output)}")
    return "\n".join(lines)
