"""One frozen, typed settings object, built once at the edge.

The YAML file is decoded straight into msgspec structs, so a wrong key or type is
reported with its path (`$.defaults.after_sale_days`). Environment variables override
only the connection settings, as interfaces.md says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Final, Literal, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml
from msgspec import Meta, Struct

from config.addresses import bootstrap_servers, check_redis_url
from config.calendar import MS_PER_DAY, MS_PER_HOUR
from config.errors import KefuError
from config.secret import (
    MIN_SECRET_LENGTH,
    MIN_TOKEN_LENGTH,
    Secret,
    is_example_token,
    mask_secrets,
    remember_secrets,
    url_secrets,
)

DEFAULT_CONFIG_PATH = Path(__file__).with_name("kefu.yaml")

PositiveInt = Annotated[int, Meta(gt=0)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
# Bounded: YAML's `.inf` is a float, and an infinite threshold or limit reached math.floor and
# int() in the leader's round and the commands (OverflowError). A million is past any use.
PositiveFloat = Annotated[float, Meta(gt=0, le=1_000_000)]

_T = TypeVar("_T")
_DURATION = re.compile(r"^([1-9][0-9]*)([hd])$")
# Groups name teams on the floor (`/floor?group=presale`): short and safe in a URL.
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How the robots' URLs look (their token in the query or the path): masked wherever they appear.
_ROBOT_URL = re.compile(r"(?i)^https?://\S*(access_token=|/webhook/send\?key=|/open-apis/bot/)")
_TOKEN_SEGMENT = 16  # a path segment this long is a token (a Feishu hook id is 36), not a word


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
    # Of them, one shop's: one kiosk token cannot take every slot from the other shops' screens.
    max_streams_per_shop: PositiveInt = 16
    # A stream client that takes longer than this to accept one update is disconnected.
    stream_write_timeout_seconds: PositiveFloat = 10.0
    # Who may read what (config/access.py; docs/operations.md "Access"); env KEFU_ACCESS_FILE.
    # None: no tokens, and the worker may then bind a loopback address only.
    access_file: str | None = None
    # Bearer credentials of /metrics (Prometheus) and of notify's POST /alertmanager. Read from
    # KEFU_METRICS_TOKEN and KEFU_NOTIFY_TOKEN only, never from the file (like every password).
    metrics_token: Secret | None = None
    notify_token: Secret | None = None


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
# A pay dispute looks back a month; one day at least, so yesterday's list is there.
DetailsDays = Annotated[int, Meta(ge=1, le=MAX_RETENTION_DAYS)]
DEFAULT_DETAILS_DAYS = 31
# A rating rates a consultation at most this many business days after it started (v3). A buyer's state
# keeps consultations for the `28d` window (today and the 27 business days before it), so a
# rating can reach back no further: at 28, a rating of day D+28 found day D's consultation
# live only while pruning had not yet dropped it, and `rebuild` always.
MAX_RATING_DAYS = MIN_RETENTION_DAYS - 1
RatingDays = Annotated[int, Meta(ge=1, le=MAX_RATING_DAYS)]
# "Forever" is 999,999 days (2,700 years). Past ~1.2e9 the buyer and offset TTLs it stretches
# reached Redis's Lua as 1.7e+17 (Lua numbers print so from 1e17): commit_partition.lua's SET
# PX failed after the buyer states were written, and the worker stopped on the batch for good.
AfterSaleDays = Annotated[int, Meta(ge=0, le=999_999)]


ChannelType = Literal["dingtalk", "wecom", "feishu", "webhook"]
CHANNEL_TYPES: tuple[str, ...] = ("dingtalk", "wecom", "feishu", "webhook")
OUTSIDE_SERVICE_HOURS: Final = "outside_service_hours"


class ChannelSettings(_Strict, frozen=True):
    """One group robot as the file names it: where its URL and secret are, never the values."""

    type: ChannelType
    name: str | None = None  # the `channel` label and what `notify --test` prints; default: type
    url_env: str | None = None  # exactly one of url_env / url_file
    url_file: str | None = None
    secret_env: str | None = None  # optional: 加签 / signature / HMAC secret, at most one of the two
    secret_file: str | None = None
    quiet_hours: str | None = None  # "HH:MM-HH:MM" (may wrap midnight) or "outside_service_hours"


class NotifySettings(_Strict, frozen=True):
    channels: list[ChannelSettings] = []
    digest_at: str | None = "09:00"  # the shop's local time of the daily digest; None: no digest
    floor_url: str | None = None  # base URL of the floor and report pages; None: no link
    retry_seconds: PositiveFloat = 180.0  # retries of one message this long, then a dead letter


class ShopNotifySettings(_Strict, frozen=True):
    """A shop's `notify`: each key it sets replaces the default's (`null` too: no digest, no link)."""

    channels: list[ChannelSettings] | msgspec.UnsetType = msgspec.UNSET
    digest_at: str | msgspec.UnsetType | None = msgspec.UNSET
    floor_url: str | msgspec.UnsetType | None = msgspec.UNSET
    retry_seconds: PositiveFloat | msgspec.UnsetType = msgspec.UNSET

    def over(self, defaults: NotifySettings) -> NotifySettings:
        changed = {
            f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not msgspec.UNSET
        }
        return msgspec.structs.replace(defaults, **changed)


class ChannelConfig(Struct, frozen=True, kw_only=True):
    """A channel ready to send: its URL and secret read (streams/notify/robots.py sends to it)."""

    type: ChannelType
    name: str
    url: Secret
    secret: Secret | None = None
    quiet_hours: str | None = None


class Defaults(_Strict, frozen=True):
    timezone: str = "Asia/Shanghai"
    alert_threshold_seconds: PositiveFloat = 15.0
    after_sale_days: AfterSaleDays = 7
    service_hours: str | None = None  # "HH:MM-HH:MM", the shop's local time; None: all day
    response_targets_seconds: ResponseTargets = msgspec.field(default_factory=lambda: [15, 180])
    retention_days: RetentionDays = 93
    # The drill-down lists (明细) behind the report's numbers are kept this many business days;
    # None: DEFAULT_DETAILS_DAYS, or retention_days if shorter (a list never outlives its number).
    details_days: DetailsDays | None = None
    rating_days: RatingDays = 3
    attribution: AttributionSettings = AttributionSettings()
    notify: NotifySettings = NotifySettings()


class AgentSettings(_Strict, frozen=True):
    name: str | None = None
    group: str | None = None
    # Whom a robot @-mentions for this agent's alerts: a phone number, or the chat's user id.
    mention: str | None = None


class ShopSettings(_Strict, frozen=True):
    name: str | None = None
    block: list[str] = []
    timezone: str | None = None
    alert_threshold_seconds: PositiveFloat | None = None
    after_sale_days: AfterSaleDays | None = None
    service_hours: str | None = None
    response_targets_seconds: ResponseTargets | None = None
    retention_days: RetentionDays | None = None
    details_days: DetailsDays | None = None
    rating_days: RatingDays | None = None
    attribution: ShopAttributionSettings | None = None
    notify: ShopNotifySettings | None = None
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
    # Owned partitions' buyer states kept in the worker between batches (agents/store/state_cache.py),
    # about 1.4 KB each; 0 reads every state from Redis.
    state_cache_buyers: NonNegativeInt = 50_000


class Settings(_Strict, frozen=True):
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    web: WebSettings = WebSettings()
    defaults: Defaults = Defaults()
    processing: ProcessingSettings = ProcessingSettings()
    shops: dict[str, ShopSettings] = {}


# A duration window reaches at most this far: a consultation leaves the buyer's state when its
# day leaves the `28d` window (agents/core/buyer.py, prune), which is 27 local days after the
# end of its own day at the soonest, 647 h where a spring clock change falls between. 26 days
# is inside that wherever the consultation started in its day.
MAX_ATTRIBUTION_WINDOW_DAYS = 26
MAX_ATTRIBUTION_WINDOW_MS = MAX_ATTRIBUTION_WINDOW_DAYS * MS_PER_DAY


def parse_attribution_window(text: str) -> int | Literal["same_day", "next_day"]:
    """`same_day`, `next_day`, or a duration (`24h`, `3d`) returned in milliseconds."""
    if text in ("same_day", "next_day"):
        return text  # type: ignore[return-value]
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected same_day, next_day or a duration such as 24h or 3d, got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    window_ms = amount * (MS_PER_HOUR if unit == "h" else MS_PER_DAY)
    if window_ms > MAX_ATTRIBUTION_WINDOW_MS:
        raise ValueError(
            f"{text!r} is longer than {MAX_ATTRIBUTION_WINDOW_DAYS}d: a buyer's consultations are kept "
            "for the 28d window only, so an inquiry older than that could not take the credit it "
            "is due, and a younger one would get it"
        )
    return window_ms


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


def parse_clock(text: str) -> int:
    """`HH:MM` (00:00 to 23:59) as minutes of the local day."""
    match = _CLOCK.match(text.strip())
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not 0 <= minutes < 24 * 60:
        raise ValueError(f"expected a local time HH:MM such as 09:00, got {text!r}")
    return minutes


def parse_quiet_hours(text: str) -> tuple[int, int] | Literal["outside_service_hours"]:
    """`HH:MM-HH:MM` as (start, end) minutes, which may wrap midnight (`23:00-08:00`), or
    `outside_service_hours`."""
    if text == OUTSIDE_SERVICE_HOURS:
        return OUTSIDE_SERVICE_HOURS
    start, dash, end = text.partition("-")
    try:
        if not dash:
            raise ValueError
        bounds = parse_clock(start), parse_clock(end)
    except ValueError:
        raise ValueError(
            f"expected HH:MM-HH:MM such as 23:00-08:00, or {OUTSIDE_SERVICE_HOURS}, got {text!r}"
        ) from None
    if bounds[0] == bounds[1]:
        raise ValueError(f"the start must differ from the end, got {text!r}")
    return bounds


def is_quiet(quiet_hours: str | None, service_hours: str | None, minute_of_day: int) -> bool:
    """Whether a channel keeps quiet at this minute of the shop's local day."""
    if quiet_hours is None:
        return False
    quiet = parse_quiet_hours(quiet_hours)
    if isinstance(quiet, str):
        if service_hours is None:
            return False  # the shop serves all day: never outside
        opening, closing = parse_service_hours(service_hours)
        return not opening <= minute_of_day < closing
    start, end = quiet
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


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


