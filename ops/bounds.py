"""The value checks of one call (offsets well formed, indices in range), run before any kernel."""

from __future__ import annotations

import warnings

from ops.backends.base import Kernels
from ops.batch import Batch, IndexOutOfRangeError, check_offsets, out_of_range_message


def check_values(kernels: Kernels, batch: Batch, bounds_check: str) -> None:
    """Raises on malformed offsets; an out-of-range index raises ("raise"), warns ("warn") or
    passes ("off"), in which case the kernels treat it as contributing zero."""
    if bounds_check == "off":
        return
    check_offsets(batch)
    position = kernels.first_invalid_index(batch)
    if position < 0:
        return
    message = out_of_range_message(batch, position)
    if bounds_check == "raise":
        raise IndexOutOfRangeError(f"{message}; fix the index or use bounds_check='warn' to treat it as zero")
    warnings.warn(
        f"{message}; it contributes zero (bounds_check='warn'), and so does any other "
        "out-of-range index in this batch",
        RuntimeWarning,
        stacklevel=2,
    )
