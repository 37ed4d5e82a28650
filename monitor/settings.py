"""Configuration: one YAML file plus ``MONITOR_`` environment overrides, validated once at the edge.

Everything downstream receives the frozen :class:`Settings` object (or the part it needs), never raw
dicts. Precedence, lowest first: defaults, the YAML file, ``MONITOR_*`` variables with ``__`` for
nesting (``MONITOR_MODELS__FRAUD__WINDOW=2h``), and the documented flat names
``MONITOR_CLICKHOUSE_DSN``, ``MONITOR_KAFKA_BOOTSTRAP``, ``MONITOR_API_TOKEN`` and ``MONITOR_API_READ_TOKEN``.
A variable's keys match the file's whatever their case and with ``_`` for ``-``
(``MONITOR_MODELS__FRAUD_EU__WINDOW`` is model ``fraud-eu``); a variable naming a model or channel the
file does not have is an error, and an error caused by a variable names the variable, not the file.

Secrets (webhook URLs, routing keys, signing secrets, the Kafka SASL password) are best referenced by
the *name* of an environment variable (``*_env`` keys) so the file itself can be committed; they are
resolved only when used. Given inline instead, they are held as secret types (``SecretStr``, and
:class:`SecretDsn` for the ClickHouse DSN, whose password is masked) so that no ``repr``, log line or
API response shows them.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from monitor.dsn import check_dsn
from monitor.durations import Duration
from monitor.errors import ConfigError
from monitor.secrets import MASK, redact_dsn
from monitor.windows import TIME_RANGE, in_time_range
from monitor_sdk.validation import model_name_problem

DEFAULT_CONFIG_FILE = "monitor.yaml"
ENV_PREFIX = "MONITOR_"
# Flat names promised by the contract, mapped onto their nested keys.
FLAT_ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "MONITOR_CLICKHOUSE_DSN": ("clickhouse", "dsn"),
    "MONITOR_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "MONITOR_API_TOKEN": ("api", "token"),
    "MONITOR_API_READ_TOKEN": ("api", "read_token"),
}

FeatureType = Literal["numerical", "categorical"]
Severity = Literal["info", "warning", "error", "critical"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SecretDsn(SecretStr):
    """A DSN that may hold a password: shown as ``http://user:***@host:8123/db`` everywhere.

    ``get_secret_value()`` gives the real DSN to the one place that connects. It compares equal to its
    plain text, so ``settings.clickhouse.dsn == "chdb://..."`` reads naturally in checks.
    """

    def _display(self) -> str:
        return redact_dsn(self.get_secret_value())

    def __str__(self) -> str:
        return self._display()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.get_secret_value() == other
        return isinstance(other, SecretStr) and self.get_secret_value() == other.get_secret_value()

    def __hash__(self) -> int:
        return hash(self.get_secret_value())


class ClickHouseSettings(_Frozen):
    """Where the data lives. ``chdb://PATH`` is embedded ClickHouse in this process; ``http(s)://`` a server.

    ``https://`` means TLS with the server's certificate verified (against ``ca_file`` if given, else the
    system's trust store); port 8443 when the DSN names none.
    """

    dsn: SecretDsn = SecretDsn("chdb://./.monitor/db")
    database: str = Field("monitor", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    insert_retries: int = Field(8, ge=0, description="attempts before an insert failure stops the consumer")
    ca_file: Path | None = Field(None, description="PEM file of the CA(s) that signed the server's certificate")
    verify: bool = Field(True, description="verify the server's TLS certificate and host name (https:// only)")
    cluster: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="a ClickHouse cluster (remote_servers): tables are created ON CLUSTER with replicated engines",
    )

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, value: SecretDsn) -> SecretDsn:
        check_dsn(value.get_secret_value())  # its messages never hold the password
        return value


class KafkaSettings(_Frozen):
    """The consumer's connection, topics and batching policy."""

    bootstrap: str = "127.0.0.1:9092"
    predictions_topic: str = "predictions"
    labels_topic: str = "labels"
    group_id: str = "monitor"
    partitions: int = Field(3, ge=1, description="partitions for topics the service creates itself")
    batch_max_messages: int = Field(50_000, ge=1, description="flush a batch at this many messages")
    batch_max_seconds: float = Field(1.0, gt=0, description="or when the oldest message waited this long")
    max_message_bytes: int = Field(1_000_000, ge=1, description="larger events go to dead_letters")
    session_timeout_ms: int = Field(10_000, ge=1000)
    max_poll_records: int = Field(10_000, ge=1)
    connect_timeout: Duration = Field(
        timedelta(seconds=30), description="give up reaching the brokers (or authenticating) after this"
    )
    # Transport security, for the consumer, the admin client and any producer (monitor.kafka_security).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="required with SASL_PLAINTEXT and SASL_SSL"
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_env: str | None = Field(None, description="name of the variable holding the SASL password")
    ssl_cafile: Path | None = Field(None, description="PEM CA file; default: the system's trust store")
    ssl_certfile: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="PEM private key of the client certificate")
    ssl_key_password: SecretStr | None = None
    ssl_key_password_env: str | None = None
    ssl_check_hostname: bool = Field(True, description="check the broker's certificate matches its host name")

    @model_validator(mode="after")
    def _security_consistent(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl:
            if self.sasl_mechanism is None:
                raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism")
            if not self.sasl_username:
                raise ValueError(f"security_protocol {self.security_protocol} needs sasl_username")
            if (self.sasl_password is None) == (self.sasl_password_env is None):
                raise ValueError("set exactly one of sasl_password or sasl_password_env")
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password or self.sasl_password_env:
            raise ValueError(f"SASL settings given but security_protocol is {self.security_protocol}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        if self.ssl_key_password is not None and self.ssl_key_password_env is not None:
            raise ValueError("set at most one of ssl_key_password or ssl_key_password_env")
        return self


class IngestSettings(_Frozen):
    """Limits that keep one producer from stopping or swamping ingestion (docs/ingestion.md)."""

    max_features_per_event: int = Field(1000, ge=1, le=1000, description="more: the event is dead-lettered")
    max_feature_name_length: int = Field(256, ge=1, le=256, description="characters; longer: dead-lettered")
    max_features_per_model: int = Field(2000, ge=1, description="distinct feature names one model may use")
    max_models: int = Field(1000, ge=1, description="distinct models stored; events of further models dead-lettered")
    unconfigured_models: Literal["keep", "dead_letter"] = Field(
        "keep", description="events of models absent from `models:`: stored (within the limits) or dead-lettered"
    )
    batch_max_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="flush a batch at this many message bytes")
    dead_letter_prefix_bytes: int = Field(4096, ge=0, description="bytes kept of a message over the size limit")
    typed_columns_per_model: int = Field(200, ge=0, description="features per model given a typed column")
    max_typed_columns: int = Field(2000, ge=0, description="typed feature columns in `events` in all")
    schema_seconds_per_batch: float = Field(2.0, gt=0, description="time a batch may spend adding typed columns")


def _model_names(models: dict[str, Any]) -> dict[str, Any]:
    """Keys that events could carry as ``model`` (the rule of docs/ingestion.md, shared with the validator)."""
    for name in models:
        problem = model_name_problem(name)
        if problem is not None:
            raise ValueError(f"{name!r} is not a model name: it {problem}")
    return models


class RetentionSettings(_Frozen):
    """How long rows are kept (ClickHouse TTL); ``models`` overrides ``events`` (and labels) per model."""

    events: Duration = Field(default=timedelta(days=90))
    dead_letters: Duration = Field(default=timedelta(days=30))
    delivered_outbox: Duration = Field(default=timedelta(days=30))
    detector_results: Duration = Field(default=timedelta(days=400))
    alerts: Duration = Field(default=timedelta(days=400))
    models: dict[str, Duration] = Field(default_factory=dict)

    _valid_models = field_validator("models")(_model_names)

    @field_validator("events", "dead_letters", "delivered_outbox", "detector_results", "alerts")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class LocalBrokerSettings(_Frozen):
    """The Apache Kafka broker that ``monitor kafka start`` runs for the demo and the tests."""

    home: Path = Path(".cache/kafka")
    version: str = "4.1.1"
    heap: str = "768m"
    controller_port: int | None = Field(None, description="default: the client port + 1")


def _blank_is_unset(value: object) -> object:
    """An empty token (``MONITOR_API_TOKEN=`` in a compose file) means "not set", never "empty password".

    Surrounding whitespace is dropped too: a token read from a file usually ends with a newline.
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


Token = Annotated[SecretStr | None, BeforeValidator(_blank_is_unset)]


class ApiSettings(_Frozen):
    """The HTTP API of ``monitor up`` and the dashboard beside it (docs/security.md)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token: Token = Field(None, description="bearer token for every endpoint, writes and admin included")
    read_token: Token = Field(None, description="bearer token for reads only (GET under /api/v1, /metrics)")
    reference_dir: Path | None = Field(
        None, description="the only directory POST /api/v1/models/{m}/references reads files from (unset: refused)"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest request body; bigger ones get 413")
    max_ingest_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest body of POST /events and /labels")
    max_header_bytes: int = Field(
        64 * 1024, ge=4096, le=16 * 1024 * 1024, description="largest request line plus headers; bigger ones get 400"
    )
    report_max_window: Duration = Field(timedelta(days=7), description="longest window of the Evidently report")
    report_max_rows: int = Field(2_000_000, ge=1, description="most events in a report's window (it scans them)")
    report_sample_rows: int = Field(5000, ge=100, le=1_000_000, description="rows per side handed to Evidently")
    report_cache_size: int = Field(16, ge=0, description="rendered reports kept, ~4 MB each (0: no cache)")
    report_cache_ttl: Duration = Field(timedelta(minutes=5), description="how long a rendered report is reused")
    dashboard_host: str = Field("127.0.0.1", description="interface of the dashboard `monitor up --dashboard` starts")
    dashboard_port: int = Field(8501, ge=1, le=65535)
    public_url: str | None = Field(None, description="dashboard link used in notifications")

    @property
    def any_token(self) -> bool:
        """Whether access control is on: once a token is set, every /api/v1 route and /metrics need one."""
        return self.token is not None or self.read_token is not None


# ---------------------------------------------------------------- channels


def _masked_url(url: str) -> str:
    """Scheme and host of ``url`` with everything after them masked (a Slack URL's path is its secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return MASK
    if not parts.scheme:
        return MASK
    return f"{parts.scheme}://{host}/{MASK}"


def check_http_url(url: str) -> None:
    """``ValueError`` unless ``url`` is an http(s) URL with a host; the message shows no more than
    :func:`_masked_url` of it, since the URLs of receivers often embed their credentials."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 -- raises for a port that is not a number
    except ValueError:
        host, parts = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {_masked_url(url.strip())}")


def _secret_url(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        check_http_url(value.get_secret_value())
    return value


class SlackChannel(_Frozen):
    type: Literal["slack"]
    url: SecretStr | None = None
    url_env: str | None = None

    _valid_url = field_validator("url")(_secret_url)

    @model_validator(mode="after")
    def _one_url(self) -> SlackChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url or url_env")
        return self


class PagerDutyChannel(_Frozen):
    type: Literal["pagerduty"]
    routing_key: SecretStr | None = None
    routing_key_env: str | None = None
    url: str = "https://events.pagerduty.com/v2/enqueue"

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        check_http_url(value)
        return value

    @model_validator(mode="after")
    def _one_key(self) -> PagerDutyChannel:
        if (self.routing_key is None) == (self.routing_key_env is None):
            raise ValueError("set exactly one of routing_key or routing_key_env")
        return self


class WebhookChannel(_Frozen):
    type: Literal["webhook"]
    url: SecretStr | None = None
    url_env: str | None = None
    secret: SecretStr | None = Field(None, description="signing secret (prefer secret_env)")
    secret_env: str | None = None
    template: str | dict[str, Any] | None = Field(
        None, description="JSON body template; ${model}, ${reason}, ... are substituted"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="extra headers (values are secrets: an Authorization value is); ${env:NAME} resolved at send time",
    )
    send_resolved: bool = Field(False, description="also POST when the alert clears (retraining hooks rarely want it)")

    _valid_url = field_validator("url")(_secret_url)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url or url_env")
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("set at most one of secret or secret_env")
        if self.template is not None:
            from monitor.templates import parse_template

            try:
                parse_template(self.template)
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        return self


Channel = Annotated[SlackChannel | PagerDutyChannel | WebhookChannel, Field(discriminator="type")]


# ---------------------------------------------------------------- models


class PredictionSettings(_Frozen):
    type: Literal["probability", "class", "regression"] = "probability"
    threshold: float = Field(0.5, description="probability at or above which the positive class is predicted")
    positive_label: str | int | float | bool = 1


REFERENCE_VERSION_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}$"
"""A reference version: the one rule for the CLI, the configuration and the API (it is a URL path segment)."""


def reference_version_problem(version: str) -> str | None:
    """What makes ``version`` no reference version (e.g. "must not be empty"), or None."""
    if not version:
        return "must not be empty"
    if len(version) > 100:
        return f"is {len(version):,} characters long; at most 100"
    if not re.match(REFERENCE_VERSION_PATTERN, version):
        return f"{version[:40]!r} may hold only letters, digits, '_', '.' and '-'"
    if version == "latest":
        return "'latest' is reserved (GET /api/v1/models/<model>/references/latest is the newest)"
    return None


class ReferenceSettings(_Frozen):
    """Either a file (Parquet or CSV) or a time range of logged events."""

    file: Path | None = None
    start: datetime | None = None
    end: datetime | None = None
    version: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and not in_time_range(value):
            raise ValueError(f"must be {TIME_RANGE}")
        return value

    @field_validator("version")
    @classmethod
    def _valid_version(cls, value: str | None) -> str | None:
        problem = None if value is None else reference_version_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _file_or_range(self) -> ReferenceSettings:
        has_range = self.start is not None or self.end is not None
        if self.file is not None and has_range:
            raise ValueError("give either file or start/end, not both")
        if self.file is None and not (self.start and self.end):
            raise ValueError("give file, or both start and end")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class EverySchedule(_Frozen):
    every: Duration


Schedule = str | EverySchedule


class ColumnDriftSettings(_Frozen):
    method: str | None = None
    threshold: float | Literal["calibrated"] | None = None


MULTIVARIATE_METHODS = ("pca_reconstruction", "domain_classifier")


MultivariateMethod = Literal["pca_reconstruction", "domain_classifier"]


class DriftSettings(_Frozen):
    threshold_share: float = Field(0.5, gt=0, le=1)
    fdr: bool = Field(False, description="Benjamini-Hochberg control across p-value columns")
    columns: dict[str, ColumnDriftSettings] = Field(default_factory=dict)
    threshold: Literal["fixed", "calibrated", "auto"] = Field(
        "auto",
        description="distance thresholds: fixed defaults, calibrated to the window's size, or auto "
        "(calibrated but never below the default)",
    )
    multivariate: list[MultivariateMethod] = Field(
        default_factory=lambda: list[MultivariateMethod](["pca_reconstruction"]),
        description="multivariate drift methods run on each window",
    )
    multivariate_rows: int = Field(50_000, ge=10, description="rows drawn per side for multivariate drift")


ALERT_CONDITIONS = (
    "dataset_drift",
    "feature_drift",
    "prediction_drift",
    "skew",
    "missing_share",
    "out_of_range_share",
    "new_categories",
    "unexpected_features",
    "absent_features",
    "absent_key_share",
    "volume",
    "freshness",
    "performance",
    "multivariate_drift",
    "estimated_performance",
)
# What a rule's `metric` can name, per condition (the detectors' vocabulary, detectors/report.py; a test
# keeps these equal to the detectors' own lists). Any prediction type's names are accepted, since the
# type may be inferred from the data; a name no detector writes is a configuration error, not a rule
# that silently never fires.
_PERFORMANCE_METRICS = (
    *("label_coverage", "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    *(f"{m}_{avg}" for m in ("precision", "recall", "f1") for avg in ("macro", "weighted")),
    *("mae", "rmse", "mape", "r2"),
)
_ESTIMATED_METRICS = (
    *("roc_auc", "accuracy", "precision", "recall", "f1", "specificity"),
    *(f"{m}_{avg}" for m in ("roc_auc", "precision", "recall", "f1", "specificity") for avg in ("macro", "weighted")),
    *("mae", "mse", "rmse", "mape"),
)
RULE_METRICS: dict[str, tuple[str, ...]] = {
    "volume": ("count", "change_vs_day", "change_vs_week"),
    "freshness": ("seconds_since_last_event",),
    "performance": _PERFORMANCE_METRICS,
    "estimated_performance": _ESTIMATED_METRICS,
}
# Conditions whose value is only bad when greater (`above`); a `below` there would be ignored.
_ABOVE_ONLY = (
    "dataset_drift",
    "missing_share",
    "out_of_range_share",
    "new_categories",
    "absent_key_share",
    "unexpected_features",
    "absent_features",
    "freshness",
)
# Conditions where `metric` picks a statistic that is then compared with `above`/`below`.
_DRIFT_METRIC_CONDITIONS = ("feature_drift", "prediction_drift", "skew")
_PER_COLUMN_DRIFT = ("feature_drift", "prediction_drift")  # skew's `above` alone bounds its dataset share
# The keys each condition reads (alerts/rules.py); any other is refused rather than silently ignored.
_TAKES_FEATURES = ("feature_drift", "skew", "missing_share", "out_of_range_share", "new_categories", "absent_key_share")
_TAKES_METRIC = (
    "feature_drift",
    "prediction_drift",
    "skew",
    "volume",
    "freshness",
    "performance",
    "multivariate_drift",
    "estimated_performance",
)
_NO_BOUNDS = ("multivariate_drift",)  # the method's own verdict decides


class AlertRule(_Frozen):
    when: str
    for_: int = Field(1, alias="for", ge=1, description="consecutive windows before firing")
    notify: list[str] = Field(default_factory=list)
    severity: Severity = "warning"
    features: list[str] | None = None
    metric: str | None = None
    above: float | None = None
    below: float | None = None
    cooldown: Duration | None = None
    name: str | None = Field(None, description="stable identity; default derived from the rule")

    @field_validator("when")
    @classmethod
    def _known_condition(cls, value: str) -> str:
        if value not in ALERT_CONDITIONS:
            raise ValueError(f"unknown condition {value!r}; expected one of {', '.join(ALERT_CONDITIONS)}")
        return value

    @model_validator(mode="after")
    def _bounds_given(self) -> AlertRule:
        if self.when == "performance" and (self.metric is None or (self.above is None and self.below is None)):
            raise ValueError("performance needs metric (e.g. accuracy) and below (or above for losses)")
        if self.when == "estimated_performance" and self.metric is None:
            raise ValueError(
                "estimated_performance needs metric (e.g. roc_auc) and below/above, or neither to alert "
                "when the estimate leaves the reference band"
            )
        if self.when == "volume" and self.above is None and self.below is None:
            raise ValueError("volume needs below and/or above (metric: count, change_vs_day or change_vs_week)")
        if self.when == "freshness" and self.above is None:
            raise ValueError("freshness needs above (seconds since the last event)")
        if self.when == "multivariate_drift" and self.metric not in (None, *MULTIVARIATE_METHODS):
            raise ValueError(f"multivariate_drift's metric must be one of {', '.join(MULTIVARIATE_METHODS)}")
        unbounded = self.above is None and self.below is None
        if self.when in _DRIFT_METRIC_CONDITIONS and self.metric is not None and unbounded:
            raise ValueError(
                f"{self.when} with metric {self.metric!r} needs above (a distance) or below (a p-value); "
                "without metric the detector's own verdict decides"
            )
        if self.when in _PER_COLUMN_DRIFT and self.metric is None and not unbounded:
            raise ValueError(
                f"{self.when}'s above/below compare the statistic named by metric (e.g. psi, ks_p_value); "
                "give metric, or leave the bounds out for the detector's own verdict"
            )
        if self.features is not None and self.when not in _TAKES_FEATURES:
            raise ValueError(f"{self.when} does not take features (they would be ignored)")
        if self.metric is not None and self.when not in _TAKES_METRIC:
            raise ValueError(f"{self.when} does not take metric (it would be ignored)")
        if self.when in _NO_BOUNDS and not unbounded:
            raise ValueError(f"{self.when} does not take above/below: the method's own threshold decides")
        if self.when in _ABOVE_ONLY and self.below is not None:
            raise ValueError(f"{self.when} is bad when greater: use above, not below")
        return self

    @property
    def identity(self) -> str:
        """The rule's stable name within its model: ``name`` if set, else derived from the condition."""
        if self.name:
            return self.name
        text = self.when
        if self.features:
            text += ":" + ",".join(self.features)
        if self.metric:
            text += ":" + self.metric
        if self.above is not None:
            text += f">{self.above:g}"
        if self.below is not None:
            text += f"<{self.below:g}"
        return text


class ModelSettings(_Frozen):
    features: dict[str, FeatureType] = Field(default_factory=dict)
    prediction: PredictionSettings = Field(default_factory=PredictionSettings)
    reference: ReferenceSettings | None = None
    schedule: Schedule = "*/5 * * * *"
    window: Duration = Field(default=timedelta(hours=1))
    min_samples: int = Field(500, ge=1)
    segments: list[str] = Field(default_factory=list)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    alerts: list[AlertRule] = Field(default_factory=list)

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: Schedule) -> Schedule:
        if isinstance(value, str):
            from monitor.cron import cron_trigger

            try:
                cron_trigger(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _unique_rule_names(self) -> ModelSettings:
        seen: set[str] = set()
        for index, rule in enumerate(self.alerts):
            if rule.identity in seen:
                raise ValueError(f"alerts.{index}: two rules are both named {rule.identity!r}; give one a name")
            seen.add(rule.identity)
        return self


def _duration_or_zero(value: object) -> timedelta:
    if value in (0, "0", "0s"):
        return timedelta(0)
    from monitor.durations import parse_duration

    return parse_duration(value)


class SchedulerSettings(_Frozen):
    """How ``monitor up`` runs each model's detection job (APScheduler, UTC)."""

    enabled: bool = True
    delay: Annotated[timedelta, BeforeValidator(_duration_or_zero)] = Field(
        timedelta(seconds=5), description="wait after a window ends before evaluating it, so late events land"
    )
    misfire_grace: Duration = Field(timedelta(seconds=300), description="how late a run may start and still run")
    max_workers: int = Field(2, ge=1, description="models evaluated at the same time")
    catch_up: bool = Field(True, description="at start, evaluate the latest due window if it was missed")


class AlertingSettings(_Frozen):
    """Alert re-notification and the delivery outbox's retry policy."""

    default_cooldown: Duration = Field(timedelta(seconds=14400), description="re-notify an open alert after this")
    request_timeout: Duration = Field(timedelta(seconds=10))
    backoff_initial: Duration = Field(timedelta(seconds=1))
    backoff_max: Duration = Field(timedelta(seconds=300))
    retry_after_max: Duration = Field(timedelta(seconds=3600), description="cap on a receiver's Retry-After")
    give_up_after: Duration = Field(timedelta(seconds=86400), description="retry a delivery this long, then fail it")
    poll_interval: Duration = Field(timedelta(seconds=1), description="how often the worker looks for due deliveries")


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`, which reports errors readably."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    broker: LocalBrokerSettings = Field(default_factory=LocalBrokerSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    channels: dict[str, Channel] = Field(default_factory=dict)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    _valid_models = field_validator("models")(_model_names)

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        for model_name, model in self.models.items():
            for index, rule in enumerate(model.alerts):
                for channel in rule.notify:
                    if channel not in self.channels:
                        known = ", ".join(sorted(self.channels)) or "none configured"
                        raise ValueError(
                            f"models.{model_name}.alerts.{index}.notify: unknown channel {channel!r} "
                            f"(channels: {known})"
                        )
                known_metrics = RULE_METRICS.get(rule.when)
                if rule.metric is not None and known_metrics is not None and rule.metric not in known_metrics:
                    raise ValueError(
                        f"models.{model_name}.alerts.{index}.metric: {rule.metric!r} is not a metric of "
                        f"{rule.when}; expected one of {', '.join(known_metrics)}"
                    )
                for feature in rule.features or []:
                    if model.features and feature not in model.features:
                        raise ValueError(
                            f"models.{model_name}.alerts.{index}.features: {feature!r} is not a feature "
                            f"of model {model_name!r}"
                        )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the file and the environment itself, so that it knows which variable set
        # which key (errors name it) and can apply MONITOR_MODELS__FRAUD_EU__... to the model `fraud-eu`.
        return (init_settings, _MergedSource(settings_cls))


_merged_data: ContextVar[dict[str, Any] | None] = ContextVar("monitor_merged_data", default=None)


class _MergedSource(PydanticBaseSettingsSource):
    """Feeds the configuration :func:`load_settings` merged from the YAML file and the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_merged_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_merged_data.get() or {})


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow, e.g. a control character
            where = f"{path}: position {exc.position}"
            character = exc.character
            problem = f"unacceptable character #x{ord(character):04x}" if isinstance(character, str) else exc.reason
        raise ConfigError(f"{where}: invalid YAML: {' '.join(str(problem).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------- the environment

# Collections whose keys are names chosen in the file: a variable may override an entry, never add one.
_NAMED_ENTRIES: dict[tuple[str, ...], str] = {("models",): "model", ("channels",): "channel"}
# Keys whose values must never be echoed in an error message.
_SECRET_WORDS = ("token", "secret", "password", "dsn", "url", "key", "header", "credential")


@dataclass(frozen=True)
class _Override:
    """One ``MONITOR_*`` variable: its name as set, and the key path it sets in the merged data."""

    variable: str
    path: tuple[str, ...]


def _env_name(key: object) -> str:
    """How a key is written in a variable name: any case, '-' as '_' (a variable name cannot hold '-')."""
    return str(key).lower().replace("-", "_")


def _dotted(path: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in path)


def _resolve_path(variable: str, path: tuple[str, ...], data: dict[str, Any], source: str) -> tuple[str, ...]:
    """``path`` (lower case, from a variable's name) with each key replaced by the key of ``data`` it means.

    A key matches an existing one written in any case and with '_' for '-' (``FRAUD_EU`` is ``fraud-eu``);
    two existing keys matching it is an error, and so is a path naming a model or channel the
    configuration does not have (the environment overrides entries, it does not invent them: only
    ``MONITOR_MODELS`` or ``MONITOR_CHANNELS`` holding the whole collection as JSON can).
    """
    resolved: list[str] = []
    node: Any = data
    for key in path:
        candidates = [k for k in node if isinstance(k, str)] if isinstance(node, dict) else []
        if tuple(resolved) == ("retention", "models"):
            candidates += [m for m in data.get("models") or {} if isinstance(m, str) and m not in candidates]
        matches = [k for k in candidates if _env_name(k) == key]
        if len(matches) > 1:
            raise ConfigError(
                f"{variable}: {_dotted((*resolved, key))}: ambiguous: it matches "
                f"{', '.join(repr(m) for m in sorted(matches))}; rename one of them so that they differ "
                "other than in case and '-' versus '_'"
            )
        kind = _NAMED_ENTRIES.get(tuple(resolved))
        if not matches and kind:
            known = ", ".join(sorted(candidates)) or "none"
            raise ConfigError(
                f"{variable}: {_dotted((*resolved, key))}: no {kind} {key!r} in {source} to override "
                f"({kind}s: {known}); variables override the {kind}s of the file, they do not add any"
            )
        match = matches[0] if matches else key
        resolved.append(match)
        node = node.get(match) if isinstance(node, dict) else None
    return tuple(resolved)


def _decode_variable(source: EnvSettingsSource, variable: str, value: str, path: tuple[str, ...]) -> Any:
    """The value of one variable as pydantic-settings reads it (JSON for lists, mappings and models)."""
    source.env_vars = {variable.lower(): value}
    try:
        exploded: Any = source()
    except SettingsError as exc:  # a list, mapping or section is read as JSON
        cause = exc.__cause__
        reason = f"not valid JSON ({cause})" if isinstance(cause, ValueError) else "not valid JSON"
        raise ConfigError(f"{variable}: {_dotted(path)}: {reason}") from exc
    for key in path:
        if not isinstance(exploded, dict) or key not in exploded:
            return value
        exploded = exploded[key]
    return exploded


def _environment(data: dict[str, Any], source: str) -> tuple[dict[str, Any], list[_Override]]:
    """``data`` (the file) with every ``MONITOR_*`` variable applied, and which variable set which key.

    Whole sections first, then nested keys, then the flat names (``MONITOR_CLICKHOUSE_DSN``), so a more
    specific variable wins; as with pydantic-settings, ``__`` separates the keys and names are case-blind.
    """
    fields = set(Settings.model_fields)
    found: list[tuple[int, int, str, str, tuple[str, ...]]] = []
    for variable, value in os.environ.items():
        upper = variable.upper()
        if upper in FLAT_ENV_ALIASES:
            found.append((1, 2, variable, value, FLAT_ENV_ALIASES[upper]))
        elif upper.startswith(ENV_PREFIX):
            path = tuple(variable[len(ENV_PREFIX) :].lower().split("__"))
            if path[0] in fields and all(path):
                found.append((0, len(path), variable, value, path))
    if not found:
        return data, []
    decoder = EnvSettingsSource(Settings)
    merged, overrides = data, []
    for flat, _, variable, value, path in sorted(found):
        decoded = value if flat else _decode_variable(decoder, variable, value, path)
        resolved = _resolve_path(variable, path, merged, source)
        nested: dict[str, Any] = {resolved[-1]: decoded}
        for key in reversed(resolved[:-1]):
            nested = {key: nested}
        merged = _deep_merge(merged, nested)
        overrides.append(_Override(variable, resolved))
    return merged, overrides


# ---------------------------------------------------------------- error messages

# Error types of a union member the input is not even of the type of (a string given for a mapping):
# another member that got further explains the problem better.
_MISMATCH_TYPES = ("literal_error", "is_instance_of", "enum", "union_tag_invalid", "model_attributes_type")


def _key_path(loc: tuple[int | str, ...], data: Any, missing: bool) -> tuple[tuple[str, ...], int | None]:
    """The user's key path in pydantic's ``loc``: the parts naming keys (or list items) of the input.

    The rest are pydantic's names for union members (a channel's ``type`` tag such as ``webhook``,
    ``str``, ``function-after[...]``, ``[key]``): dropped. Also returns where the first of those was
    (None if none), so errors of the members of one union can be told apart.
    """
    path: list[str] = []
    node = data
    union_at: int | None = None
    for index, part in enumerate(loc):
        if isinstance(node, dict):
            key = next((k for k in node if k == part or str(k) == str(part)), _NO_KEY)
            if key is not _NO_KEY:
                path.append(str(key))
                node = node[key]
                continue
        elif isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node):
            path.append(str(part))
            node = node[part]
            continue
        if missing and index == len(loc) - 1:
            path.append(str(part))  # the required key that is not there
            continue
        if union_at is None:
            union_at = len(path)
    return tuple(path), union_at


_NO_KEY = object()


def _mismatch(error: Any) -> bool:
    kind = str(error["type"])
    return kind.endswith(("_type", "_parsing")) or kind in _MISMATCH_TYPES


def _echo_safe(message: str, path: tuple[str, ...], given: Any) -> str:
    """``message`` without the value it was given for a key that may hold a secret."""
    if not any(word in part.lower() for part in path for word in _SECRET_WORDS):
        return message
    if isinstance(given, SecretStr):
        given = given.get_secret_value()
    if not isinstance(given, str | int | float) or len(str(given)) < 4 or str(given).endswith("://"):
        return message  # too short to hide anything (and masking it would garble the message), or a bare scheme
    for text in (repr(given), str(given)):
        message = message.replace(text, MASK)
    return message


def _format_validation_error(
    exc: ValidationError, data: dict[str, Any], source: str, overrides: list[_Override]
) -> str:
    """One line per problem: ``<file or variable>: <key path>: <reason>``.

    Of the members of a union (a schedule is cron text or ``{every: ...}``), only the errors of the
    member that got furthest are shown: "schedule.every: duration must be positive", not also "schedule:
    Input should be a valid string".
    """
    problems = []
    for error in exc.errors():
        path, union_at = _key_path(error["loc"], data, error["type"] == "missing")
        message = _echo_safe(error["msg"].removeprefix("Value error, "), path, error.get("input"))
        problems.append((path, union_at, message, _mismatch(error)))
    best: dict[tuple[str, ...], tuple[int, bool]] = {}
    for path, union_at, _, mismatch in problems:
        if union_at is not None:
            score = (len(path) - union_at, not mismatch)
            best[path[:union_at]] = max(best.get(path[:union_at], score), score)
    lines: list[str] = []
    merged_mismatches: dict[tuple[str, ...], list[str]] = {}
    for path, union_at, message, mismatch in problems:
        if union_at is not None:
            top = best[path[:union_at]]
            if (len(path) - union_at, not mismatch) != top:
                continue
            if top == (0, False):  # no member accepted the value's type: say what each expected
                merged_mismatches.setdefault(path, []).append(message)
                continue
        lines.append(_problem_line(path, message, source, overrides))
    for path, messages in merged_mismatches.items():
        lines.append(_problem_line(path, "; or ".join(dict.fromkeys(messages)), source, overrides))
    return "\n".join(dict.fromkeys(lines))


def _problem_line(path: tuple[str, ...], message: str, source: str, overrides: list[_Override]) -> str:
    if path:
        return f"{_origin(path, source, overrides)}: {_dotted(path)}: {message}"
    head = message.split(": ", 1)[0] if ": " in message else ""
    where = tuple(head.split(".")) if head and " " not in head else ()  # a check across sections names its key
    return f"{_origin(where, source, overrides)}: {message}"


def _origin(path: tuple[str, ...], source: str, overrides: list[_Override]) -> str:
    """Who set the value at ``path``: the variable that set it or a section around it, else the file
    (naming the variables that set keys inside it, if any)."""
    setting = [o for o in overrides if o.path == path[: len(o.path)]]
    if setting:
        return max(setting, key=lambda o: len(o.path)).variable
    inside = [o.variable for o in overrides if o.path[: len(path)] == path]
    return f"{source} (with {', '.join(inside)})" if inside and path else source


def resolve_config_path(config: Path | None) -> Path | None:
    """The explicit ``--config`` file, else ``monitor.yaml`` in the working directory if present."""
    if config is not None:
        return config
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_settings(config: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise :class:`ConfigError` naming where each problem
    comes from (the file, or the ``MONITOR_*`` variable), the key path and the reason.

    ``overrides`` (tests) are merged into the file's content, below the environment.
    """
    path = resolve_config_path(config)
    if config is not None and not config.is_file():
        raise ConfigError(f"{config}: configuration file not found")
    data = _read_yaml(path) if path else {}
    if overrides:
        data = _deep_merge(data, overrides)
    source = str(path) if path else "environment"
    data, from_env = _environment(data, str(path) if path else "the configuration")
    token = _merged_data.set(data)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, data, source, from_env)) from exc
    finally:
        _merged_data.reset(token)
