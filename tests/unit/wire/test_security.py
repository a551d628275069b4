"""Kafka security settings, the secret type, and the one translation every Kafka client uses."""

from __future__ import annotations

import ast
import pickle
import ssl
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from config.secret import Secret
from config.settings import ConfigError, Settings, load_settings, settings_from_yaml
from streams.wire.app import create_app
from streams.wire.security import client_kwargs, faust_credentials

ROOT = Path(__file__).resolve().parents[3]
# A public CA certificate (no key anywhere): ssl.create_default_context needs a real one to load.
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUT8XR5EDdxp/tY36eWXA6JrUvf2AwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXa2VmdS1wdWxzZSB1bml0LXRlc3QgQ0EwIBcNMjYxMTIzMjIz
MTQ4WhgPMjEyNjEwMzAyMjMxNDhaMCIxIDAeBgNVBAMMF2tlZnUtcHVsc2UgdW5p
dC10ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpXz1I7JfDB3v/k2e
oeriLjMNxbXmxPAmQXzJplo/hJN04p/WIWDP5ul+OvEL7s6mu0qM7IfzfG3A6PzS
kH0UGqNTMFEwHQYDVR0OBBYEFGTNiMgnT6JeBcrDXTAH9o/KJI6PMB8GA1UdIwQY
MBaAFGTNiMgnT6JeBcrDXTAH9o/KJI6PMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSAAwRQIgYbrOgJzq8JEGpDEy7utqwuDEP3GTQ7Gbm7xTSVieXokCIQCO
vkQ5MKf6/AvvdLHjmDuRnw+vyGNWajvSuiusdHM86Q==
-----END CERTIFICATE-----
"""
PASSWORD = "s3cret-Value-9"


def secured(tmp_path: Path, protocol: str = "SASL_SSL", **extra: str) -> Settings:
    ca = tmp_path / "ca.pem"
    ca.write_text(TEST_CA)
    lines = [f"protocol: {protocol}"]
    if "SASL" in protocol:
        lines.append("username: kefu")
    if "SSL" in protocol:
        lines.append(f"ca_file: {ca}")
    lines += [f"{key}: {value}" for key, value in extra.items()]
    config = tmp_path / "kefu.yaml"
    config.write_text("kafka:\n  security:\n" + "".join(f"    {line}\n" for line in lines))
    return load_settings({"KEFU_CONFIG": str(config), "KEFU_KAFKA_PASSWORD": PASSWORD})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("kafka: {security: {protocol: SASL_SSL}}", "$.kafka.security.username"),
        ("kafka: {security: {protocol: TLS}}", "$.kafka.security.protocol"),
        (
            "kafka: {security: {protocol: SASL_SSL, username: k, sasl_mechanism: GSSAPI}}",
            "$.kafka.security.sasl_mechanism",
        ),
        ("kafka: {security: {ca_file: /etc/ca.pem}}", "$.kafka.security.ca_file"),
        ("kafka: {security: {username: k}}", "$.kafka.security.username"),
        ("kafka: {security: {password_env: 'not a name'}}", "$.kafka.security.password_env"),
        ("kafka: {security: {protcol: SSL}}", "protcol"),
        ("kafka: {security: {check_hostname: maybe}}", "$.kafka.security.check_hostname"),
    ],
)
def test_invalid_security_configuration_names_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_yaml(text)
    assert names in str(caught.value)


def test_a_password_in_the_file_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_yaml("kafka: {security: {protocol: SASL_SSL, username: k, password: hunter2hunter}}")
    assert "$.kafka.security.password" in str(caught.value)
    assert "password_env" in str(caught.value)
    assert "hunter2hunter" not in str(caught.value)


def test_the_password_comes_from_the_named_environment_variable(tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    config.write_text("kafka: {security: {protocol: SASL_PLAINTEXT, username: k, password_env: MY_PW}}\n")
    with pytest.raises(ConfigError, match=r"\$\.kafka\.security\.password_env: .*MY_PW is not set"):
        load_settings({"KEFU_CONFIG": str(config), "KEFU_KAFKA_PASSWORD": PASSWORD})
    settings = load_settings({"KEFU_CONFIG": str(config), "MY_PW": PASSWORD})
    assert settings.kafka.security.password == Secret(PASSWORD)
    # A plain connection needs no password, and does not pick one up.
    plain = tmp_path / "plain.yaml"
    plain.write_text("kafka: {bootstrap: 'h:1'}\n")
    assert (
        load_settings({"KEFU_CONFIG": str(plain), "KEFU_KAFKA_PASSWORD": PASSWORD}).kafka.security.password
        is None
    )


def test_an_unreadable_ca_file_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "k.yaml"
    config.write_text(f"kafka: {{security: {{protocol: SSL, ca_file: {tmp_path / 'nope.pem'}}}}}\n")
    with pytest.raises(ConfigError, match=r"\$\.kafka\.security\.ca_file: cannot read"):
        load_settings({"KEFU_CONFIG": str(config)})


def test_a_secret_never_prints(tmp_path: Path) -> None:
    settings = secured(tmp_path)
    secret = settings.kafka.security.password
    assert secret is not None and secret.reveal() == PASSWORD
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(settings), str(settings)):
        assert PASSWORD not in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret == Secret(PASSWORD) and secret != Secret("other")


def test_sasl_ssl_becomes_one_set_of_client_arguments(tmp_path: Path) -> None:
    kwargs = client_kwargs(secured(tmp_path).kafka.security)
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "kefu",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert client_kwargs(Settings().kafka.security) == {"security_protocol": "PLAINTEXT"}
    tls_only = client_kwargs(secured(tmp_path, "SSL").kafka.security)
    assert set(tls_only) == {"security_protocol", "ssl_context"}
    sasl_only = client_kwargs(secured(tmp_path, "SASL_PLAINTEXT", sasl_mechanism="PLAIN").kafka.security)
    assert "ssl_context" not in sasl_only and sasl_only["sasl_mechanism"] == "PLAIN"
    unchecked = client_kwargs(secured(tmp_path, "SSL", check_hostname="false").kafka.security)
    assert not unchecked["ssl_context"].check_hostname


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("SASL_SSL", "SASL_SSL"),
        ("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
        ("SSL", "SSL"),
        ("PLAINTEXT", "PLAINTEXT"),
    ],
)
def test_faust_hands_the_same_security_to_aiokafka(tmp_path: Path, protocol: str, expected: str) -> None:
    settings = secured(tmp_path, protocol) if protocol != "PLAINTEXT" else Settings()
    app = create_app(settings)
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == expected
    if "SASL" in protocol:
        assert auth["sasl_plain_username"] == "kefu" and auth["sasl_plain_password"] == PASSWORD
        assert PASSWORD not in repr(app.conf.broker_credentials)
    assert ("ssl_context" in auth and auth["ssl_context"] is not None) == ("SSL" in protocol)
    assert faust_credentials(Settings().kafka.security) is None
    assert "@" not in str(app.conf.broker)  # no credentials in the broker URL Faust prints


KAFKA_CLIENTS = {
    "KafkaAdminClient",
    "KafkaProducer",
    "KafkaConsumer",
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "AIOKafkaAdminClient",
}


def test_every_kafka_client_in_the_code_gets_the_security_arguments() -> None:
    found = []
    for path in sorted([*ROOT.glob("streams/**/*.py"), *ROOT.glob("agents/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in KAFKA_CLIENTS:
                found.append(f"{path.name}:{node.lineno}")
                spreads = [k.value for k in node.keywords if k.arg is None]
                assert any(
                    isinstance(v, ast.Call) and getattr(v.func, "id", None) == "client_kwargs"
                    for v in spreads
                ), f"{path.name}:{node.lineno} builds {name} without **client_kwargs(...)"
            if name == "App":
                assert "broker_credentials" in {k.arg for k in node.keywords}, f"{path.name}:{node.lineno}"
    assert len(found) >= 5, found  # topics, simulate, replay, rebuild (admin + consumer)
