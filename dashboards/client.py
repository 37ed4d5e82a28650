"""The dashboard's only way to data: the service's HTTP API (never ClickHouse directly).

Reading through the API keeps the dashboard a pure client: it can run anywhere, with no database
credentials, and shows exactly what API users see. ``MONITOR_API_URL`` says where the API is;
``MONITOR_API_READ_TOKEN`` (else ``MONITOR_API_TOKEN``) is the bearer token it reads with.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
REPORT_TIMEOUT_S = 180.0


class ApiUnavailable(Exception):
    """The API could not be reached or answered with a server error; the message says which."""


class ApiAccessDenied(Exception):
    """The API refused the dashboard's token (401) or its scope (403); the message says what to set."""


def configured_token() -> str | None:
    """The token the dashboard reads with: the read token, else the write token (never required)."""
    for name in ("MONITOR_API_READ_TOKEN", "MONITOR_API_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class ApiClient:
    def __init__(self, base_url: str | None = None, timeout: float = 20.0, token: str | None = None) -> None:
        self.base_url = (base_url or os.environ.get("MONITOR_API_URL") or DEFAULT_API_URL).rstrip("/")
        token = token or configured_token()
        self.has_token = token is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def _get(self, path: str, timeout: float | None = None, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.get(path, params=clean, timeout=timeout or self._http.timeout)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the monitoring API at {self.base_url} is not reachable ({exc})") from exc
        if response.status_code >= 500:
            raise ApiUnavailable(f"the monitoring API answered {response.status_code}: {_message(response)}")
        if response.status_code in (401, 403):
            hint = (
                "the dashboard's token was refused: check MONITOR_API_READ_TOKEN"
                if self.has_token
                else "the API requires a token: set MONITOR_API_READ_TOKEN for the dashboard"
            )
            raise ApiAccessDenied(f"{hint} (the API answered {response.status_code}: {_message(response)})")
        if response.status_code >= 400:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def health(self) -> dict[str, Any]:
        return self._get("/healthz")

    def models(self) -> list[dict[str, Any]]:
        return self._get("/api/v1/models")["models"]

    def model(self, name: str) -> dict[str, Any] | None:
        return self._get(f"/api/v1/models/{_q(name)}")

    def timeline(
        self, model: str, start: str | None = None, feature: str | None = None, detector: str = "feature_drift"
    ) -> list[dict[str, Any]]:
        body = self._get(f"/api/v1/models/{_q(model)}/drift/timeline", start=start, feature=feature, detector=detector)
        return body["points"] if body else []

    def results(self, model: str, start: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        body = self._get(f"/api/v1/models/{_q(model)}/results", start=start, **filters)
        return body["results"] if body else []

    def distribution(self, model: str, feature: str, start: str | None = None, end: str | None = None):
        return self._get(f"/api/v1/models/{_q(model)}/distribution", feature=feature, start=start, end=end)

    def alerts(self, model: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        body = self._get("/api/v1/alerts", model=model, state=state)
        return body["alerts"] if body else []

    def deliveries(self, model: str | None = None) -> list[dict[str, Any]]:
        body = self._get("/api/v1/deliveries", model=model)
        return body["deliveries"] if body else []

    def report_html(self, model: str, start: str | None = None, end: str | None = None) -> str | None:
        # Evidently takes its time on a busy machine; the API caches the page once built.
        return self._get(f"/api/v1/models/{_q(model)}/report", timeout=REPORT_TIMEOUT_S, start=start, end=end)

    def events(self, model: str, limit: int = 20) -> list[dict[str, Any]]:
        body = self._get(f"/api/v1/models/{_q(model)}/events", limit=limit)
        return body["events"] if body else []


def _q(name: str) -> str:
    return quote(name, safe="")


def _message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