def _check_details_days(settings: Settings) -> None:
    """A drill-down list never outlives the numbers it explains."""
    defaults = settings.defaults
    given = [("$.defaults", defaults.details_days, defaults.retention_days)]
    for shop_id, shop in settings.shops.items():
        given.append(
            (f"$.shops.{shop_id}", shop.details_days, shop.retention_days or defaults.retention_days)
        )
    for path, details_days, retention_days in given:
        if details_days is not None and details_days > retention_days:
            raise ConfigError(
                f"{path}.details_days: at most retention_days ({retention_days}), got {details_days}"
            )


def _check_notify(settings: Settings) -> None:
    _check_notify_section("$.defaults.notify", settings.defaults.notify)
    for shop_id, shop in settings.shops.items():
        if shop.notify is not None:
            _check_notify_section(f"$.shops.{shop_id}.notify", shop.notify)
        for agent_id, agent in shop.agents.items():
            if agent.mention is not None and not agent.mention.strip():
                raise ConfigError(
                    f"$.shops.{shop_id}.agents.{agent_id}.mention: empty; "
                    "omit it or give a phone number or user id"
                )


def _check_notify_section(path: str, notify: NotifySettings | ShopNotifySettings) -> None:
    if isinstance(notify.digest_at, str):
        try:
            parse_clock(notify.digest_at)
        except ValueError as exc:
            raise ConfigError(f"{path}.digest_at: {exc}") from None
    if isinstance(notify.floor_url, str) and not notify.floor_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}.floor_url: expected an http:// or https:// URL, got {notify.floor_url!r}")
    channels = notify.channels if isinstance(notify.channels, list) else []
    for index, channel in enumerate(channels):
        _check_channel(f"{path}.channels[{index}]", channel)


