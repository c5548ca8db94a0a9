"""Great Expectations plumbing: an ephemeral context, one checkpoint per table with an
UpdateDataDocsAction into the run's docs folder, and failures turned into plain records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation import Expectation

from pipelines.check_suites import REFERENCES, reference_column

SITE = "recforge"
_DERIVED = {reference_column(key, referenced): key for _, key, referenced in REFERENCES}


def _context(docs_dir: Path) -> Any:
    """In-memory stores, no analytics, no progress bars, one docs site: ``docs_dir``."""
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir.resolve()),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={SITE: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def validate(
    frames: dict[str, pd.DataFrame],
    suites: dict[str, list[Expectation]],
    docs_dir: Path,
    example_rows: int,
) -> tuple[list[dict], int]:
    """Run every suite on its frame; returns (failed expectation records, evaluated count)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("recforge_raw")
    failures: list[dict] = []
    evaluated = 0
    for table, expectations in suites.items():
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(table)
        suite = context.suites.add(gx.ExpectationSuite(name=table, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"recforge_{table}",
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE])],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frames[table]})
        for run in outcome.run_results.values():
            evaluated += len(run.results)
            failures += [
                _record(table, result, frames[table], example_rows)
                for result in run.results
                if not result.success and not _on_missing_column(result, frames[table])
            ]
    return failures, evaluated


def _on_missing_column(result: ExpectationValidationResult, frame: pd.DataFrame) -> bool:
    """Column expectations on an absent column: the column-set expectation already names it."""
    kwargs = result.expectation_config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return any(column not in frame.columns for column in columns)


def _record(table: str, result: ExpectationValidationResult, frame: pd.DataFrame, example_rows: int) -> dict:
    config = result.expectation_config
    kwargs = config.kwargs
    details = _details(result, kwargs, frame)
    if config.description:
        details = f"{config.description}: {details}"
    return {
        "suite": table,
        "expectation": config.type,
        "column": _column(config.type, kwargs, result.result),
        "severity": getattr(config.severity, "value", str(config.severity)),
        "details": details,
        "examples": _examples(config.type, kwargs, result.result, frame, example_rows),
    }


def _column(expectation: str, kwargs: dict, result: dict) -> str | None:
    if "column" in kwargs:
        return _DERIVED.get(kwargs["column"], kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    mismatched = _mismatched(kwargs, result)
    names = mismatched.get("missing", []) + mismatched.get("unexpected", [])
    return ", ".join(names) or None


def _mismatched(kwargs: dict, result: dict) -> dict[str, list[str]]:
    """Missing (and, for an exact match, unexpected) columns of a column-set expectation."""
    mismatched = dict(result.get("details", {}).get("mismatched", {}))
    if not kwargs.get("exact_match", True):
        mismatched.pop("unexpected", None)
    return mismatched


_EXPECTED_KEYS = ("type_", "min_value", "max_value", "value_set")


def _details(result: ExpectationValidationResult, kwargs: dict, frame: pd.DataFrame) -> str:
    errors = [
        info["exception_message"]
        for info in (result.exception_info or {}).values()
        if isinstance(info, dict) and info.get("exception_message")
    ]
    if result.exception_info and result.exception_info.get("exception_message"):
        errors.append(result.exception_info["exception_message"])
    if errors:
        return f"could not be evaluated: {errors[0]}"
    found = result.result
    if "unexpected_count" in found:
        column = kwargs.get("column")
        if column in _DERIVED:  # show the unknown ids, not the derived booleans
            index = list(found.get("partial_unexpected_index_list", []))
            values = frame.loc[index, _DERIVED[column]].tolist()
        else:
            values = found.get("partial_unexpected_list", [])
        return (
            f"{found['unexpected_count']} of {found['element_count']} rows unexpected "
            f"({found.get('unexpected_percent') or 0:.3g}%), e.g. values {_plain(values[:5])}"
        )
    mismatched = _mismatched(kwargs, found)
    if mismatched:
        return "; ".join(f"{kind} columns {names}" for kind, names in mismatched.items())
    expected = {k: _plain(kwargs[k]) for k in _EXPECTED_KEYS if kwargs.get(k) is not None}
    return f"observed {_plain(found.get('observed_value'))}, expected {expected}"


def _examples(expectation: str, kwargs: dict, result: dict, frame: pd.DataFrame, limit: int) -> list[dict]:
    """A few offending rows, as JSON-able records."""
    visible = frame[[c for c in frame.columns if c not in _DERIVED]]
    if "partial_unexpected_index_list" in result:
        rows = visible.loc[list(result["partial_unexpected_index_list"])[:limit]]
    elif expectation == "expect_column_max_to_be_between" and kwargs["column"] in frame:
        rows = visible.loc[frame[kwargs["column"]].nlargest(limit).index]
    elif expectation == "expect_column_values_to_be_of_type":
        rows = visible.head(limit)
    else:
        return []
    return json.loads(rows.to_json(orient="records", date_format="iso", date_unit="us"))


def _plain(value: Any) -> Any:
    """Numpy scalars and timestamps as plain JSON values."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
