"""Where each table lives in the flat weight and in the pooled output."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate


def _positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of positive ints, one per table; got {values!r}")
    result = []
    for t, value in enumerate(values):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
        if number is None or isinstance(value, bool) or number < 1:
            raise ValueError(f"{name}[{t}] must be a positive int; got {value!r}")
        result.append(number)
    return tuple(result)


@dataclass(frozen=True)
class TableLayout:
    """Table t is a [num_embeddings[t], embedding_dims[t]] block of the flat weight, stored
    row-major after tables 0..t-1; its pooled output is a block of columns in that order."""

    num_embeddings: tuple[int, ...]
    embedding_dims: tuple[int, ...]

    def __post_init__(self) -> None:
        rows = _positive_ints("num_embeddings", self.num_embeddings)
        dims = _positive_ints("embedding_dims", self.embedding_dims)
        if not rows:
            raise ValueError("num_embeddings must name at least one table")
        if len(rows) != len(dims):
            raise ValueError(
                f"num_embeddings and embedding_dims must have one entry per table; got "
                f"{len(rows)} and {len(dims)}"
            )
        object.__setattr__(self, "num_embeddings", rows)
        object.__setattr__(self, "embedding_dims", dims)

    @property
    def num_tables(self) -> int:
        return len(self.num_embeddings)

    @cached_property
    def weight_offsets(self) -> tuple[int, ...]:
        """Start of each table in the flat weight, plus the total size at the end."""
        sizes = (e * d for e, d in zip(self.num_embeddings, self.embedding_dims, strict=True))
        return tuple(accumulate(sizes, initial=0))

    @cached_property
    def column_offsets(self) -> tuple[int, ...]:
        """First output column of each table, plus the total width at the end."""
        return tuple(accumulate(self.embedding_dims, initial=0))

    @cached_property
    def row_offsets(self) -> tuple[int, ...]:
        """First global row of each table (row-wise optimizer state), plus the total."""
        return tuple(accumulate(self.num_embeddings, initial=0))

    @property
    def num_weights(self) -> int:
        return self.weight_offsets[-1]

    @property
    def total_dim(self) -> int:
        return self.column_offsets[-1]

    @property
    def total_rows(self) -> int:
        return self.row_offsets[-1]

    def check_table(self, t: int) -> int:
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < self.num_tables:
            raise IndexError(f"table must be an int in [0, {self.num_tables}); got {t!r}")
        return t