def _check_channel(path: str, channel: ChannelSettings) -> None:
    if (channel.url_env is None) == (channel.url_file is None):
        raise ConfigError(f"{path}: set exactly one of url_env and url_file (where the robot's URL is)")
    if channel.secret_env is not None and channel.secret_file is not None:
        raise ConfigError(f"{path}: set at most one of secret_env and secret_file")
    if channel.type == "wecom" and (channel.secret_env or channel.secret_file):
        raise ConfigError(f"{path}: a wecom robot has no signature secret; its key is in the URL")
    for key in ("url_env", "secret_env"):
        name = getattr(channel, key)
        if name is not None and not _ENV_NAME.match(name):
            raise ConfigError(f"{path}.{key}: expected an environment variable name, got {name!r}")
    if channel.quiet_hours is not None:
        try:
            parse_quiet_hours(channel.quiet_hours)
        except ValueError as exc:
            raise ConfigError(f"{path}.quiet_hours: {exc}") from None


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


def _reject_robot_secrets(data: dict[object, object], source: str) -> None:
    """A robot's URL holds its token: like a password, it is refused in the file."""
    for path, channel in _raw_channels(data):
        for key, where in (("url", "url_env or url_file"), ("secret", "secret_env or secret_file")):
            if key in channel:
                raise ConfigError(
                    f"{source}: {path}.{key}: robot URLs and secrets are not read from the file; "
                    f"name an environment variable or a secret file with {where}"
                )


