"""The reference registry: which reference sets a model has, their rows, profiles and samples.

A reference is registered once (``monitor reference add`` or from ``models.M.reference`` in the
configuration) and stored in ClickHouse: its rows in ``reference_rows`` laid out like ``events``
(typed ``n__``/``c__`` columns, so the same column expressions read both), its summary in
``references`` (one row per model and version; the newest registration of a version wins). Loading
lives in :mod:`detectors.registration`; this module reads.

Kinds: ``training`` (the data the model was trained on; the default for files, and what the
``skew`` detector compares production with), ``baseline`` (any other file) and ``window`` (a time
range of logged events copied at registration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from detectors.references.profile import Kind, ReferenceProfile
from detectors.segments import segment_condition
from monitor.storage import Storage, quote_identifier
from monitor.storage.events import feature_column
from monitor.storage.sqlfmt import sql_string

REFERENCES_TABLE = "references"
ROWS_TABLE = "reference_rows"
ReferenceKind = Literal["training", "baseline", "window"]
REFERENCE_KINDS: tuple[str, ...] = ("training", "baseline", "window")


@dataclass(frozen=True)
class Reference:
    """One registered reference set of a model."""

    model: str
    version: str
    kind: str
    source: str
    rows: int
    load_id: str
    columns: dict[str, Kind]
    segment_keys: tuple[str, ...]
    has_prediction: bool
    has_label: bool
    profile: ReferenceProfile
    created_at: datetime

    def from_sql(self, storage: Storage) -> str:
        return storage.table(ROWS_TABLE)

    def where_sql(self, segment: tuple[str, str] | None = None) -> str:
        """Rows of this reference (and of one segment, where the reference carries that segment key)."""
        condition = f"load_id = {sql_string(self.load_id)}"
        if segment is not None and segment[0] in self.segment_keys:
            condition += segment_condition(segment)
        return condition

    def column_expr(self, feature: str) -> str:
        return quote_identifier(feature_column(feature, self.columns[feature]))

    @property
    def prediction_kind(self) -> Kind | None:
        return self.profile.prediction.kind if self.profile.prediction else None

    @property
    def label_kind(self) -> Kind | None:
        return self.profile.label.kind if self.profile.label else None

    def prediction_expr(self) -> str | None:
        kind = self.prediction_kind
        return None if kind is None else "prediction_num" if kind == "numerical" else "prediction_cat"

    def describe(self) -> str:
        extras = [x for x, present in (("prediction", self.has_prediction), ("label", self.has_label)) if present]
        return (
            f"{self.model} version {self.version} ({self.kind}): {self.rows:,} rows, {len(self.columns)} features"
            + (f" + {' + '.join(extras)}" if extras else "")
            + f", from {self.source}"
        )


_SELECT = (
    "SELECT model, version, kind, source, rows, load_id, columns, segment_keys, has_prediction, has_label, "
    "profile, created_at FROM {table} FINAL"
)


def _from_row(row: tuple[Any, ...]) -> Reference:
    model, version, kind, source, rows, load_id, columns, segment_keys, has_pred, has_label, profile, created = row
    return Reference(
        model=model,
        version=version,
        kind=kind,
        source=source,
        rows=int(rows),
        load_id=load_id,
        columns=json.loads(columns),
        segment_keys=tuple(segment_keys),
        has_prediction=bool(has_pred),
        has_label=bool(has_label),
        profile=ReferenceProfile.from_json(json.loads(profile)),
        created_at=created,
    )


def list_references(storage: Storage, model: str | None = None) -> list[Reference]:
    """Every registered reference (of one model), oldest registration first."""
    where = "" if model is None else " WHERE model = {model:String}"
    rows = storage.rows(
        _SELECT.format(table=storage.table(REFERENCES_TABLE)) + where + " ORDER BY model, created_at",
        parameters={"model": model} if model is not None else None,
    )
    return [_from_row(r) for r in rows]


def get_reference(storage: Storage, model: str, version: str | None = None) -> Reference | None:
    """A given version, or (``version=None``) the most recently registered reference of the model."""
    references = list_references(storage, model)
    if version is not None:
        return next((r for r in references if r.version == version), None)
    return references[-1] if references else None


def training_reference(storage: Storage, model: str) -> Reference | None:
    """The newest reference registered with kind ``training`` (what ``skew`` compares production with)."""
    training = [r for r in list_references(storage, model) if r.kind == "training"]
    return training[-1] if training else None


def next_version(storage: Storage, model: str) -> str:
    """One more than the largest numeric version of the model ("1" for the first)."""
    numbers = [int(r.version) for r in list_references(storage, model) if r.version.isdigit()]
    return str(max(numbers, default=0) + 1)
