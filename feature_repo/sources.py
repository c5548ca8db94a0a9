"""Where the feature tables live: the one place that maps a feature view to its Parquet file."""

import os
from pathlib import Path

from feast import FileSource

DATA_DIR_ENV = "RECFORGE_FEATURE_DATA"
TIMESTAMP_FIELD = "event_timestamp"
CREATED_FIELD = "created"


def feature_data_dir() -> Path | str:
    """`$RECFORGE_FEATURE_DATA` if set, else `data/` next to this file.

    The variable holds an absolute directory or an object-store address (`s3://bucket/prefix`,
    `gs://…`) as on a cluster, where the offline store lives on object storage.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if not configured:
        return Path(__file__).resolve().parent / "data"
    if "://" in configured:
        return configured.rstrip("/")
    path = Path(configured)
    if not path.is_absolute():
        raise ValueError(
            f"{DATA_DIR_ENV}={configured!r} must be an absolute directory; "
            f"set it to e.g. {path.resolve()}"
        )
    return path


def table_path(data_dir: Path | str, view_name: str) -> Path | str:
    """The Parquet file holding the rows of feature view `view_name`."""
    if isinstance(data_dir, str) and "://" in data_dir:
        return f"{data_dir.rstrip('/')}/{view_name}.parquet"
    return Path(data_dir) / f"{view_name}.parquet"


def file_source(data_dir: Path | str, view_name: str) -> FileSource:
    """The batch source of feature view `view_name` (timestamps: `event_timestamp`, `created`)."""
    return FileSource(
        name=f"{view_name}_source",
        path=str(table_path(data_dir, view_name)),
        timestamp_field=TIMESTAMP_FIELD,
        created_timestamp_column=CREATED_FIELD,
    )