def _raw_channels(data: dict[object, object]) -> list[tuple[str, dict[object, object]]]:
    """Every channel mapping of the raw YAML, with its path."""
    sections: list[tuple[str, object]] = []
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        sections.append(("$.defaults.notify", defaults.get("notify")))
    shops = data.get("shops")
    if isinstance(shops, dict):
        sections += [
            (f"$.shops.{i}.notify", s.get("notify")) for i, s in shops.items() if isinstance(s, dict)
        ]
    found = []
    for path, notify in sections:
        channels = notify.get("channels") if isinstance(notify, dict) else None
        if isinstance(channels, list):
            found += [(f"{path}.channels[{n}]", c) for n, c in enumerate(channels) if isinstance(c, dict)]
    return found


class _ConfigLoader(yaml.SafeLoader):
    """YAML as an operator means it: a mapping key is its text as written, and a key written
    twice is an error. PyYAML's YAML 1.1 typing turned the shop id `012345` into 5349 (octal),
    `on` into True and `1_000` into 1000, and the second of two `s1:` blocks silently replaced
    the first: a real shop then ran on the defaults, its block list gone."""


def _mapping_as_written(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, object]:
    own: set[str] = set()
    for key_node, _ in node.value:  # the mapping's own keys, before `<<:` merges join them
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue  # a key that is no text is refused below, with the merged ones
        if key_node.value in own:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key_node.value!r} is written twice",
                key_node.start_mark,
            )
        own.add(key_node.value)
    loader.flatten_mapping(node)  # merged pairs first, then the own ones: a later pair wins, as safe_load
    mapping: dict[str, object] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, "a key must be plain text", key_node.start_mark
            )
        mapping[key_node.value] = loader.construct_object(value_node, deep=True)
    return mapping


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_as_written)


def settings_from_yaml(text: str, source: str = "<config>") -> Settings:
    try:
        data = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        # Not chained: PyYAML's own message quotes the line unmasked.
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc, text)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: Expected `object`, got `{type(data).__name__}` - at `$`")
    _reject_secrets_in_file(data, source)
    _reject_robot_secrets(data, source)
    shops_data = data.pop("shops", None) or {}
    if not isinstance(shops_data, dict):
        raise ConfigError(f"{source}: Expected `object`, got `{type(shops_data).__name__}` - at `$.shops`")
    settings = _convert(data, Settings, "$", source)
    shops = {
        str(shop_id): _convert_shop(raw, f"$.shops.{shop_id}", source) for shop_id, raw in shops_data.items()
    }
    settings = msgspec.structs.replace(settings, shops=shops)
    _check_semantics(settings)
    _check_details_days(settings)
    _check_notify(settings)
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
    web = _web_access(web, environ)
    kafka = msgspec.structs.replace(kafka, security=_resolve_kafka_secrets(kafka.security, environ))
    # The variable is named only when it gave the value: an empty one leaves the file's.
    _check_address(
        "KEFU_KAFKA_BOOTSTRAP" if environ.get("KEFU_KAFKA_BOOTSTRAP") else "kafka.bootstrap",
        lambda: bootstrap_servers(kafka.bootstrap),
    )
    _check_address(
        "KEFU_REDIS_URL" if environ.get("KEFU_REDIS_URL") else "redis.url",
        lambda: check_redis_url(redis_settings.url),
    )
    return msgspec.structs.replace(settings, kafka=kafka, redis=redis_settings, web=web)


