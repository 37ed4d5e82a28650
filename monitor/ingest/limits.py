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

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from monitor.ingest.validation import InvalidMessage, PredictionEvent
from monitor.settings import IngestSettings, Settings
from monitor.storage import Storage

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


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
        bad = CONTROL_CHARACTERS.search(name)
        if bad is not None:
            raise InvalidMessage(
                "bad_feature_name",
                f"feature name {name[:40]!r} contains the control character U+{ord(bad.group()):04X}",
            )


Kind = Literal["numerical", "categorical"]


@dataclass
class Refusals:
    """What the registry refused in one admission: whole models, and single (model, feature) names."""

    models: dict[str, InvalidMessage] = field(default_factory=dict)
    features: dict[tuple[str, str], InvalidMessage] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.models or self.features)

    def reason(self, event: PredictionEvent) -> InvalidMessage | None:
        """Why ``event`` is refused, or None if it is not."""
        refused = self.models.get(event.model)
        if refused is not None:
            return refused
        if self.features:
            for name in event.features:
                refused = self.features.get((event.model, name))
                if refused is not None:
                    return refused
        return None


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

    def admit(self, models: Iterable[str], entries: Iterable[tuple[str, str, Kind]]) -> Refusals:
        """Register what fits the limits; return what does not (deterministically: sorted order)."""
        limits = self._policy.limits
        configured = self._policy.configured
        refusals = Refusals()
        with self._lock:
            features = self._load()
            new_rows: list[tuple[str, str, str]] = []
            for model in sorted(set(models)):
                if model in features:
                    continue
                if limits.unconfigured_models == "dead_letter" and model not in configured:
                    refusals.models[model] = InvalidMessage(
                        "unconfigured_model",
                        f"model {model!r} is not configured and ingest.unconfigured_models is dead_letter",
                    )
                elif len(features) >= limits.max_models:
                    refusals.models[model] = InvalidMessage(
                        "limit_models", f"model {model!r} would exceed ingest.max_models = {limits.max_models}"
                    )
                else:
                    features[model] = set()
                    new_rows.append((model, "", ""))
            for model, feature, kind in sorted(set(entries)):
                if model in refusals.models or (model, feature, kind) in self._kinds:
                    continue
                names = features.setdefault(model, set())
                if feature not in names and len(names) >= limits.max_features_per_model:
                    refusals.features[(model, feature)] = InvalidMessage(
                        "limit_model_features",
                        f"feature {feature[:40]!r} would exceed ingest.max_features_per_model = "
                        f"{limits.max_features_per_model} for model {model!r}",
                    )
                    continue
                names.add(feature)
                self._kinds.add((model, feature, kind))
                new_rows.append((model, feature, kind))
            if new_rows:
                try:
                    self._storage.insert_rows("model_features", new_rows, ["model", "feature", "kind"])
                except BaseException:
                    self._features, self._kinds = None, set()  # reload what was really stored
                    raise
        return refusals
