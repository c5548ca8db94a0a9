"""Fixtures shared across test folders."""

from __future__ import annotations

from pathlib import Path

import prometheus_client  # noqa: F401  (before Feast: see serving/__init__.py)
import pytest

from factories import synthetic_frame, synthetic_text_table


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained-for-one-epoch ranker saved as a real artifact with the real feature layout."""
    from models.artifact import save_artifact
    from models.config import ModelConfig, TrainConfig
    from pipelines.training_step import fit_ranker

    frame = synthetic_frame()
    keys, matrix = synthetic_text_table()
    model, result = fit_ranker(
        frame.iloc[:3000], frame.iloc[3000:], keys, matrix,
        ModelConfig(expert_hidden=(16,), num_experts=2, tower_hidden=(8,), embedding_dim=4,
                    text_projection_dim=4),
        TrainConfig(epochs=1, batch_size=512),
        progress=False,
    )
    path = tmp_path_factory.mktemp("artifacts") / "tiny"
    return save_artifact(model, path, name="ranker", version="tiny-1",
                         metrics={"validation": result.validation})
