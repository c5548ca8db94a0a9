"""The multi-task ranking network: fused embedding lookup + numeric + text → body → task towers."""

from __future__ import annotations

import torch
from torch import nn

from models.architectures import ARCHITECTURES, mlp
from models.config import ModelConfig
from models.feature_spec import FeatureSpec
from ops import FusedEmbeddingBag


class MultiTaskRanker(nn.Module):
    def __init__(self, spec: FeatureSpec, config: ModelConfig) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.embeddings = FusedEmbeddingBag(
            num_embeddings=[f.num_embeddings for f in spec.categorical],
            embedding_dims=[config.embedding_dim] * len(spec.categorical),
            pooling="sum",
            backend=config.embedding_backend,
        )
        self.text_projection = (
            nn.Linear(spec.text.dim, config.text_projection_dim) if spec.text else None
        )
        input_dim = (
            config.embedding_dim * len(spec.categorical)
            + len(spec.numeric)
            + (config.text_projection_dim if spec.text else 0)
        )
        self.body = ARCHITECTURES[config.architecture](input_dim, len(config.tasks), config)
        self.towers = nn.ModuleList(
            nn.Sequential(
                mlp(self.body.output_dim, config.tower_hidden, config.dropout),
                nn.Linear(
                    config.tower_hidden[-1] if config.tower_hidden else self.body.output_dim, 1
                ),
            )
            for _ in config.tasks
        )

    def set_embedding_optimizer(self, optimizer: str | None, lr: float = 0.01) -> None:
        """Rebuild the tables with `optimizer` fused into their backward (None: plain gradients).

        The weights are kept; optimizer state starts at zero. Training sets it and clears it again,
        so a saved model holds weights only.
        """
        old = self.embeddings
        new = FusedEmbeddingBag(
            num_embeddings=old.layout.num_embeddings,
            embedding_dims=old.layout.embedding_dims,
            pooling=old.pooling,
            backend=old.backend,
            optimizer=optimizer,
            lr=lr,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        with torch.no_grad():
            new.weight.copy_(old.weight)
        self.embeddings = new

    def forward(
        self, categorical: torch.Tensor, numeric: torch.Tensor, text: torch.Tensor | None
    ) -> torch.Tensor:
        """Logits [B, num_tasks] from category indices [B, T], numbers [B, F], text [B, D]."""
        batch, tables = categorical.shape
        indices = categorical.t().reshape(-1)
        offsets = torch.arange(batch * tables + 1, dtype=torch.int64, device=categorical.device)
        parts = [self.embeddings(indices, offsets), numeric]
        if self.text_projection is not None:
            parts.append(self.text_projection(text))
        representations = self.body(torch.cat(parts, dim=1))
        return torch.cat([tower(r) for tower, r in zip(self.towers, representations, strict=True)], dim=1)
