"""The inputs of one call, checked before any kernel sees them."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ops.layout import TableLayout

INDEX_DTYPES = (torch.int32, torch.int64)


class IndexOutOfRangeError(IndexError):
    """An index is outside its table (bounds_check="raise")."""


@dataclass(frozen=True)
class Batch:
    """indices: 1-D int32/int64; offsets: int64 [T * B + 1], table-major (bag (t, b) is
    indices[offsets[t * B + b]:offsets[t * B + b + 1]]); per_sample_weights: None or 1-D with
    the weights' dtype. All contiguous and on the weights' device."""

    layout: TableLayout
    indices: torch.Tensor
    offsets: torch.Tensor
    per_sample_weights: torch.Tensor | None
    batch_size: int
    mean: bool

    @property
    def num_indices(self) -> int:
        return self.indices.numel()


def _one_dim(name: str, tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(tensor.shape)}")
    return tensor


def make_batch(
    layout: TableLayout,
    weight: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    per_sample_weights: torch.Tensor | None,
    mean: bool,
) -> Batch:
    """Checks types, devices and shapes (not values) and normalises the tensors."""
    indices = _one_dim("indices", indices)
    offsets = _one_dim("offsets", offsets)
    for name, tensor in (("indices", indices), ("offsets", offsets)):
        if tensor.dtype not in INDEX_DTYPES:
            raise TypeError(f"{name} must be int32 or int64; got {tensor.dtype}")
        if tensor.device != weight.device:
            raise ValueError(
                f"{name} is on {tensor.device} but the embedding weights are on "
                f"{weight.device}; move it with .to({str(weight.device)!r})"
            )
    T = layout.num_tables
    if offsets.numel() < 1 or (offsets.numel() - 1) % T != 0:
        raise ValueError(
            f"offsets must have T*B+1 entries (table-major, T={T} tables); got {offsets.numel()} entries"
        )
    if per_sample_weights is not None:
        per_sample_weights = _one_dim("per_sample_weights", per_sample_weights)
        if per_sample_weights.shape != indices.shape:
            raise ValueError(
                f"per_sample_weights must have one weight per index ({indices.numel()}); got "
                f"{per_sample_weights.numel()}"
            )
        if per_sample_weights.dtype != weight.dtype:
            raise TypeError(
                f"per_sample_weights must have the embedding weights' dtype {weight.dtype}; "
                f"got {per_sample_weights.dtype}"
            )
        if per_sample_weights.device != weight.device:
            raise ValueError(
                f"per_sample_weights is on {per_sample_weights.device} but the embedding "
                f"weights are on {weight.device}"
            )
        per_sample_weights = per_sample_weights.contiguous()
    return Batch(
        layout=layout,
        indices=indices.contiguous(),
        offsets=offsets.to(torch.int64).contiguous(),
        per_sample_weights=per_sample_weights,
        batch_size=(offsets.numel() - 1) // T,
        mean=mean,
    )


def _bag_of(batch: Batch, position: int) -> tuple[int, int, int]:
    """(table, sample, start of the bag) holding `position` (offsets already validated)."""
    offsets = batch.offsets.cpu()
    k = int(torch.searchsorted(offsets, position, right=True)) - 1
    k = min(max(k, 0), offsets.numel() - 2)
    return k // batch.batch_size, k % batch.batch_size, int(offsets[k])


def check_offsets(batch: Batch) -> None:
    """ValueError unless offsets start at 0, never decrease and end at len(indices)."""
    offsets = batch.offsets
    n = batch.num_indices
    first, last = int(offsets[0]), int(offsets[-1])
    if first != 0:
        raise ValueError(f"offsets[0] must be 0; got {first}")
    if last != n:
        raise ValueError(
            f"offsets[-1] must equal len(indices) = {n}; got {last} (offsets has T*B+1 "
            f"entries, the last one closing bag (T-1, B-1))"
        )
    drops = torch.nonzero(offsets[1:] < offsets[:-1])
    if drops.numel():
        i = int(drops[0, 0])
        t, b = divmod(i, batch.batch_size)
        raise ValueError(
            f"offsets must be non-decreasing; offsets[{i}] = {int(offsets[i])} > "
            f"offsets[{i + 1}] = {int(offsets[i + 1])} (bag table {t}, sample {b})"
        )


def out_of_range_message(batch: Batch, position: int) -> str:
    t, b, start = _bag_of(batch, position)
    value = int(batch.indices[position])
    rows = batch.layout.num_embeddings[t]
    return (
        f"indices[{position}] = {value} is out of range for table {t} (num_embeddings={rows}; "
        f"valid 0..{rows - 1}), in bag (table {t}, sample {b}) at position {position - start}"
    )
