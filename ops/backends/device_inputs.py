"""What the GPU backends (cuda, triton) derive from a batch with torch on the device: the table
layout as a tensor, and the positions grouped by row for backward (a stable sort keeps each
row's occurrences in position order, so the sums are deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ops.batch import Batch
from ops.layout import TableLayout

_LAYOUTS: dict[tuple[TableLayout, torch.device], torch.Tensor] = {}


def layout_tensor(layout: TableLayout, device: torch.device) -> torch.Tensor:
    """int64 [5, T]: rows, dims, weight offset, column offset and first global row per table."""
    key = (layout, device)
    if key not in _LAYOUTS:
        columns = (
            layout.num_embeddings,
            layout.embedding_dims,
            layout.weight_offsets[:-1],
            layout.column_offsets[:-1],
            layout.row_offsets[:-1],
        )
        _LAYOUTS[key] = torch.tensor(columns, dtype=torch.int64, device=device)
    return _LAYOUTS[key]


@dataclass(frozen=True)
class RowSegments:
    positions: torch.Tensor  # int64 [n]: positions sorted by (global row, position)
    begin: torch.Tensor  # int64 [U + 1]: segment u is positions[begin[u]:begin[u + 1]]
    row: torch.Tensor  # int64 [U]: global row of segment u; total_rows marks invalid indices
    bag_of_position: torch.Tensor  # int64 [n]: bag k = t * B + b of each position

    @property
    def num_segments(self) -> int:
        return self.row.numel()


def row_segments(batch: Batch) -> RowSegments:
    layout, n = batch.layout, batch.num_indices
    device = batch.indices.device
    tables = layout_tensor(layout, device)
    lengths = batch.offsets[1:] - batch.offsets[:-1]
    bag = torch.repeat_interleave(torch.arange(lengths.numel(), device=device), lengths, output_size=n)
    table = bag // max(batch.batch_size, 1)
    indices = batch.indices.long()
    valid = (indices >= 0) & (indices < tables[0, table])
    key = torch.where(valid, tables[4, table] + indices, layout.total_rows)
    if layout.total_rows < torch.iinfo(torch.int32).max:
        key = key.int()  # a radix sort of 32-bit keys makes half the passes
    sorted_key, positions = torch.sort(key, stable=True)
    rows, counts = torch.unique_consecutive(sorted_key, return_counts=True)
    begin = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return RowSegments(positions, begin, rows.long(), bag)
