"""The pipeline's steps as plain functions of paths and the run config (kfp wraps them thinly).

Every step returns a small JSON-able summary that becomes its output artifact's metadata, with the
step's wall time under `seconds`; the report reads those back.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.config import RunConfig

log = logging.getLogger(__name__)


def _timed(step: Callable[..., dict]) -> Callable[..., dict]:
    @functools.wraps(step)
    def wrapper(*args: Any, **kwargs: Any) -> dict:
        _configure_logging()
        started = time.perf_counter()
        summary = step(*args, **kwargs)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        log.info("%s finished in %.1f s", step.__name__, summary["seconds"])
        return summary

    return wrapper


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "feast", "httpx", "urllib3", "kserve"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config(config_json: str) -> RunConfig:
    return RunConfig.from_json(config_json)


def _write_json(path: Path | str, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@_timed
def simulate(config_json: str, raw_dir: str) -> dict:
    """Simulated events, or a copy of the user's files when `data_dir` is set."""
    from pipelines.simulator import simulate as run_simulation

    config = _config(config_json)
    if config.data_dir:
        shutil.copytree(config.data_dir, raw_dir)
        return {"source": config.data_dir}
    return _plain(run_simulation(config.simulation, Path(raw_dir))) | {"source": "simulator"}


@_timed
def check_data(
    config_json: str, raw_dir: str, results_path: str, docs_dir: str, output_dir: str
) -> dict:
    from pipelines.data_checks import enforce, run_data_checks

    result = run_data_checks(Path(raw_dir), _config(config_json).data_checks, Path(docs_dir))
    _write_json(results_path, result.to_dict())
    if output_dir:
        _write_json(Path(output_dir) / "data_checks.json", result.to_dict())
        shutil.copytree(docs_dir, Path(output_dir) / "data_docs", dirs_exist_ok=True)
    enforce(result)
    return {"success": result.success, "failed": len(result.failed_expectations)}


@_timed
def build_feature_store(config_json: str, raw_dir: str, store_dir: str) -> dict:
    from pipelines import features

    config = _config(config_json).features
    tables = features.build_feature_tables(Path(raw_dir), Path(store_dir), config)
    store = features.create_store(Path(store_dir), config)
    features.materialize(store, tables.end)
    return {"feature_views": len(store.list_feature_views()), "end": tables.end.isoformat()}


@_timed
def build_training_set(config_json: str, raw_dir: str, store_dir: str, output_dir: str) -> dict:
    from pipelines import features

    store = features.open_store(Path(store_dir))
    events = features.read_events(Path(raw_dir))
    frame = features.training_frame(store, events)
    texts = features.item_text_embeddings(store, events["item_id"].unique())
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    frame.to_parquet(Path(output_dir) / "training.parquet", index=False)
    texts.to_parquet(Path(output_dir) / "text_embeddings.parquet", index=False)
    return {"rows": len(frame), "events": len(events), "columns": len(frame.columns)}


def _train(config_json: str, training_dir: str, output: str, *, name: str,
           train_days: int | None) -> dict:
    from pipelines.training_step import train_and_save

    config = _config(config_json)
    version = f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    metrics = train_and_save(
        Path(training_dir) / "training.parquet",
        Path(training_dir) / "text_embeddings.parquet",
        Path(output),
        model_config=config.model,
        train_config=config.train,
        holdout_days=config.holdout_days,
        train_days=train_days,
        name="ranker",
        version=version,
    )
    return {"version": version, "train_rows": metrics["train_rows"],
            "best_epoch": metrics["best_epoch"],
            "samples_per_second": round(metrics["samples_per_second"], 1)}


@_timed
def train_candidate(config_json: str, training_dir: str, output: str) -> dict:
    return _train(config_json, training_dir, output, name="candidate", train_days=None)


