"""Credentials never reach a log line, and Redis configuration errors are told from outages."""

from __future__ import annotations

import io
import logging
import ssl

import msgspec
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.store.errors import access_problem
from config.redaction import install_log_redaction, redact, settings_secrets
from config.secret import Secret
from config.settings import settings_from_yaml

PASSWORD = "s3cret-Value-9"


def test_urls_and_known_secrets_are_redacted() -> None:
    assert (
        redact("rediss://kefu:abc123@h:1/0?ssl_ca_certs=/x") == "rediss://kefu:********@h:1/0?ssl_ca_certs=/x"
    )
    assert redact("redis://:abc123@h:1") == "redis://:********@h:1"
    assert redact("kafka://h:9092 and http://127.0.0.1:6066/metrics") == (
        "kafka://h:9092 and http://127.0.0.1:6066/metrics"
    )
    assert redact("login with Pa55word failed", ["Pa55word"]) == "login with ******** failed"


def test_log_records_are_redacted_whoever_logs_them() -> None:
    settings = settings_from_yaml(
        "kafka: {security: {protocol: SASL_PLAINTEXT, username: kefu}}\n"
        "redis: {url: 'rediss://kefu:redis-pw-77@h:1/0'}\n"
    )
    security = msgspec.structs.replace(settings.kafka.security, password=Secret(PASSWORD))
    settings = msgspec.structs.replace(
        settings, kafka=msgspec.structs.replace(settings.kafka, security=security)
    )
    assert settings_secrets(settings) == [PASSWORD, "redis-pw-77"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("kefu.test.redaction")
    logger.addHandler(handler)
    undo = install_log_redaction(settings_secrets(settings))
    try:
        logger.error("connecting to %s", "rediss://kefu:redis-pw-77@h:1/0")
        try:
            raise RuntimeError(f"login refused for password {PASSWORD}")
        except RuntimeError:
            logger.exception("kafka failed")
    finally:
        undo()
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "redis-pw-77" not in text and PASSWORD not in text
    assert "rediss://kefu:********@h:1/0" in text and "login refused for password ********" in text
    assert logging.getLogRecordFactory() is logging.LogRecord


def test_redis_configuration_errors_are_told_from_outages() -> None:
    assert "refused the login" in (
        access_problem(AuthenticationError("invalid username-password pair")) or ""
    )
    assert "ACL" in (access_problem(NoPermissionError("no permissions")) or "")
    wrapped = RedisConnectionError("Error 1 connecting")
    wrapped.__context__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped.__context__.verify_message = "self-signed certificate in certificate chain"
    assert "not trusted" in (access_problem(wrapped) or "")
    assert access_problem(RedisConnectionError("Connection refused")) is None
    assert access_problem(TimeoutError()) is None
