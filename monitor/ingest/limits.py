"""Per-message and per-fleet limits: what one producer may send before its messages are refused.

The schema's validator (:mod:`monitor.ingest.validation`) says what a well-formed event is; these
limits say how much of it the service takes, so that no producer can stop ingestion or grow the
store without bound. Each broken limit is a dead letter with a one-line reason, never an error.

- stateless, per event (:func:`check_event`): number of features, feature-name length and
  characters;
- stateful, per fleet (:class:`FeatureRegistry`): distinct models, distinct features per model,
  and whether models absent from the configuration are kept.

Feature names may hold any Unicode character except control characters (U+0000-U+001F,
U+007F-U+009F): quotes, backticks, spaces and non-Latin scripts are fine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from monitor.ingest.validation import InvalidMessage, PredictionEvent, feature_name_problem
from monitor.settings import IngestSettings, Settings
from monitor.storage import Storage


@dataclass(frozen=True)
class IngestPolicy:
    """The limits in force and the configured models, resolved once from the settings."""

    limits: IngestSettings = field(default_factory=IngestSettings)
    max_message_bytes: int = 1_000_000
    # model -> its configured features ({} = configured without a feature list)
    configured: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestPolicy:
        return cls(
            settings.ingest,
            settings.kafka.max_message_bytes,
            {name: frozenset(model.features) for name, model in settings.models.items()},
        )

    def unconfigured(self, model: str) -> InvalidMessage | None:
        """The refusal of an event or label of ``model`` when only configured models are kept."""
        if self.limits.unconfigured_models == "dead_letter" and model not in self.configured:
            return InvalidMessage(
                "unconfigured_model",
                f"model {model!r} is not configured and ingest.unconfigured_models is dead_letter",
            )
        return None


def check_event(event: PredictionEvent, limits: IngestSettings) -> None:
    """Raise :class:`InvalidMessage` if the event breaks a per-event limit."""
    features = event.features
    if len(features) > limits.max_features_per_event:
        raise InvalidMessage(
            "limit_features",
            f"event has {len(features)} features, more than ingest.max_features_per_event = "
            f"{limits.max_features_per_event}",
        )
    longest = limits.max_feature_name_length
    for name in features:
        if len(name) > longest:
            raise InvalidMessage(
                "limit_feature_name",
                f"feature name {name[:40]!r}... is {len(name)} characters, more than "
                f"ingest.max_feature_name_length = {longest}",
            )
        problem = feature_name_problem(name)
        if problem is not None:
            raise InvalidMessage("bad_feature_name", problem)


Kind = Literal["numerical", "categorical"]


@dataclass
class Refusals:
    """What the registry refused in one admission: whole models, and single (model, feature) names."""

    models: dict[str, InvalidMessage] = field(default_factory=dict)
    features: dict[tuple[str, str], InvalidMessage] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.models or self.features)


class FeatureRegistry:
    """The models and (model, feature, kind) triples stored so far, and the fleet limits on them.

    Loaded once from ``model_features`` and kept in memory; admissions are written back before the
    events that use them are stored, so a restart counts them. Thread-safe.
    """

    def __init__(self, storage: Storage, policy: IngestPolicy) -> None:
        self._storage = storage
        self._policy = policy
        self._lock = threading.Lock()
        self._features: dict[str, set[str]] | None = None  # model -> feature names
        self._kinds: set[tuple[str, str, str]] = set()

    def _load(self) -> dict[str, set[str]]:
        if self._features is None:
            features: dict[str, set[str]] = {}
            for model, feature, kind in self._storage.rows(
                f"SELECT model, feature, kind FROM {self._storage.table('model_features')}"
            ):
                names = features.setdefault(model, set())
                if feature:
                    names.add(feature)
                    self._kinds.add((model, feature, kind))
            self._features = features
        return self._features

    def known(self, model: str, feature: str, kind: str) -> bool:
        with self._lock:
            self._load()
            return (model, feature, kind) in self._kinds

    def _admit_model(self, model: str, features: dict[str, set[str]]) -> InvalidMessage | None:
        """Register ``model`` in memory if it may be stored; the refusal otherwise."""
        limits = self._policy.limits
        if model in features:
            return None
        refused = self._policy.unconfigured(model)
        if refused is not None:
            return refused
        if len(features) >= limits.max_models:
            return InvalidMessage(
                "limit_models", f"model {model!r} would exceed ingest.max_models = {limits.max_models}"
            )
        features[model] = set()
        return None

    def _save(self, rows: list[tuple[str, str, str]]) -> None:
        if not rows:
            return
        try:
            self._storage.insert_rows("model_features", rows, ["model", "feature", "kind"])
        except BaseException:
            self._features, self._kinds = None, set()  # reload what was really stored
            raise

    def admit_batch(self, models: Iterable[str], entries: Iterable[tuple[str, str, Kind]]) -> Refusals:
        """The fast path's admission: new models in sorted order; a model's new features all at once
        or, if they do not all fit, none (its events are then admitted one by one by
        :meth:`admit_events`, in the order they were read)."""
        limits = self._policy.limits
        refusals = Refusals()
        with self._lock:
            features = self._load()
            rows: list[tuple[str, str, str]] = []
            for model in sorted(set(models)):
                known = model in features
                refused = self._admit_model(model, features)
                if refused is not None:
                    refusals.models[model] = refused
                elif not known:
                    rows.append((model, "", ""))
            new: dict[str, set[tuple[str, str, Kind]]] = {}
            for entry in entries:
                if entry[0] not in refusals.models and entry not in self._kinds:
                    new.setdefault(entry[0], set()).add(entry)
            for model, model_entries in new.items():
                names = features.setdefault(model, set())
                added = {f for _, f, _ in model_entries} - names
                if len(names) + len(added) > limits.max_features_per_model:
                    for _, feature, _ in model_entries:
                        if feature in added:
                            refusals.features[(model, feature)] = InvalidMessage(
                                "limit_model_features", "decided event by event"
                            )
                    continue
                names |= added
                self._kinds |= model_entries
                rows.extend(sorted(model_entries))
            self._save(rows)
        return refusals

    def admit_events(self, events: list[PredictionEvent]) -> list[InvalidMessage | None]:
        """Admission event by event, in order: an event whose model or new features do not fit is
        refused whole (nothing of it is registered)."""
        limits = self._policy.limits
        verdicts: list[InvalidMessage | None] = []
        with self._lock:
            features = self._load()
            rows: list[tuple[str, str, str]] = []
            for event in events:
                model = event.model
                known = model in features
                refused = self._admit_model(model, features)
                if refused is not None:
                    verdicts.append(refused)
                    continue
                if not known:
                    rows.append((model, "", ""))
                names = features[model]
                entries = {
                    (model, key, "numerical" if type(value) is float else "categorical")
                    for key, value in event.features.items()
                    if value is not None
                }
                new_entries = entries - self._kinds
                added = {f for _, f, _ in new_entries} - names
                if len(names) + len(added) > limits.max_features_per_model:
                    first = sorted(added)[0]
                    verdicts.append(
                        InvalidMessage(
                            "limit_model_features",
                            f"feature {first[:40]!r} would exceed ingest.max_features_per_model = "
                            f"{limits.max_features_per_model} for model {model!r}",
                        )
                    )
                    continue
                names |= added
                self._kinds |= new_entries
                rows.extend(sorted(new_entries))
                verdicts.append(None)
            self._save(rows)
        return verdicts