def _check_address(key: str, check: Callable[[], object]) -> None:
    """Here, naming the key, rather than as a traceback from the Redis or Kafka client."""
    try:
        check()
    except ValueError as exc:
        raise ConfigError(f"{key}: {mask_secrets(str(exc))}") from None


def _web_access(web: WebSettings, environ: Mapping[str, str]) -> WebSettings:
    """KEFU_ACCESS_FILE over `web.access_file`; the metrics and notify tokens from theirs."""
    if access_file := environ.get("KEFU_ACCESS_FILE"):
        web = msgspec.structs.replace(web, access_file=access_file)
    tokens = (
        ("metrics_token", "KEFU_METRICS_TOKEN", environ.get("KEFU_METRICS_TOKEN", "")),
        ("notify_token", "KEFU_NOTIFY_TOKEN", environ.get("KEFU_NOTIFY_TOKEN", "")),
    )
    for field, name, text in tokens:
        if getattr(web, field) is not None:  # only a test builds one with it set
            continue
        if value := text.strip():
            if len(value) < MIN_TOKEN_LENGTH or is_example_token(value):
                raise ConfigError(
                    f"{name}: a token of your own of at least {MIN_TOKEN_LENGTH} characters is expected"
                )
            remember_secrets([value])
            web = msgspec.structs.replace(web, **{field: Secret(value)})
    return web


def _resolve_kafka_secrets(
    security: KafkaSecuritySettings, environ: os._Environ[str] | dict[str, str]
) -> KafkaSecuritySettings:
    """Start-up only: the password from its environment variable, and a readable CA file."""
    path = "$.kafka.security"
    if security.ca_file is not None and not os.access(security.ca_file, os.R_OK):
        raise ConfigError(f"{path}.ca_file: cannot read {security.ca_file}")
    if not security.uses_sasl:
        return security
    password = _environment_secret(
        f"{path}.password_env",
        security.password_env,
        environ,
        f"protocol {security.protocol} needs the password there",
    )
    return msgspec.structs.replace(security, password=password)


def _environment_secret(key: str, name: str, environ: Mapping[str, str], needed_for: str) -> Secret:
    """The secret in environment variable `name`; `key` is the setting that named it."""
    value = environ.get(name)
    if not value:
        raise ConfigError(f"{key}: the environment variable {name} is not set; {needed_for}")
    return Secret(value)


def _file_secret(key: str, path: str) -> Secret:
    """The secret a file holds (a mounted secret: its one line, without the newline)."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read {path}: {reason}") from None
    if not value:
        raise ConfigError(f"{key}: {path} is empty")
    return Secret(value)


def shop_notify(settings: Settings, shop_id: str) -> NotifySettings:
    """The shop's `notify`: its own keys over `defaults.notify` (an unconfigured shop: the defaults)."""
    shop = settings.shops.get(shop_id)
    if shop is None or shop.notify is None:
        return settings.defaults.notify
    return shop.notify.over(settings.defaults.notify)


def _channels_path(settings: Settings, shop_id: str) -> str:
    shop = settings.shops.get(shop_id)
    if shop is not None and shop.notify is not None and shop.notify.channels is not msgspec.UNSET:
        return f"$.shops.{shop_id}.notify.channels"
    return "$.defaults.notify.channels"


def resolve_channels(
    settings: Settings, shop_id: str, environ: Mapping[str, str] | None = None
) -> tuple[ChannelConfig, ...]:
    """The shop's channels ready to send: each URL and secret read from its environment variable
    or file, as `Secret`s, and remembered so every later message masks them. A missing variable
    or an unreadable file is a ConfigError naming the key."""
    environ = os.environ if environ is None else environ
    path = _channels_path(settings, shop_id)
    channels = shop_notify(settings, shop_id).channels
    types = [channel.type for channel in channels]
    resolved = []
    for index, channel in enumerate(channels):
        url, secret = _channel_values(f"{path}[{index}]", channel, environ)
        remember_secrets(robot_url_secrets(url.reveal()) + ([secret.reveal()] if secret else []))
        default_name = channel.type if types.count(channel.type) == 1 else f"{channel.type}-{index + 1}"
        resolved.append(
            ChannelConfig(
                type=channel.type,
                name=channel.name or default_name,
                url=url,
                secret=secret,
                quiet_hours=channel.quiet_hours,
            )
        )
    return tuple(resolved)


