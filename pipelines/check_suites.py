"""The expectation suites over events, users and items.

Critical expectations stop the pipeline; warnings are only reported. Referential integrity is
checked on a derived boolean column per key (``user_id_in_users``, ``item_id_in_items``) that the
runner adds to the events frame, so the suites never embed thousands of ids (which would bloat the
Data Docs); reports name the key column itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import great_expectations.expectations as gxe
import pyarrow as pa
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column

from pipelines.check_loading import CONTRACTS

WARNING = "warning"
DEVICES = ["mobile", "desktop", "tablet"]
SURFACES = ["home", "search", "product_page"]

# (table, key column, referenced table): the derived column is f"{key}_in_{referenced}"
REFERENCES = (("events", "user_id", "users"), ("events", "item_id", "items"))


@dataclass(frozen=True)
class SuiteInputs:
    """What the suites need besides the config: the freshness bound."""

    max_null_fraction: float
    min_events: int
    oldest_fresh_event: datetime
    ctr_range: tuple[float, float]
    max_price: float


def reference_column(key: str, referenced: str) -> str:
    return f"{key}_in_{referenced}"


def _pandas_type(arrow_type: pa.DataType) -> str:
    """The type name ExpectColumnValuesToBeOfType checks a pandas column of this Arrow type by."""
    if pa.types.is_timestamp(arrow_type):
        return "Timestamp"  # a timezone-aware pandas datetime column
    if pa.types.is_string(arrow_type):
        return "str"
    return arrow_type.to_pandas_dtype().__name__


def _schema(table: str, inputs: SuiteInputs) -> Iterator[Expectation]:
    contract = CONTRACTS[table]
    derived = [reference_column(key, ref) for owner, key, ref in REFERENCES if owner == table]
    yield gxe.ExpectTableColumnsToMatchSet(
        column_set=contract.names,
        exact_match=False,
        description=f"every contract column of {table} is present",
    )
    yield gxe.ExpectTableColumnsToMatchSet(
        column_set=contract.names + derived,
        exact_match=True,
        severity=WARNING,
        description=f"{table} has no columns beyond the contract",
    )
    for field in contract:
        yield gxe.ExpectColumnValuesToBeOfType(column=field.name, type_=_pandas_type(field.type))
        yield gxe.ExpectColumnValuesToNotBeNull(column=field.name, mostly=1.0 - inputs.max_null_fraction)


def _events(inputs: SuiteInputs) -> Iterator[Expectation]:
    yield gxe.ExpectTableRowCountToBeBetween(min_value=inputs.min_events)
    yield gxe.ExpectColumnValuesToBeUnique(column="event_id")
    for label in ("click", "conversion"):
        yield gxe.ExpectColumnValuesToBeInSet(column=label, value_set=[0, 1])
    yield gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="click",
        column_B="conversion",
        or_equal=True,
        description="a conversion only follows a click (click >= conversion)",
    )
    yield gxe.ExpectColumnValuesToBeBetween(column="dwell", min_value=0)
    yield gxe.ExpectColumnValuesToBeBetween(column="position", min_value=0)
    yield gxe.ExpectColumnValuesToBeBetween(column="hour", min_value=0, max_value=23)
    yield gxe.ExpectColumnValuesToBeInSet(column="device", value_set=DEVICES)
    yield gxe.ExpectColumnValuesToBeInSet(column="surface", value_set=SURFACES)
    for _, key, referenced in REFERENCES:
        yield gxe.ExpectColumnValuesToBeInSet(
            column=reference_column(key, referenced),
            value_set=[True],
            description=f"every event's {key} exists in {referenced}",
        )
    yield gxe.ExpectColumnMaxToBeBetween(
        column="ts",
        min_value=inputs.oldest_fresh_event,
        description=f"the newest event is at or after {inputs.oldest_fresh_event.isoformat()}",
    )
    yield gxe.ExpectColumnMeanToBeBetween(
        column="click",
        min_value=inputs.ctr_range[0],
        max_value=inputs.ctr_range[1],
        severity=WARNING,
        description="the click-through rate is plausible",
    )
    yield gxe.ExpectColumnValuesToBeBetween(
        column="dwell",
        max_value=0,
        row_condition=Column("click") == 0,
        severity=WARNING,
        description="dwell is 0 without a click",
    )


def _users(inputs: SuiteInputs) -> Iterator[Expectation]:
    yield gxe.ExpectTableRowCountToBeBetween(min_value=1)
    yield gxe.ExpectColumnValuesToBeUnique(column="user_id")


def _items(inputs: SuiteInputs) -> Iterator[Expectation]:
    yield gxe.ExpectTableRowCountToBeBetween(min_value=1)
    yield gxe.ExpectColumnValuesToBeUnique(column="item_id")
    yield gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True)
    yield gxe.ExpectColumnValuesToBeBetween(column="price", max_value=inputs.max_price, severity=WARNING)
    yield gxe.ExpectColumnValueLengthsToBeBetween(column="title", min_value=1, severity=WARNING)


_TABLE_SUITES = {"events": _events, "users": _users, "items": _items}


def build_suites(inputs: SuiteInputs) -> dict[str, list[Expectation]]:
    """Expectations per table, schema first."""
    return {table: [*_schema(table, inputs), *specific(inputs)] for table, specific in _TABLE_SUITES.items()}
