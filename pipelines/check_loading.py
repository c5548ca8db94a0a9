"""Read the raw tables for the data checks with pyarrow, one pandas frame per table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.simulator import EVENT_SCHEMA, ITEM_SCHEMA, USER_SCHEMA

CONTRACTS: dict[str, pa.Schema] = {"events": EVENT_SCHEMA, "users": USER_SCHEMA, "items": ITEM_SCHEMA}


@dataclass(frozen=True)
class RawTables:
    events: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"events": self.events, "users": self.users, "items": self.items}


def _files(data_dir: Path) -> dict[str, list[Path]]:
    events = sorted((data_dir / "events").glob("*.parquet"))
    found = {
        "events": events,
        "users": [data_dir / "users.parquet"],
        "items": [data_dir / "items.parquet"],
    }
    missing = [str(p) for paths in found.values() for p in paths if not p.is_file()]
    if not events:
        missing.insert(0, str(data_dir / "events" / "part-*.parquet"))
    if missing:
        raise FileNotFoundError(
            f"data checks need the raw tables in {data_dir}: missing {', '.join(missing)}; "
            "point data_dir at a folder written by pipelines.simulator.simulate"
        )
    return found


def _read(paths: list[Path], contract: pa.Schema) -> pd.DataFrame:
    """Concatenate Parquet files, reading the contract's columns plus any unexpected ones.

    Files whose column types differ are promoted to a common type where possible, so the type
    expectations report the column instead of this reader failing.
    """
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowInvalid) as error:
            raise ValueError(f"{path} is not a readable Parquet file: {error}") from None
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(
            f"the files {[p.name for p in paths]} disagree on their column types ({error}); "
            f"each must follow the contract {contract}"
        ) from None
    ordered = [n for n in contract.names if n in table.column_names]
    ordered += [n for n in table.column_names if n not in contract.names]
    return table.select(ordered).to_pandas()


def load_tables(data_dir: Path) -> RawTables:
    """Events (all chunk files), users and items from ``data_dir`` as pandas frames."""
    files = _files(Path(data_dir))
    return RawTables(**{name: _read(files[name], CONTRACTS[name]) for name in CONTRACTS})
