"""One frozen, typed settings object, built once at the edge.

The YAML file is decoded straight into msgspec structs, so a wrong key or type is
reported with its path (`$.defaults.after_sale_days`). Environment variables override
only the connection settings, as interfaces.md says.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml
from msgspec import Meta, Struct

from config.calendar import MS_PER_DAY, MS_PER_HOUR
from config.errors import KefuError
from config.secret import Secret, mask_secrets, url_secrets

DEFAULT_CONFIG_PATH = Path(__file__).with_name("kefu.yaml")

PositiveInt = Annotated[int, Meta(gt=0)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
PositiveFloat = Annotated[float, Meta(gt=0)]

_T = TypeVar("_T")
_DURATION = re.compile(r"^([1-9][0-9]*)([hd])$")
# Groups name teams on the floor (`/floor?group=presale`): short and safe in a URL.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(KefuError, ValueError):
    """Invalid configuration; the message names the key and what is wrong, never a secret."""

    exit_code = 2  # a usage error: the command never ran

    def __init__(self, message: str) -> None:
        # Printed to stderr at start-up and logged on reload: masked here, once for every path.
        super().__init__(mask_secrets(message))


class _Strict(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class TopicNames(_Strict, frozen=True):
    messages: str = "kefu.messages"
    orders: str = "kefu.orders"
    alerts: str = "kefu.alerts"
    deadletter: str = "kefu.deadletter"
    agents: str = "kefu.agents"  # v3: agent status, keyed by agent (its partitions are its own)


class KafkaSecuritySettings(_Strict, frozen=True):
    """How every Kafka client of kefu-pulse connects (streams/wire/security.py applies it)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    username: str | None = None
    # The password is never read from the file, only from the environment variable named here.
    password_env: str = "KEFU_KAFKA_PASSWORD"
    ca_file: str | None = None  # PEM CA bundle; omitted: the system's trust store
    check_hostname: bool = True
    # Filled from `password_env` by load_settings; a `password:` key in the file is an error.
    password: Secret | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaSettings(_Strict, frozen=True):
    bootstrap: str = "127.0.0.1:9092"
    # The Faust app id: also the consumer group all workers of one deployment share.
    group: str = "kefu-pulse"
    partitions: PositiveInt = 8
    topics: TopicNames = TopicNames()
    security: KafkaSecuritySettings = KafkaSecuritySettings()


class RedisSettings(_Strict, frozen=True):
    url: str = "redis://127.0.0.1:6379/0"


