"""Transport settings: what a ClickHouse DSN and the Kafka security settings turn into, and a real TLS
handshake (the test's own CA and a local HTTPS server) proving that an ``https://`` DSN verifies the
server's certificate."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from urllib3.exceptions import InsecureRequestWarning

from monitor.dsn import CLIENT_OPTIONS
from monitor.errors import ConfigError, InputError, StorageError
from monitor.kafka_security import kafka_client_kwargs
from monitor.settings import KafkaSettings, load_settings
from monitor.storage import connect_dsn
from monitor.storage.client import server_client_kwargs
from tests.tls_certs import TlsFiles, make_tls

# ---------------------------------------------------------------- ClickHouse DSNs


def test_https_dsn_means_tls_verified_on_8443() -> None:
    kwargs, database = server_client_kwargs("https://monitor:s3cret@ch.example.com/prod")
    assert database == "prod"
    assert kwargs["interface"] == "https" and kwargs["secure"] is True and kwargs["verify"] is True
    assert (kwargs["host"], kwargs["port"]) == ("ch.example.com", 8443)
    assert (kwargs["username"], kwargs["password"]) == ("monitor", "s3cret")
    assert "ca_cert" not in kwargs  # the system's trust store


def test_dsn_variants() -> None:
    kwargs, _ = server_client_kwargs("https://ch:9443/db", ca_file="/etc/ca.pem")
    assert (kwargs["port"], kwargs["ca_cert"], kwargs["verify"]) == (9443, "/etc/ca.pem", True)
    kwargs, _ = server_client_kwargs("https://ch/db", ca_file="/etc/ca.pem", verify=False)
    assert kwargs["verify"] is False and "ca_cert" not in kwargs
    kwargs, _ = server_client_kwargs("clickhouses://ch/db")
    assert kwargs["secure"] is True and kwargs["port"] == 8443
    kwargs, database = server_client_kwargs("http://u:p%40ss@ch/db?compress=lz4")
    assert (kwargs["secure"], kwargs["port"], kwargs["interface"]) == (False, 8123, "http")
    assert kwargs["password"] == "p@ss" and kwargs["compress"] == "lz4" and database == "db"
    assert "verify" not in kwargs


def test_dsn_query_credentials_and_options_reach_the_client() -> None:
    """``?user=...&password=...`` are credentials, not client arguments (which made HttpClient raise)."""
    kwargs, database = server_client_kwargs("http://127.0.0.1:1/db?password=x&user=u&connect_timeout=3")
    assert (kwargs["username"], kwargs["password"], kwargs["connect_timeout"], database) == ("u", "x", "3", "db")
    assert "user" not in kwargs


def test_dsn_options_are_client_arguments() -> None:
    from inspect import signature

    from clickhouse_connect.driver.httpclient import HttpClient

    assert set(signature(HttpClient).parameters) >= CLIENT_OPTIONS


@pytest.mark.parametrize(
    "dsn", ["http://127.0.0.1:1/db?password=x&user=u&bogus=1", "http://user:pw@[::1:1/db", "http://u:pw@ch:99999/db"]
)
def test_a_malformed_dsn_is_bad_input_not_an_unreachable_server(dsn: str) -> None:
    with pytest.raises(InputError) as info:
        connect_dsn(dsn, "monitor")
    assert "pw" not in str(info.value) and "password=x" not in str(info.value)


def test_clickhouse_tls_settings_from_yaml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "monitor.yaml"
    doc = {"clickhouse": {"dsn": "https://monitor:pw@ch:8443/monitor", "ca_file": "/etc/monitor/ca.pem"}}
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv("MONITOR_CLICKHOUSE__VERIFY", "false")
    settings = load_settings(config)
    assert settings.clickhouse.ca_file == Path("/etc/monitor/ca.pem") and settings.clickhouse.verify is False
    assert str(settings.clickhouse.dsn) == "https://monitor:***@ch:8443/monitor"


class _NotClickHouse(BaseHTTPRequestHandler):
    """Answers every request with a page that is not a ClickHouse response."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).seen.append(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        payload = b"<html>not a ClickHouse server</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"), "clickhouse")


