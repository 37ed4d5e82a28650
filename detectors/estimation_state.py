"""Fitted estimation states in ClickHouse: fit once per reference, reuse on every window.

The key is the model, the reference's load (a replaced reference has a new one) and a settings key
(prediction settings, task, metrics and the state's format version), so a change of configuration
fits anew instead of reusing a state fitted for other settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from detectors.estimation.estimator import STATE_VERSION, Fitted
from monitor.storage import Storage

STATE_TABLE = "estimation_states"


def load_state(storage: Storage, model: str, load_id: str, settings: str) -> Fitted | None:
    rows = storage.rows(
        f"SELECT state FROM {storage.table(STATE_TABLE)} FINAL "
        "WHERE model = {model:String} AND load_id = {load:String} AND settings = {settings:String}",
        parameters={"model": model, "load": load_id, "settings": settings},
    )
    if not rows:
        return None
    try:
        return Fitted.from_dict(json.loads(rows[0][0]))
    except (ValueError, KeyError):  # another format version: fit again
        return None


def store_state(storage: Storage, model: str, load_id: str, settings: str, fitted: Fitted) -> None:
    storage.insert_rows(
        STATE_TABLE,
        [(model, load_id, settings, json.dumps(fitted.to_dict()))],
        ["model", "load_id", "settings", "state"],
    )


def fitted_state(storage: Storage, model: str, load_id: str, settings: str, fit: Callable[[], Fitted]) -> Fitted:
    """The stored state for this key, or ``fit()`` now and store it."""
    key = f"v{STATE_VERSION}|{settings}"
    found = load_state(storage, model, load_id, key)
    if found is not None:
        return found
    fitted = fit()
    store_state(storage, model, load_id, key, fitted)
    return fitted
