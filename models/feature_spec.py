"""What a model reads: its input columns, their vocabularies and scales, and how a frame is encoded.

A `FeatureSpec` is fitted on training data and saved inside the model artifact, so a served model
encodes requests exactly as it was trained. Unknown categories map to index 0 (out of vocabulary),
missing numbers to the training mean and a missing text embedding to zeros: serving never rejects an
id it has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SOURCES = ("request", "user", "item")
_DICT_LOOKUP_MAX = 4096  # values per lookup below which a dict beats pandas' hash table


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    source: str
    vocabulary: tuple[Any, ...]
    _index: pd.Index = field(init=False, repr=False, compare=False)
    _positions: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # built once: a 20k-entry index costs milliseconds, too much to pay per request
        index = pd.Index(self.vocabulary)
        # pandas builds an index's hash table lazily on first lookup, and that first build is not
        # thread-safe: concurrent first requests to a fresh server failed. Build it now.
        index.get_indexer(index[:1])
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_positions", {value: i + 1 for i, value in enumerate(self.vocabulary)})

    @property
    def num_embeddings(self) -> int:
        return len(self.vocabulary) + 1

    def lookup(self, values: Any) -> np.ndarray:
        """1 + position in the vocabulary; 0 for unknown or missing values."""
        if self._direct(values):
            # a served request's arrays already have the vocabulary's type: skip the pandas
            # conversions; a request's few hundred values are cheapest in a dict (~10 us a column
            # against ~90 us for pandas, which builds an Index of the values per call)
            if len(values) <= _DICT_LOOKUP_MAX:
                position = self._positions.get
                return np.fromiter((position(v, 0) for v in values.tolist()), np.int64, len(values))
            return (self._index.get_indexer(values) + 1).astype(np.int64)
        series = pd.Series(values)
        if self.vocabulary and isinstance(self.vocabulary[0], str):
            series = series.astype(object).where(series.notna(), None).map(
                lambda v: v if v is None else str(v)
            )
        elif self.vocabulary:
            series = pd.to_numeric(series, errors="coerce")
        return (self._index.get_indexer(series.to_numpy()) + 1).astype(np.int64)

    def _direct(self, values: Any) -> bool:
        """Whether `values` can be looked up as they are: numbers for a numeric vocabulary,
        text (or None) for a text one."""
        if not isinstance(values, np.ndarray) or values.ndim != 1 or not self.vocabulary:
            return False
        if isinstance(self.vocabulary[0], str):
            return values.dtype.kind == "U" or (
                values.dtype.kind == "O" and all(v is None or isinstance(v, str) for v in values)
            )
        return values.dtype.kind in "iu" or (
            values.dtype.kind == "f" and isinstance(self.vocabulary[0], float)
        )


@dataclass(frozen=True)
class NumericFeature:
    name: str
    source: str
    log1p: bool
    mean: float
    std: float


@dataclass(frozen=True)
class TextFeature:
    name: str
    source: str
    dim: int


@dataclass(frozen=True)
class FeatureLayout:
    """Which columns are categorical, numeric or text, and where serving finds each of them."""

    categorical: Mapping[str, str]
    numeric: Mapping[str, str]
    log1p: frozenset[str] = frozenset()
    text: tuple[str, str, int] | None = None

    def __post_init__(self) -> None:
        for kind, columns in (("categorical", self.categorical), ("numeric", self.numeric)):
            for name, source in columns.items():
                if source not in SOURCES:
                    raise ValueError(
                        f"layout.{kind}.{name}: unknown source {source!r}; choose one of {SOURCES}"
                    )


@dataclass(frozen=True)
class EncodedFrame:
    """Model-ready arrays: category indices [N, T], scaled numbers [N, F], text vectors [N, D]."""

    categorical: np.ndarray
    numeric: np.ndarray
    text: np.ndarray | None

    def __len__(self) -> int:
        return len(self.categorical)


@dataclass(frozen=True)
class FeatureSpec:
    categorical: tuple[CategoricalFeature, ...]
    numeric: tuple[NumericFeature, ...]
    text: TextFeature | None

    @classmethod
    def fit(cls, frame: pd.DataFrame, layout: FeatureLayout, min_count: int = 1) -> FeatureSpec:
        """Vocabularies (values seen at least `min_count` times, sorted) and numeric scales."""
        categorical = []
        for name, source in layout.categorical.items():
            counts = _column(frame, name).value_counts(dropna=True)
            kept = counts[counts >= min_count].index
            vocabulary = tuple(sorted(_plain(value) for value in kept))
            categorical.append(CategoricalFeature(name, source, vocabulary))
        numeric = []
        for name, source in layout.numeric.items():
            values = _scaled_input(_column(frame, name), name in layout.log1p)
            mean = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
            std = float(np.nanstd(values)) if np.isfinite(values).any() else 1.0
            numeric.append(NumericFeature(name, source, name in layout.log1p, mean, std or 1.0))
        text = TextFeature(*layout.text) if layout.text else None
        return cls(tuple(categorical), tuple(numeric), text)

    @property
    def columns(self) -> tuple[str, ...]:
        names = [f.name for f in self.categorical] + [f.name for f in self.numeric]
        if self.text:
            names.append(self.text.name)
        return tuple(names)

    @property
    def column_sources(self) -> dict[str, list[str]]:
        sources: dict[str, list[str]] = {source: [] for source in SOURCES}
        for feature in (*self.categorical, *self.numeric, *([self.text] if self.text else [])):
            sources[feature.source].append(feature.name)
        return sources

    def encode(self, frame: Mapping[str, Any], with_text: bool = True) -> EncodedFrame:
        """Encode columns of equal length N; `with_text=False` leaves text to the caller."""
        length = _frame_length(frame, self.columns)
        categorical = np.zeros((length, len(self.categorical)), dtype=np.int64)
        for t, feature in enumerate(self.categorical):
            values = frame.get(feature.name)
            if values is not None:
                categorical[:, t] = feature.lookup(values)
        numeric = np.zeros((length, len(self.numeric)), dtype=np.float32)
        for f, feature in enumerate(self.numeric):
            values = frame.get(feature.name)
            if values is None:
                continue
            scaled = (_scaled_input(values, feature.log1p) - feature.mean) / feature.std
            numeric[:, f] = _finite_or_zero(scaled)
        text = None
        if self.text is not None and with_text:
            text = _text_matrix(frame.get(self.text.name), length, self.text.dim)
        return EncodedFrame(categorical, numeric, text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": [
                {"name": f.name, "source": f.source, "vocabulary": list(f.vocabulary)}
                for f in self.categorical
            ],
            "numeric": [vars(f) for f in self.numeric],
            "text": vars(self.text) if self.text else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            tuple(
                CategoricalFeature(f["name"], f["source"], tuple(f["vocabulary"]))
                for f in data["categorical"]
            ),
            tuple(NumericFeature(**f) for f in data["numeric"]),
            TextFeature(**data["text"]) if data.get("text") else None,
        )


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise KeyError(f"training frame has no column {name!r}; columns: {sorted(frame.columns)}")
    return frame[name]


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so vocabularies are JSON-able."""
    return value.item() if isinstance(value, np.generic) else value