@pytest.fixture
def https_server(tls: TlsFiles) -> Iterator[tuple[int, list[str]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    handler = type("Handler", (_NotClickHouse,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler.seen
    server.shutdown()
    server.server_close()


def _connect_error(dsn: str, **tls: Any) -> str:
    with pytest.raises(StorageError) as failed:
        connect_dsn(dsn, "monitor", **tls)
    return str(failed.value)


def test_https_dsn_verifies_the_server_certificate(
    https_server: tuple[int, list[str]], tls: TlsFiles, tmp_path: Path
) -> None:
    port, seen = https_server
    dsn = f"https://monitor:pw@127.0.0.1:{port}/monitor"
    # The right CA: the handshake succeeds and the request arrives; what fails is ClickHouse's protocol.
    message = _connect_error(dsn, ca_file=tls.ca)
    assert seen, "no HTTP request reached the server: the TLS handshake failed"
    assert "CERTIFICATE_VERIFY_FAILED" not in message and "SSL" not in message, message
    assert "Unexpected response to server version query" in message  # clickhouse-connect's own check
    assert ":***@" in message and ":pw@" not in message

    # A CA that did not sign the server's certificate (and the system store, which does not know it).
    seen.clear()
    stranger = make_tls(tmp_path / "other", "stranger")
    for extra in ({"ca_file": stranger.ca}, {}):
        message = _connect_error(dsn, **extra)
        assert "CERTIFICATE_VERIFY_FAILED" in message, message
    assert seen == []  # nothing was sent to an unverified server

    # verify: false (an explicit choice) skips the check, and urllib3 says so.
    with pytest.warns(InsecureRequestWarning):
        _connect_error(dsn, ca_file=stranger.ca, verify=False)
    assert seen


# ---------------------------------------------------------------- Kafka


def test_kafka_security_from_yaml_and_environment(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "monitor.yaml"
    doc = {
        "kafka": {
            "bootstrap": "b-1.kafka.example.com:9096",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "monitor",
            "sasl_password_env": "KAFKA_PASSWORD",
            "ssl_cafile": str(tls.ca),
        }
    }
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setenv("MONITOR_KAFKA__SASL_USERNAME", "monitor-prod")
    monkeypatch.setenv("KAFKA_PASSWORD", "from-the-environment")
    settings = load_settings(config)
    kwargs = kafka_client_kwargs(settings.kafka)
    context = kwargs.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "clickhouse CA"),),)]
    assert kwargs == {
        "bootstrap_servers": "b-1.kafka.example.com:9096",
        "security_protocol": "SASL_SSL",
        "bootstrap_timeout_ms": 30_000,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "monitor-prod",
        "sasl_plain_password": "from-the-environment",
    }
    assert "from-the-environment" not in repr(settings)

    monkeypatch.delenv("KAFKA_PASSWORD")
    with pytest.raises(ConfigError, match="KAFKA_PASSWORD is not set"):
        kafka_client_kwargs(settings.kafka)


def test_kafka_security_entirely_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("MONITOR_KAFKA__SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("MONITOR_KAFKA__SASL_USERNAME", "u")
    monkeypatch.setenv("MONITOR_KAFKA__SASL_PASSWORD", "hunter2-canary")
    settings = load_settings(overrides={})
    kwargs = kafka_client_kwargs(settings.kafka)
    assert "ssl_context" not in kwargs
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"], kwargs["sasl_plain_password"]) == (
        "SASL_PLAINTEXT",
        "PLAIN",
        "hunter2-canary",
    )
    assert "hunter2-canary" not in repr(settings) and "hunter2-canary" not in settings.model_dump_json()


def test_plaintext_by_default_and_mtls() -> None:
    assert kafka_client_kwargs(KafkaSettings()) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
        "bootstrap_timeout_ms": 30_000,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, "needs sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "exactly one of"),
        ({"security_protocol": "SSL", "sasl_username": "u"}, "security_protocol is SSL"),
        ({"security_protocol": "SSL", "ssl_keyfile": "/k.pem"}, "ssl_keyfile needs ssl_certfile"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_inconsistent_kafka_security_is_a_configuration_error(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides={"kafka": values})


def test_client_certificate_and_bad_files(tls: TlsFiles, tmp_path: Path) -> None:
    settings = KafkaSettings(security_protocol="SSL", ssl_cafile=tls.ca, ssl_certfile=tls.cert, ssl_keyfile=tls.key)
    assert isinstance(kafka_client_kwargs(settings)["ssl_context"], ssl.SSLContext)
    missing = KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        kafka_client_kwargs(missing)
