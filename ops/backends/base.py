"""What every backend provides. `reference` is the specification the others are tested against."""

from __future__ import annotations

from typing import Protocol

import torch

from ops.batch import Batch
from ops.config import OptimizerConfig


class Kernels(Protocol):
    name: str

    def unsupported(self, device: torch.device, dtype: torch.dtype) -> str:
        """Why this backend cannot run on tensors of this device and dtype ("" if it can)."""

    def forward(self, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Pooled bags [B, total_dim]; out-of-range indices contribute zero."""

    def first_invalid_index(self, batch: Batch) -> int:
        """The first position whose index is out of range for its table, or -1."""

    def grad_weight(self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The dense gradient of the flat weight."""

    def grad_per_sample_weights(
        self, grad_out: torch.Tensor, weight: torch.Tensor, batch: Batch
    ) -> torch.Tensor:
        """The gradient of per_sample_weights."""

    def fused_update(
        self,
        grad_out: torch.Tensor,
        weight: torch.Tensor,
        batch: Batch,
        optimizer: OptimizerConfig,
        state: dict[str, torch.Tensor],
        step: int,
    ) -> None:
        """Applies the optimizer in place to every touched row (state updated in place too)."""