def _scaled_input(values: Any, log1p: bool) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        numbers = values.astype(np.float64)
    else:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    numbers = np.where(np.isfinite(numbers), numbers, np.nan)
    return np.log1p(np.clip(numbers, 0.0, None)) if log1p else numbers


def _finite_or_zero(values: np.ndarray) -> np.ndarray:
    """NaN and infinities as 0 (one pass; np.nan_to_num makes four)."""
    return np.where(np.isfinite(values), values, 0.0)


def _text_matrix(values: Any, length: int, dim: int) -> np.ndarray:
    matrix = np.zeros((length, dim), dtype=np.float32)
    if values is None:
        return matrix
    if isinstance(values, np.ndarray) and values.ndim == 2:
        rows = values.astype(np.float32, copy=False)
        matrix[:] = _finite_or_zero(rows[:, :dim])
        return matrix
    for row, vector in enumerate(values):
        if vector is not None and len(vector) == dim:
            matrix[row] = _finite_or_zero(np.asarray(vector, dtype=np.float32))
    return matrix


def _frame_length(frame: Mapping[str, Any], columns: Sequence[str]) -> int:
    lengths = {name: len(frame[name]) for name in columns if frame.get(name) is not None}
    if not lengths:
        raise ValueError(f"frame has none of the model's columns {list(columns)}")
    if len(set(lengths.values())) != 1:
        raise ValueError(f"frame columns differ in length: {lengths}")
    return next(iter(lengths.values()))
