"""The bench's in-process scoring phase: the predictor's two ways of scoring one request.

Each planned request is scored in this process, one thread, both ways, interleaved: from full
feature rows (what the transformer path and requests carrying a new item do) and against the item
table prepared for the model (the predictor's in-process path, :mod:`models.factored_input`).
The same store, model and requests; only the scoring call is timed. The ratio of the two
medians is the preparation's gain on this machine, measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import torch

from models.artifact import load_artifact
from serving.feature_source import assemble_context, assemble_frame
from serving.predictor import online_features_for
from serving.protocol import DEFAULT_LIMITS, parse_request


def scoring_in_process(artifact: Path, feature_dir: Path, bodies: Sequence[bytes], rounds: int) -> dict:
    """Median ms per request of both ways over ``rounds`` passes, and their largest difference."""
    model = load_artifact(artifact)
    prepared = online_features_for(model, feature_dir, model_name="bench-prepared")
    plain = online_features_for(model, feature_dir, model_name="bench-rows", prepared=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a server
    try:
        requests = [r for body in bodies for r in parse_request(orjson.loads(body), DEFAULT_LIMITS).instances]
        pairs = []
        for request in requests:
            found = prepared.lookup(request.user_id, request.item_ids)
            if found.items is not None:  # else it holds an item the table does not (yet)
                columns = plain.lookup(request.user_id, request.item_ids).columns
                frame = assemble_frame(request, columns, model.required_columns, typed=True)
                pairs.append((frame, assemble_context(request, found.user), found.items))
        full_ms, prepared_ms, difference = [], [], 0.0
        for _ in range(rounds):
            for frame, context, rows in pairs:
                started = time.perf_counter()
                by_rows = model.score(frame)
                full_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                by_table = model.score_prepared(context, rows.prepared, rows.rows)
                prepared_ms.append((time.perf_counter() - started) * 1000)
                difference = max(
                    difference, *(float(np.abs(by_rows[t] - by_table[t]).max()) for t in model.tasks)
                )
    finally:
        torch.set_num_threads(threads)
        prepared.close()
        plain.close()
    if not pairs:
        raise RuntimeError("scoring phase: no request had all its items in the prepared table")
    full, table = float(np.median(full_ms)), float(np.median(prepared_ms))
    return {
        "requests": len(pairs),
        "skipped": len(requests) - len(pairs),
        "rounds": rounds,
        "full_rows_p50_ms": full,
        "prepared_p50_ms": table,
        "ratio": table / full,
        "max_abs_difference": difference,
    }
