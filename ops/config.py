"""Validated settings of a FusedEmbeddingBag."""

from __future__ import annotations

import math
from dataclasses import dataclass

POOLINGS = ("sum", "mean")
BACKENDS = ("auto", "reference", "cpu", "cuda", "triton")
OPTIMIZERS = ("sgd", "adagrad", "rowwise_adagrad", "adam")
BOUNDS_CHECKS = ("raise", "warn", "off")


def choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """`value` if it is one of `allowed`, else a ValueError naming the argument."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def _positive_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive float; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite float; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class OptimizerConfig:
    """A sparse optimizer fused into backward. `betas` is used by adam only."""

    name: str
    lr: float = 0.01
    eps: float = 1e-8
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        choice("optimizer", self.name, OPTIMIZERS)
        object.__setattr__(self, "lr", _positive_finite("lr", self.lr))
        object.__setattr__(self, "eps", _positive_finite("eps", self.eps))
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas
        ):
            raise ValueError(f"betas must be two floats in [0, 1); got {self.betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))

    def state_sizes(self, num_weights: int, total_rows: int) -> dict[str, int]:
        """Name and length of each state buffer (all zero-initialised)."""
        if self.name == "adagrad":
            return {"momentum1": num_weights}
        if self.name == "rowwise_adagrad":
            return {"momentum1": total_rows}
        if self.name == "adam":
            return {"momentum1": num_weights, "momentum2": num_weights}
        return {}
