"""Fused multi-table embedding bag: reference (PyTorch), C++ CPU, CUDA and Triton backends,
with optional sparse optimizers fused into backward. Imports only torch (numpy, triton optional)."""

from ops.backends import BackendUnavailableError, available_backends
from ops.batch import IndexOutOfRangeError
from ops.library import embedding_bag
from ops.module import FusedEmbeddingBag

__all__ = [
    "BackendUnavailableError",
    "FusedEmbeddingBag",
    "IndexOutOfRangeError",
    "available_backends",
    "embedding_bag",
]