def _channel_values(
    path: str, channel: ChannelSettings, environ: Mapping[str, str]
) -> tuple[Secret, Secret | None]:
    if channel.url_env is not None:
        url = _environment_secret(f"{path}.url_env", channel.url_env, environ, "it holds the robot's URL")
    else:
        url = _file_secret(f"{path}.url_file", channel.url_file or "")
    if not _is_http_url(url.reveal()):
        where = f"{path}.url_env" if channel.url_env is not None else f"{path}.url_file"
        raise ConfigError(f"{where}: the robot's URL must be an http:// or https:// URL with a host")
    if channel.secret_env is not None:
        needed = "it holds the robot's signature secret"
        return url, _environment_secret(f"{path}.secret_env", channel.secret_env, environ, needed)
    if channel.secret_file is not None:
        return url, _file_secret(f"{path}.secret_file", channel.secret_file)
    return url, None


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
    except UnicodeDecodeError as exc:
        raise ConfigError(f"KEFU_CONFIG: {not_utf8(path, exc)}") from None
    try:
        return _apply_environment(settings_from_yaml(text, str(path)), environ)
    except ConfigError as exc:  # the environment's own secrets too, which no pattern may catch
        raise ConfigError(mask_secrets(str(exc), environment_secrets(environ))) from exc.__cause__


def not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """A file saved in another encoding (GBK, from an editor on Windows): where, not what."""
    byte = error.object[error.start]
    return f"{path} is not UTF-8 text (byte 0x{byte:02x} at offset {error.start}): save it as UTF-8"


def environment_secrets(environ: os._Environ[str] | dict[str, str]) -> list[str]:
    """The secrets the environment holds, known before the file is read: the Redis URL's
    password and the Kafka password (under its default variable name)."""
    found = url_secrets(environ.get("KEFU_REDIS_URL", ""))
    if password := environ.get(KafkaSecuritySettings().password_env):
        found.append(password)
    # Robot URLs carry their token; their variables' names are in the file, their look is known.
    found += [
        form for value in environ.values() if _ROBOT_URL.search(value) for form in robot_url_secrets(value)
    ]
    return found


def settings_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The literal secret values in these settings, in every form they can be printed in."""
    found = url_secrets(settings.redis.url)
    if settings.kafka.security.password is not None:
        found.append(settings.kafka.security.password.reveal())
    found += _robot_secrets(settings, os.environ if environ is None else environ)
    return sorted(set(found), key=len, reverse=True)


def _robot_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Every robot URL and secret the channels name that can be read now. Unlike
    `resolve_channels` a missing one is no error here: only `notify` needs them all."""
    sections = [settings.defaults.notify.channels]
    sections += [s.notify.channels for s in settings.shops.values() if s.notify and s.notify.channels]
    found: list[str] = []
    for channel in (c for section in sections if isinstance(section, list) for c in section):
        for name, file, is_url in (
            (channel.url_env, channel.url_file, True),
            (channel.secret_env, channel.secret_file, False),
        ):
            value = environ.get(name, "") if name else _readable(file)
            found += robot_url_secrets(value) if is_url and value else [value] if value else []
    return found


def _readable(path: str | None) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip() if path else ""
    except (OSError, UnicodeDecodeError):
        return ""


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def robot_url_secrets(url: str) -> list[str]:
    """A robot URL in every form its token can be printed in: whole, its query values
    (`access_token`, `key`) and its long path segments (Feishu's hook id, a webhook's token)."""
    found = [url, *url_secrets(url)]
    # No urlsplit: a URL it cannot split must be masked all the same.
    path, _, query = url.partition("#")[0].partition("?")
    found += [value for _, value in parse_qsl(query) if len(value) >= MIN_SECRET_LENGTH]
    found += [segment for segment in path.split("/") if len(segment) >= _TOKEN_SEGMENT]
    return found