@_timed
def resolve_baseline(config_json: str, registry_dir: str, training_dir: str, output: str) -> dict:
    """The served model when the registry has one; otherwise bootstrap one on older data."""
    from models.artifact import copy_artifact, load_artifact
    from pipelines.registry import ModelRegistry

    config = _config(config_json)
    registry = ModelRegistry(Path(registry_dir)) if registry_dir else None
    served = registry.serving() if registry else None
    if served is not None:
        copy_artifact(served, Path(output))
        return {"version": load_artifact(served).version, "source": "registry"}
    training_days = config.simulation.days - config.holdout_days - 1
    train_days = config.baseline_days or max(1, training_days // 2)
    summary = _train(config_json, training_dir, output, name="baseline", train_days=train_days)
    if registry:
        registry.register(Path(output), summary["version"])
        registry.set_serving(summary["version"])
    return summary | {"source": f"bootstrapped on the first {train_days} days"}


@_timed
def evaluate(config_json: str, training_dir: str, candidate_dir: str, baseline_dir: str,
             output: str) -> dict:
    from models.artifact import load_artifact
    from pipelines.evaluation import bless, popularity_auc
    from pipelines.training_step import holdout_metrics, load_text_table, time_split

    config = _config(config_json)
    frame = pd.read_parquet(Path(training_dir) / "training.parquet")
    split = time_split(frame, config.holdout_days)
    text_keys, text_matrix = load_text_table(Path(training_dir) / "text_embeddings.parquet")
    candidate = load_artifact(Path(candidate_dir))
    baseline = load_artifact(Path(baseline_dir))
    metrics = {
        "candidate": holdout_metrics(candidate.network, split.holdout, text_keys, text_matrix),
        "baseline": holdout_metrics(baseline.network, split.holdout, text_keys, text_matrix),
        "popularity": popularity_auc(split.train, split.holdout, config.model.tasks),
    }
    blessing = bless(metrics["candidate"], metrics["baseline"], config.blessing)
    evaluation = {
        "metrics": metrics,
        "holdout_rows": len(split.holdout),
        "candidate_version": candidate.version,
        "baseline_version": baseline.version,
        **blessing.to_dict(),
    }
    _write_json(output, evaluation)
    return {"blessed": blessing.blessed}


@_timed
def canary(config_json: str, registry_dir: str, store_dir: str, candidate_dir: str,
           baseline_dir: str, evaluation_path: str, output: str) -> dict:
    """Blessed candidates face the served model online; the decision updates the registry."""
    from models.artifact import load_artifact
    from pipelines.online_ab import run_canary
    from pipelines.registry import ModelRegistry
    from pipelines.simulator import World

    config = _config(config_json)
    evaluation = json.loads(Path(evaluation_path).read_text())
    skip_reason = (
        "the candidate was not blessed" if not evaluation["blessed"]
        else "no simulated users to play against file data" if config.data_dir else None
    )
    if skip_reason:
        _write_json(output, {"decision": "skipped", "reason": skip_reason, "arms": {}})
        return {"decision": "skipped"}
    workdir = Path(output).parent / "canary-work"
    report = run_canary(
        Path(baseline_dir), Path(candidate_dir), Path(store_dir),
        World.from_config(config.simulation), config.canary, workdir,
    )
    result = report.to_dict()
    if result["decision"] == "promote" and registry_dir:
        registry = ModelRegistry(Path(registry_dir))
        version = load_artifact(Path(candidate_dir)).version
        registry.register(Path(candidate_dir), version)
        registry.set_serving(version)
        result["served_version"] = version
    _write_json(output, result)
    return {"decision": result["decision"]}


@_timed
def write_report(
    config_json: str, output_dir: str, report_path: str, step_metadata: Mapping[str, Mapping],
    checks_path: str, evaluation_path: str, canary_path: str, candidate_dir: str,
    baseline_dir: str,
) -> dict:
    from pipelines.report import build_report, render_html

    report = build_report(
        _config(config_json),
        data_checks=json.loads(Path(checks_path).read_text()),
        evaluation=json.loads(Path(evaluation_path).read_text()),
        canary=json.loads(Path(canary_path).read_text()),
        candidate_dir=Path(candidate_dir),
        baseline_dir=Path(baseline_dir),
        timings={step: meta.get("seconds") for step, meta in step_metadata.items()},
    )
    html = render_html(report)
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(html)
    if output_dir:
        _write_json(Path(output_dir) / "report.json", report)
        (Path(output_dir) / "report.html").write_text(html)
        (Path(output_dir) / "inference_service.yaml").write_text(
            _cluster_manifest(_config(config_json), report["models"]["candidate"])
        )
    return {"blessed": report["blessed"]}


def _cluster_manifest(config: RunConfig, candidate_version: str) -> str:
    """The KServe InferenceService that rolls the candidate out on a cluster, as a canary."""
    from serving.inference_service import InferenceServiceConfig, inference_service_yaml

    return inference_service_yaml(
        InferenceServiceConfig(
            storage_uri=f"pvc://recforge-models/versions/{candidate_version}",
            canary_traffic_percent=config.canary.canary_percent,
            model_version=candidate_version,
        )
    )


def _plain(summary: Any) -> dict:
    data = summary.to_dict() if hasattr(summary, "to_dict") else dict(vars(summary))
    return json.loads(json.dumps(data, default=str))
