"""Synthetic data shared by tests: a training frame with every real column, text vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd

TEXT_DIM = 384


def synthetic_frame(rows: int = 4000, seed: int = 0, users: int = 200, items: int = 80) -> pd.DataFrame:
    """Rows with every column of the real training set; clicks depend on item and user features."""
    rng = np.random.default_rng(seed)
    user_id = rng.integers(1, users + 1, rows)
    item_id = rng.integers(1, items + 1, rows)
    item_quality = np.sin(item_id.astype(float))
    user_taste = np.cos(user_id.astype(float))
    logit = -2.5 + 1.5 * item_quality + user_taste
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    conversion = (click & (rng.random(rows) < 0.3 + 0.2 * (item_quality > 0))).astype(np.int8)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frame = pd.DataFrame(
        {
            "event_id": np.arange(rows, dtype=np.int64),
            "ts": start + pd.to_timedelta(np.sort(rng.uniform(0, 6 * 86400, rows)), unit="s"),
            "user_id": user_id.astype(np.int64),
            "item_id": item_id.astype(np.int64),
            "age_bucket": rng.choice(["18-24", "25-34", "35-49", "50+"], rows),
            "gender": rng.choice(["f", "m", "u"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "category": np.array(["shoes", "books", "garden", "toys"])[item_id % 4],
            "brand": np.array([f"brand{i}" for i in range(10)])[item_id % 10],
            "device": rng.choice(["mobile", "desktop", "tablet"], rows),
            "surface": rng.choice(["home", "search", "product_page"], rows),
            "hour": rng.integers(0, 24, rows).astype(np.int8),
            "price": (10 + item_id % 50).astype(np.float32),
            "click": click,
            "conversion": conversion,
        }
    )
    for side, key in (("user", user_id), ("item", item_id)):
        frame[f"{side}_impressions"] = (key % 30 + 1).astype(np.int64)
        frame[f"{side}_clicks"] = (key % 5).astype(np.int64)
        frame[f"{side}_conversions"] = (key % 2).astype(np.int64)
        frame[f"{side}_ctr"] = (frame[f"{side}_clicks"] / frame[f"{side}_impressions"]).astype(
            np.float32
        )
        frame[f"{side}_cvr"] = np.float32(0.1)
    return frame


def synthetic_text_table(items: int = 80, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = np.arange(1, items + 1, dtype=np.int64)
    return keys, rng.normal(size=(items, TEXT_DIM)).astype(np.float32)


def frame_columns(model, rows: int) -> dict:
    """A request-like frame with every column `model` reads."""
    frame = synthetic_frame(rows=rows, seed=3)
    columns = {name: frame[name].to_numpy() for name in model.required_columns if name in frame}
    columns["text_embedding"] = np.ones((rows, TEXT_DIM), np.float32)
    return columns
