"""Task weighting, looked up by name: how per-task losses become the gradients of one step.

- "fixed": sum of `train.task_weights[task] x loss` (default weight 1).
- "uncertainty": Kendall, Gal & Cipolla (CVPR 2018): each task has a learned log-variance s;
  the loss is sum exp(-s) x weighted loss + s, so noisier tasks are down-weighted.
- "pcgrad": Yu et al. (NeurIPS 2020), gradient surgery: each task's gradient on the shared body
  loses its component along any other task's gradient it conflicts with (negative dot product)
  before they are summed. Task-specific weights and the embedding tables get the plain sum.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class TaskWeighting(nn.Module):
    """Turns per-task losses [T] into gradients on the model's parameters (and on its own, which
    the training step optimises with the dense weights)."""

    def __init__(self, weights: torch.Tensor, model: nn.Module) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def backward(self, losses: torch.Tensor) -> None:
        (losses * self.weights).sum().backward()


class UncertaintyWeighting(TaskWeighting):
    def __init__(self, weights: torch.Tensor, model: nn.Module) -> None:
        super().__init__(weights, model)
        self.log_variance = nn.Parameter(torch.zeros_like(weights))

    def backward(self, losses: torch.Tensor) -> None:
        precision = torch.exp(-self.log_variance)
        (precision * self.weights * losses + self.log_variance).sum().backward()


class PCGrad(TaskWeighting):
    """Surgery on the body's parameters (what the tasks share besides the tables)."""

    def __init__(self, weights: torch.Tensor, model: nn.Module) -> None:
        super().__init__(weights, model)
        self.shared = [p for p in model.body.parameters() if p.requires_grad]
        shared = {id(p) for p in self.shared}
        self.rest = [p for p in model.parameters() if p.requires_grad and id(p) not in shared]
        self.generator = torch.Generator().manual_seed(0)

    def backward(self, losses: torch.Tensor) -> None:
        weighted = losses * self.weights
        grads = torch.stack([self._flat_grad(loss) for loss in weighted])
        projected = grads.clone()
        for i in range(len(grads)):
            for j in torch.randperm(len(grads), generator=self.generator).tolist():
                dot = projected[i] @ grads[j]
                if j != i and dot < 0:
                    projected[i] -= dot / grads[j].square().sum().clamp_min(1e-20) * grads[j]
        weighted.sum().backward(inputs=self.rest)
        total = projected.sum(dim=0)
        start = 0
        for p in self.shared:
            p.grad = total[start : start + p.numel()].view_as(p).clone()
            start += p.numel()

    def _flat_grad(self, loss: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(loss, self.shared, retain_graph=True, allow_unused=True)
        return torch.cat([
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for g, p in zip(grads, self.shared, strict=True)
        ])


WEIGHTINGS: dict[str, Callable[[torch.Tensor, nn.Module], TaskWeighting]] = {
    "fixed": TaskWeighting,
    "uncertainty": UncertaintyWeighting,
    "pcgrad": PCGrad,
}