class WebSettings(_Strict, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 6066
    # Bounds on what one HTTP client can make the worker do (docs/operations.md "HTTP limits").
    # Agents × days one web report may read: 500 agents (the metrics' max_agents_per_shop) over
    # the default 93-day retention fit; a larger one is written by `kefu-pulse report`.
    max_report_cells: PositiveInt = 50_000
    # Reports are rendered this many at a time, each in a process of its own; this many more
    # wait their turn, and past that a request is answered 503 "busy".
    report_processes: Annotated[int, Meta(ge=1, le=8)] = 2
    report_queue: NonNegativeInt = 64
    # Open /api/v1/floor/stream connections; one more is answered 503.
    max_streams: PositiveInt = 64
    # A stream client that takes longer than this to accept one update is disconnected.
    stream_write_timeout_seconds: PositiveFloat = 10.0


class AttributionSettings(_Strict, frozen=True):
    window: str = "same_day"
    rule: Literal["first", "last", "all"] = "last"
    judge: Literal["created", "paid", "created_first"] = "created"
    deduct_refunds: bool = False


class ShopAttributionSettings(_Strict, frozen=True):
    """A shop's attribution keys; each one it leaves out is taken from `defaults.attribution`."""

    window: str | None = None
    rule: Literal["first", "last", "all"] | None = None
    judge: Literal["created", "paid", "created_first"] | None = None
    deduct_refunds: bool | None = None

    def over(self, defaults: AttributionSettings) -> AttributionSettings:
        return AttributionSettings(
            window=defaults.window if self.window is None else self.window,
            rule=defaults.rule if self.rule is None else self.rule,
            judge=defaults.judge if self.judge is None else self.judge,
            deduct_refunds=defaults.deduct_refunds if self.deduct_refunds is None else self.deduct_refunds,
        )


# Each target is one counter per cohort bucket; four cover every rate the platforms publish.
MAX_RESPONSE_TARGETS = 4
ResponseTargets = Annotated[list[PositiveInt], Meta(max_length=MAX_RESPONSE_TARGETS)]
# Reports cover whole business days this far back: at least the `28d` window, at most a year
# (payroll looks back a month, reviews a quarter; a longer history belongs in an archive).
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 28, 366
RetentionDays = Annotated[int, Meta(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)]
# A rating rates a consultation at most this many days after it started (v3). A buyer's state
# keeps consultations for the `28d` window, so a rating can reach back no further.
RatingDays = Annotated[int, Meta(ge=1, le=MIN_RETENTION_DAYS)]


class Defaults(_Strict, frozen=True):
    timezone: str = "Asia/Shanghai"
    alert_threshold_seconds: PositiveFloat = 15.0
    after_sale_days: NonNegativeInt = 7
    service_hours: str | None = None  # "HH:MM-HH:MM", the shop's local time; None: all day
    response_targets_seconds: ResponseTargets = msgspec.field(default_factory=lambda: [15, 180])
    retention_days: RetentionDays = 93
    rating_days: RatingDays = 3
    attribution: AttributionSettings = AttributionSettings()


class AgentSettings(_Strict, frozen=True):
    name: str | None = None
    group: str | None = None


class ShopSettings(_Strict, frozen=True):
    name: str | None = None
    block: list[str] = []
    timezone: str | None = None
    alert_threshold_seconds: PositiveFloat | None = None
    after_sale_days: NonNegativeInt | None = None
    service_hours: str | None = None
    response_targets_seconds: ResponseTargets | None = None
    retention_days: RetentionDays | None = None
    rating_days: RatingDays | None = None
    attribution: ShopAttributionSettings | None = None
    agents: dict[str, AgentSettings] = {}


class ProcessingSettings(_Strict, frozen=True):
    # A batch is what one fetch returns (streams/wire/batch_consumer.py): at most twice this many
    # records, fewer when fewer are waiting; nothing waits to fill it.
    batch_size: PositiveInt = 2000
    future_tolerance_seconds: NonNegativeInt = 300
    # Larger records go to the dead letter as `too_large`, undecoded (events.md).
    max_record_bytes: PositiveInt = 64 * 1024
    wait_limit_hours: PositiveFloat = 24.0
    # Caps Prometheus label cardinality: agents past this many per shop share one series.
    max_agents_per_shop: PositiveInt = 500
    # Shop ids come from event data too: the leader exports (and alerts on) the configured
    # shops and then at most this many in all; the rest only show in kefu_unexported_shops.
    max_shops: PositiveInt = 200


class Settings(_Strict, frozen=True):
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    web: WebSettings = WebSettings()
    defaults: Defaults = Defaults()
    processing: ProcessingSettings = ProcessingSettings()
    shops: dict[str, ShopSettings] = {}


def parse_attribution_window(text: str) -> int | Literal["same_day", "next_day"]:
    """`same_day`, `next_day`, or a duration (`24h`, `3d`) returned in milliseconds."""
    if text in ("same_day", "next_day"):
        return text  # type: ignore[return-value]
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected same_day, next_day or a duration such as 24h or 3d, got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * (MS_PER_HOUR if unit == "h" else MS_PER_DAY)


_CLOCK = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


def parse_service_hours(text: str) -> tuple[int, int]:
    """`HH:MM-HH:MM` as (opening, closing) minutes of the local day; `24:00` only as the end."""
    opening, dash, closing = text.partition("-")
    if not dash:
        raise ValueError(f"expected HH:MM-HH:MM such as 08:00-23:00, got {text!r}")
    bounds = []
    for part in (opening, closing):
        match = _CLOCK.match(part.strip())
        minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
        if not 0 <= minutes <= 24 * 60:
            raise ValueError(f"expected HH:MM-HH:MM such as 08:00-23:00, got {text!r}")
        bounds.append(minutes)
    start, end = bounds
    if start == 24 * 60:
        raise ValueError(f"24:00 is only allowed as the end, got {text!r}")
    if start >= end:
        raise ValueError(f"the start must be before the end, got {text!r}")
    return start, end


def _check_semantics(settings: Settings) -> None:
    def check_zone(path: str, name: str | None) -> None:
        if name is None:
            return
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{path}: unknown time zone {name!r}") from exc

    def check_window(path: str, attribution: AttributionSettings | ShopAttributionSettings | None) -> None:
        if attribution is None or attribution.window is None:
            return
        try:
            parse_attribution_window(attribution.window)
        except ValueError as exc:
            raise ConfigError(f"{path}.window: {exc}") from exc

    def check_hours(path: str, text: str | None) -> None:
        if text is None:
            return
        try:
            parse_service_hours(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def check_targets(path: str, targets: list[int] | None) -> None:
        if targets is not None and len(set(targets)) != len(targets):
            raise ConfigError(f"{path}: each target may appear once, got {targets}")

    _check_kafka_security(settings.kafka.security)
    defaults = settings.defaults
    check_zone("$.defaults.timezone", defaults.timezone)
    check_window("$.defaults.attribution", defaults.attribution)
    check_hours("$.defaults.service_hours", defaults.service_hours)
    check_targets("$.defaults.response_targets_seconds", defaults.response_targets_seconds)
    for shop_id, shop in settings.shops.items():
        check_zone(f"$.shops.{shop_id}.timezone", shop.timezone)
        check_window(f"$.shops.{shop_id}.attribution", shop.attribution)
        check_hours(f"$.shops.{shop_id}.service_hours", shop.service_hours)
        check_targets(f"$.shops.{shop_id}.response_targets_seconds", shop.response_targets_seconds)
        for index, pattern in enumerate(shop.block):
            if not pattern:
                raise ConfigError(f"$.shops.{shop_id}.block[{index}]: empty pattern")
        for agent_id, agent in shop.agents.items():
            if agent.group is not None and not _GROUP_NAME.match(agent.group):
                raise ConfigError(
                    f"$.shops.{shop_id}.agents.{agent_id}.group: expected a group name of letters, "
                    f"digits, '-' or '_' (at most 32; `aftersale` is never counted for conversion), "
                    f"got {agent.group!r}"
                )


def _check_kafka_security(security: KafkaSecuritySettings) -> None:
    path = "$.kafka.security"
    if security.uses_sasl and not security.username:
        raise ConfigError(f"{path}.username: required with protocol {security.protocol}")
    if not security.uses_sasl and security.username is not None:
        raise ConfigError(
            f"{path}.username: only used with SASL_PLAINTEXT or SASL_SSL, protocol is {security.protocol}"
        )
    # A CA file with TLS off is a sign that someone believes the connection is encrypted.
    if not security.uses_tls and security.ca_file is not None:
        raise ConfigError(f"{path}.ca_file: only used with SSL or SASL_SSL, protocol is {security.protocol}")
    if not _ENV_NAME.match(security.password_env):
        raise ConfigError(
            f"{path}.password_env: expected an environment variable name, got {security.password_env!r}"
        )


def _reject_secrets_in_file(data: dict[object, object], source: str) -> None:
    """The file is checked in and copied around; a password in it is refused, not used."""
    kafka = data.get("kafka")
    security = kafka.get("security") if isinstance(kafka, dict) else None
    if isinstance(security, dict) and "password" in security:
        raise ConfigError(
            f"{source}: $.kafka.security.password: passwords are not read from the file; "
            "set the environment variable named by password_env (default KEFU_KAFKA_PASSWORD)"
        )


def settings_from_yaml(text: str, source: str = "<config>") -> Settings:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not chained: PyYAML's own message quotes the line unmasked.
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc, text)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: Expected `object`, got `{type(data).__name__}` - at `$`")
    _reject_secrets_in_file(data, source)
    shops_data = data.pop("shops", None) or {}
    if not isinstance(shops_data, dict):
        raise ConfigError(f"{source}: Expected `object`, got `{type(shops_data).__name__}` - at `$.shops`")
    settings = _convert(data, Settings, "$", source)
    shops = {
        str(shop_id): _convert_shop(raw, f"$.shops.{shop_id}", source) for shop_id, raw in shops_data.items()
    }
    settings = msgspec.structs.replace(settings, shops=shops)
    _check_semantics(settings)
    return settings


_QUOTED_LINE_CHARS = 200


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """PyYAML's own message quotes the offending line cut to fit, and the cut can fall inside a
    URL (`... ssw0rd@host`) where no pattern recognises it: the whole line is quoted here, so the
    masking sees the URL entire, and cut only after it was masked."""
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return mask_secrets(str(error))
    mark = error.problem_mark
    what = "; ".join(part for part in (error.context, error.problem) if part)
    lines = text.splitlines()
    line = mask_secrets(lines[mark.line].strip()) if mark.line < len(lines) else ""
    quoted = f":\n    {line[:_QUOTED_LINE_CHARS]}" if line else ""
    return f"{what} at line {mark.line + 1}, column {mark.column + 1}{quoted}"


def _convert(data: object, kind: type[_T], path: str, source: str) -> _T:
    """msgspec.convert with the error's path rooted at `path` (msgspec masks dict keys)."""
    try:
        return msgspec.convert(data, kind, str_keys=True)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$", f"`{path}", 1)
        if "`" + path not in message:
            message = f"{message} - at `{path}`"
        raise ConfigError(f"{source}: {message}") from exc


def _convert_shop(raw: object, path: str, source: str) -> ShopSettings:
    if raw is None:
        return ShopSettings()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: Expected `object`, got `{type(raw).__name__}` - at `{path}`")
    agents_data = raw.pop("agents", None) or {}
    if not isinstance(agents_data, dict):
        raise ConfigError(f"{source}: Expected `object` - at `{path}.agents`")
    shop = _convert(raw, ShopSettings, path, source)
    agents = {
        str(agent_id): _convert(value or {}, AgentSettings, f"{path}.agents.{agent_id}", source)
        for agent_id, value in agents_data.items()
    }
    return msgspec.structs.replace(shop, agents=agents)


def _apply_environment(settings: Settings, environ: os._Environ[str] | dict[str, str]) -> Settings:
    kafka, redis_settings, web = settings.kafka, settings.redis, settings.web
    if bootstrap := environ.get("KEFU_KAFKA_BOOTSTRAP"):
        kafka = msgspec.structs.replace(kafka, bootstrap=bootstrap)
    if url := environ.get("KEFU_REDIS_URL"):
        redis_settings = msgspec.structs.replace(redis_settings, url=url)
    if port := environ.get("KEFU_WEB_PORT"):
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"KEFU_WEB_PORT: expected a port number, got {port!r}")
        web = msgspec.structs.replace(web, port=int(port))
    kafka = msgspec.structs.replace(kafka, security=_resolve_kafka_secrets(kafka.security, environ))
    return msgspec.structs.replace(settings, kafka=kafka, redis=redis_settings, web=web)


