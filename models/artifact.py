"""The model artifact: a directory of safetensors weights, JSON config and a sha256 manifest.

Loading verifies every checksum first and never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from models.config import ModelConfig
from models.feature_spec import EncodedFrame, FeatureSpec
from models.network import MultiTaskRanker, PreparedItems

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
MANIFEST = "manifest.json"


class ArtifactError(ValueError):
    """The directory is not a valid, intact RecForge model artifact."""


def save_artifact(
    model: MultiTaskRanker,
    path: Path,
    *,
    name: str,
    version: str,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write atomically: a temporary sibling directory is renamed into place when complete."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise ArtifactError(f"{path} exists and is not empty; choose a new artifact directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    state = {key: tensor.detach().contiguous().cpu() for key, tensor in model.state_dict().items()}
    save_file(state, staging / WEIGHTS)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "model": _model_config_dict(model.config),
        "features": model.spec.to_dict(),
        "extra": dict(extra or {}),
    }
    _write_json(staging / CONFIG, config)
    _write_json(staging / METRICS, dict(metrics or {}))
    files = sorted(p.name for p in staging.iterdir())
    _write_json(staging / MANIFEST, {"sha256": {f: _sha256(staging / f) for f in files}})
    if path.exists():
        path.rmdir()
    os.replace(staging, path)
    return path


def verify_artifact(path: Path) -> dict[str, str]:
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path} has no {MANIFEST}; is it a RecForge model artifact?")
    checksums = json.loads(manifest_path.read_text())["sha256"]
    for required in (WEIGHTS, CONFIG):
        if required not in checksums:
            raise ArtifactError(f"{manifest_path} does not list {required}")
    for name, expected in checksums.items():
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{file} listed in the manifest is missing")
        if _sha256(file) != expected:
            raise ArtifactError(f"{file} does not match its sha256 in {MANIFEST}: it was modified")
    return checksums


@dataclass(frozen=True)
class LoadedModel:
    """A verified artifact ready to score feature frames."""

    network: MultiTaskRanker
    name: str
    version: str
    metrics: dict
    extra: dict
    path: Path

    @property
    def spec(self) -> FeatureSpec:
        return self.network.spec

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.network.config.tasks

    @property
    def required_columns(self) -> tuple[str, ...]:
        return self.spec.columns

    @property
    def column_sources(self) -> dict[str, list[str]]:
        return self.spec.column_sources

    def score(self, frame: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Per-task predictions float32 [N]: probabilities for binary tasks, the target's units
        for regression tasks. Unknown or missing values get defaults."""
        with torch.inference_mode():
            predictions = self.network.predict(*_tensors(self.spec.encode(frame)))
        return self._per_task(predictions.numpy().astype(np.float32))

    def prepare_items(self, items: Mapping[str, Any]) -> PreparedItems:
        """An item table — a frame of item columns, one row per item — made ready for
        :meth:`score_prepared`. The first layers' outputs for every item are computed here, so no
        request pays for them (see :mod:`models.factored_input`)."""
        defaults = self.spec.encode({name: [None] for name in self.spec.columns})
        with torch.inference_mode():
            prepared = self.network.prepare_items(*_tensors(self.spec.encode(items)))
            self.network.predict_prepared(prepared, torch.zeros(1, dtype=torch.int64), *_tensors(defaults))
        return prepared

    def score_prepared(
        self, context: Mapping[str, Any], items: PreparedItems, rows: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Like :meth:`score` for the rows of prepared items, every one seen in the same context:
        a frame of one row holding the user's and the request's columns."""
        return self.score_prepared_together([context], items, [rows])[0]

    def score_prepared_together(
        self, contexts: Sequence[Mapping[str, Any]], items: PreparedItems, rows: Sequence[np.ndarray]
    ) -> list[dict[str, np.ndarray]]:
        """:meth:`score_prepared` for several requests in one forward pass (the same scores up to
        float rounding): request k's candidates at ``rows[k]`` seen in ``contexts[k]``."""
        encoded = [self.spec.encode(context) for context in contexts]
        lengths = [len(r) for r in rows]
        context_rows = None
        if len(contexts) > 1:
            context_rows = torch.from_numpy(np.repeat(np.arange(len(contexts)), lengths))
        with torch.inference_mode():
            predictions = self.network.predict_prepared(
                items,
                torch.from_numpy(np.concatenate(rows)),
                *_tensors(_stacked(encoded)),
                context_rows=context_rows,
            )
        array = predictions.numpy().astype(np.float32)
        return [self._per_task(part) for part in np.split(array, np.cumsum(lengths)[:-1])]

    def _per_task(self, array: np.ndarray) -> dict[str, np.ndarray]:
        return {task: array[:, t] for t, task in enumerate(self.tasks)}


def _stacked(encoded: Sequence[EncodedFrame]) -> EncodedFrame:
    """Encoded frames one after the other."""
    if len(encoded) == 1:
        return encoded[0]
    text = None if encoded[0].text is None else np.concatenate([e.text for e in encoded])
    return EncodedFrame(
        np.concatenate([e.categorical for e in encoded]), np.concatenate([e.numeric for e in encoded]), text
    )


def _tensors(encoded: EncodedFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    return (
        torch.from_numpy(encoded.categorical),
        torch.from_numpy(encoded.numeric),
        None if encoded.text is None else torch.from_numpy(encoded.text),
    )


def load_artifact(path: Path) -> LoadedModel:
    path = Path(path)
    verify_artifact(path)
    config = json.loads((path / CONFIG).read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path / CONFIG}: format_version {config.get('format_version')!r} is not supported "
            f"(this RecForge reads {FORMAT_VERSION})"
        )
    model_config = _model_config(config["model"], path / CONFIG)
    network = MultiTaskRanker(FeatureSpec.from_dict(config["features"]), model_config)
    network.load_state_dict(load_file(path / WEIGHTS), strict=True)
    network.eval()
    metrics = json.loads((path / METRICS).read_text()) if (path / METRICS).exists() else {}
    return LoadedModel(
        network, config["name"], config["version"], metrics, config.get("extra", {}), path
    )


def copy_artifact(source: Path, destination: Path) -> Path:
    verify_artifact(source)
    if destination.exists():
        raise ArtifactError(f"{destination} already exists; refusing to overwrite a model")
    shutil.copytree(source, destination)
    return destination


def _model_config_dict(config: ModelConfig) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(config).items()}


def _model_config(data: Mapping[str, Any], source: Path) -> ModelConfig:
    """Keys missing from older artifacts take their defaults; unknown ones are refused."""
    unknown = sorted(set(data) - {f.name for f in fields(ModelConfig)})
    if unknown:
        raise ArtifactError(f"{source}: model fields {unknown} are unknown to this RecForge; "
                            "the artifact was written by a newer version")
    return ModelConfig(**_tuples(data))


def _tuples(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
