"""`kafka.security` settings → the arguments of every Kafka client kefu-pulse makes.

One translation for all of them: Faust (credentials object), kafka-python (admin and
producers) and aiokafka (rebuild's consumer, the access check). kafka-python and aiokafka
take the same keyword names, so `client_kwargs` serves both.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import faust
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from kafka.admin import KafkaAdminClient

from config.addresses import host_port
from config.errors import DeploymentError
from config.settings import KafkaSecuritySettings, KafkaSettings


class KafkaAccessError(DeploymentError, RuntimeError):
    """Kafka cannot be used with these settings: unreachable, TLS refused, or login refused.
    `anonymous`: the same sentence without who logs in, for pages anyone may read."""

    def __init__(self, message: str, anonymous: str | None = None) -> None:
        super().__init__(message)
        self.anonymous = message if anonymous is None else anonymous


class KafkaUnreachable(KafkaAccessError):
    """No bootstrap server accepted a connection at all (nothing listens, or no such host)."""

    def __init__(self, message: str, reasons: str, anonymous: str | None = None) -> None:
        super().__init__(message, anonymous)
        self.reasons = reasons


def _unreachable(error: BaseException) -> bool:
    return isinstance(error, (ConnectionRefusedError, socket.gaierror)) or (
        isinstance(error, OSError) and not isinstance(error, ssl.SSLError | ConnectionResetError)
    )


def ssl_context(security: KafkaSecuritySettings) -> ssl.SSLContext | None:
    if not security.uses_tls:
        return None
    context = ssl.create_default_context(cafile=security.ca_file)
    context.check_hostname = security.check_hostname
    return context


def _password(security: KafkaSecuritySettings) -> str:
    if security.password is None:  # load_settings fills it for SASL; a hand-built Settings may not
        raise KafkaAccessError(f"kafka.security: no password in {security.password_env}")
    return security.password.reveal()


def client_kwargs(security: KafkaSecuritySettings) -> dict[str, Any]:
    """Keyword arguments for KafkaAdminClient / KafkaProducer / AIOKafkaConsumer and friends."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        kwargs["ssl_context"] = context
    if security.uses_sasl:
        kwargs |= {
            "sasl_mechanism": security.sasl_mechanism,
            "sasl_plain_username": security.username,
            "sasl_plain_password": _password(security),
        }
    return kwargs


def admin_client(kafka: KafkaSettings, client_id: str, timeout_s: float = 10.0) -> KafkaAdminClient:
    """kafka-python's admin client with the configured security; the caller closes it."""
    return KafkaAdminClient(
        bootstrap_servers=kafka.bootstrap,
        client_id=client_id,
        request_timeout_ms=int(timeout_s * 1000),
        **client_kwargs(kafka.security),
    )


def faust_credentials(security: KafkaSecuritySettings) -> faust.auth.Credentials | None:
    """Faust's `broker_credentials`; it hands them to every aiokafka client it creates."""
    context = ssl_context(security)
    if security.uses_sasl:
        # Faust derives SASL_SSL from the presence of a context, SASL_PLAINTEXT from its absence.
        return faust.SASLCredentials(
            username=security.username,
            password=_password(security),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({error.verify_message}); check kafka.security.ca_file"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error}); does the listener speak TLS?"
    if isinstance(error, TimeoutError):
        return "timed out (a TLS or SASL listener answered differently than configured?)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset during the handshake; does the listener speak this protocol?"
    text = str(error) or type(error).__name__
    return text


async def check_access(kafka: KafkaSettings, timeout_s: float = 10.0) -> None:
    """Connect and log in to one bootstrap server, or raise KafkaAccessError saying why not.

    kafka-python only reports `Unable to bootstrap` after its 30 s bootstrap timeout, and
    aiokafka logs the reason and raises without it; this asks the question once, directly.
    """
    kwargs = client_kwargs(kafka.security)
    reasons: list[str] = []
    unreachable = True
    for server in kafka.bootstrap.split(","):
        try:
            host, port = host_port(server)
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    client_id="kefu-pulse-check",
                    request_timeout_ms=int(timeout_s * 1000),
                    **kwargs,
                ),
                timeout_s,
            )
        except (OSError, KafkaError, TimeoutError, ValueError) as exc:
            reasons.append(f"{server.strip()}: {_describe(exc)}")
            unreachable = unreachable and _unreachable(exc)
            continue
        conn.close()
        return
    who = (
        f" as {kafka.security.username!r} ({kafka.security.sasl_mechanism})"
        if kafka.security.uses_sasl
        else ""
    )
    message = f"cannot use Kafka over {kafka.security.protocol}{who}: " + "; ".join(reasons)
    anonymous = f"cannot use Kafka over {kafka.security.protocol}: " + "; ".join(reasons)
    if unreachable:
        raise KafkaUnreachable(message, "; ".join(reasons), anonymous)
    raise KafkaAccessError(message, anonymous)