def _resolve_kafka_secrets(
    security: KafkaSecuritySettings, environ: os._Environ[str] | dict[str, str]
) -> KafkaSecuritySettings:
    """Start-up only: the password from its environment variable, and a readable CA file."""
    path = "$.kafka.security"
    if security.ca_file is not None and not os.access(security.ca_file, os.R_OK):
        raise ConfigError(f"{path}.ca_file: cannot read {security.ca_file}")
    if not security.uses_sasl:
        return security
    password = environ.get(security.password_env)
    if not password:
        raise ConfigError(
            f"{path}.password_env: the environment variable {security.password_env} is not set; "
            f"protocol {security.protocol} needs the password there"
        )
    return msgspec.structs.replace(security, password=Secret(password))


def config_path(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get("KEFU_CONFIG")
    return Path(override) if override else DEFAULT_CONFIG_PATH


def load_settings(environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
    """Read the configured YAML file and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = config_path(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"KEFU_CONFIG: cannot read {path}: {exc.strerror}") from exc
    try:
        return _apply_environment(settings_from_yaml(text, str(path)), environ)
    except ConfigError as exc:  # the environment's own secrets too, which no pattern may catch
        raise ConfigError(mask_secrets(str(exc), environment_secrets(environ))) from exc.__cause__


def environment_secrets(environ: os._Environ[str] | dict[str, str]) -> list[str]:
    """The secrets the environment holds, known before the file is read: the Redis URL's
    password and the Kafka password (under its default variable name)."""
    found = url_secrets(environ.get("KEFU_REDIS_URL", ""))
    if password := environ.get(KafkaSecuritySettings().password_env):
        found.append(password)
    return found


def settings_secrets(settings: Settings) -> list[str]:
    """The literal secret values in these settings, in every form they can be printed in."""
    found = url_secrets(settings.redis.url)
    if settings.kafka.security.password is not None:
        found.append(settings.kafka.security.password.reveal())
    return sorted(set(found), key=len, reverse=True)
