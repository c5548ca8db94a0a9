"""A tiny hand-made world (3 days, 4 users, 4 items) whose feature values can be checked by hand."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.features import FeatureTables

DAY0 = pd.Timestamp("2026-01-01", tz="UTC")
TITLES = {
    10: "waterproof trail running shoes by Acme",
    11: "stainless steel espresso machine by Brewer",
    12: "kids wooden building blocks by Toyland",
    13: "noise cancelling wireless headphones by Sonic",
}


def _at(hours: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(hours=hours)


# (hours after DAY0, user, item, click, conversion). User 3 never shows up in the events;
# user 4 and item 14 show up only there. Two events of user 1 share one timestamp (one slate).
EVENTS = [
    (1.0, 1, 10, 1, 0),
    (1.0, 1, 11, 0, 0),
    (5.5, 2, 10, 1, 1),
    (23.99, 1, 12, 0, 0),
    (24.0, 1, 10, 1, 1),
    (30.0, 2, 11, 0, 0),
    (30.0, 2, 14, 1, 0),
    (49.0, 4, 13, 0, 0),
    (50.0, 1, 13, 1, 0),
    (71.5, 2, 10, 0, 0),
]


def write_world(directory: Path) -> Path:
    """Users, items and events in the simulator's layout and types."""
    events_dir = directory / "events"
    events_dir.mkdir(parents=True)
    ts = pa.array([_at(e[0]) for e in EVENTS], type=pa.timestamp("us", tz="UTC"))
    events = pa.table(
        {
            "event_id": pa.array(range(len(EVENTS)), type=pa.int64()),
            "ts": ts,
            "user_id": pa.array([e[1] for e in EVENTS], type=pa.int64()),
            "item_id": pa.array([e[2] for e in EVENTS], type=pa.int64()),
            "position": pa.array([0] * len(EVENTS), type=pa.int16()),
            "click": pa.array([e[3] for e in EVENTS], type=pa.int8()),
            "conversion": pa.array([e[4] for e in EVENTS], type=pa.int8()),
        }
    )
    pq.write_table(events.slice(0, 5), events_dir / "part-00000.parquet")
    pq.write_table(events.slice(5), events_dir / "part-00001.parquet")
    signup = pa.array([DAY0 - pd.Timedelta(days=30)] * 3, type=pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([1, 2, 3], type=pa.int64()),
                "age_bucket": ["18-24", "25-34", "35-44"],
                "gender": ["female", "male", "female"],
                "region": ["north", "south", "east"],
                "signup_ts": signup,
            }
        ),
        directory / "users.parquet",
    )
    created = pa.array([DAY0 - pd.Timedelta(days=30)] * 4, type=pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array(list(TITLES), type=pa.int64()),
                "category": ["shoes", "kitchen", "toys", "audio"],
                "brand": ["Acme", "Brewer", "Toyland", "Sonic"],
                "price": pa.array([89.5, 249.0, 19.99, 129.0], type=pa.float32()),
                "title": list(TITLES.values()),
                "created_ts": created,
            }
        ),
        directory / "items.parquet",
    )
    return directory


def read_events(data_dir: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted((data_dir / "events").glob("*.parquet"))]
    return pd.concat(frames, ignore_index=True)


def copy_tables(tables: FeatureTables, directory: Path) -> Path:
    for view in tables.rows:
        (directory / tables.path(view).name).write_bytes(tables.path(view).read_bytes())
    return directory
