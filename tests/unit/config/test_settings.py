from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from config.settings import DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings, settings_from_yaml


def test_the_shipped_file_and_an_empty_file_are_complete() -> None:
    shipped = settings_from_yaml(DEFAULT_CONFIG_PATH.read_text())
    assert shipped.kafka.partitions == 8
    assert shipped.shops["shop0"].agents["shop0:agent9"].group == "aftersale"
    assert settings_from_yaml("") == Settings()
    only_shops = settings_from_yaml("shops:\n  s1: {name: x}\n")
    assert only_shops.defaults.alert_threshold_seconds == 15
    assert only_shops.defaults.attribution.window == "same_day"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("defaults: {after_sale_days: soon}", "$.defaults.after_sale_days"),
        ("defaults: {after_sale_days: -1}", "$.defaults.after_sale_days"),
        # Its TTLs reached Redis's Lua as 1.7e+17, after a commit had written buyer states.
        ("defaults: {after_sale_days: 2000000000}", "$.defaults.after_sale_days"),
        ("shops: {s1: {after_sale_days: 1000000}}", "$.shops.s1.after_sale_days"),
        ("kafka: {partitons: 8}", "partitons"),
        ("defaults: {timezone: Mars/Base}", "$.defaults.timezone"),
        ("defaults: {attribution: {window: fortnight}}", "$.defaults.attribution.window"),
        ("defaults: {attribution: {rule: middle}}", "$.defaults.attribution.rule"),
        ("shops: {s1: {agents: {a: {group: 'pre sale'}}}}", "$.shops.s1.agents.a.group"),
        ("shops: {s1: {agents: {a: {group: ''}}}}", "$.shops.s1.agents.a.group"),
        ("shops: {s1: {block: [1, 2]}}", "$.shops.s1.block[0]"),
        ("shops: [1]", "$.shops"),
        ("kafka: [", "not valid YAML"),
    ],
)
def test_invalid_configuration_names_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        settings_from_yaml(text)
    assert names in str(caught.value)


@pytest.mark.parametrize("window", ["27d", "30d", "625h"])
def test_an_attribution_window_past_what_a_buyers_state_keeps_is_refused(window: str) -> None:
    """A consultation leaves the buyer's state with the `28d` window: at `30d`, who got the sale
    depended on whether the buyer wrote once more before paying (the older inquiry was gone)."""
    for text in (
        f"defaults: {{attribution: {{window: {window}}}}}",
        f"shops: {{s1: {{attribution: {{window: {window}}}}}}}",
    ):
        with pytest.raises(ConfigError, match="longer than 26d: a buyer's consultations are kept"):
            settings_from_yaml(text)


@pytest.mark.parametrize("window", ["26d", "624h", "24h", "3d"])
def test_an_attribution_window_within_what_a_buyers_state_keeps_is_taken(window: str) -> None:
    assert (
        settings_from_yaml(f"defaults: {{attribution: {{window: {window}}}}}").defaults.attribution.window
        == window
    )


def test_environment_overrides_connections(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("redis: {url: redis://elsewhere:1/0}\n")
    settings = load_settings(
        {
            "KEFU_CONFIG": str(path),
            "KEFU_KAFKA_BOOTSTRAP": "127.0.0.1:1234",
            "KEFU_REDIS_URL": "rediss://127.0.0.1:6380/1",
            "KEFU_WEB_PORT": "7000",
        }
    )
    assert settings.kafka.bootstrap == "127.0.0.1:1234"
    assert settings.redis.url == "rediss://127.0.0.1:6380/1"
    assert settings.web.port == 7000
    with pytest.raises(ConfigError, match="KEFU_WEB_PORT"):
        load_settings({"KEFU_CONFIG": str(path), "KEFU_WEB_PORT": "web"})
    with pytest.raises(ConfigError, match="KEFU_CONFIG"):
        load_settings({"KEFU_CONFIG": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("defaults: {retention_days: 27}", "Expected `int` >= 28 - at `$.defaults.retention_days`"),
        ("defaults: {retention_days: 367}", "Expected `int` <= 366 - at `$.defaults.retention_days`"),
        ("shops: {s1: {retention_days: 10}}", "retention_days"),
    ],
)
def test_retention_days_is_at_least_the_28d_window_and_at_most_a_year(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_yaml(yaml_text)


def test_retention_days_defaults_to_93_and_a_shop_may_keep_longer() -> None:
    from agents.core.policy import resolve_policy

    settings = settings_from_yaml("shops: {s1: {retention_days: 200}}")
    assert settings.defaults.retention_days == 93
    assert resolve_policy(settings, "s1").retention_days == 200
    assert resolve_policy(settings, "s2").retention_days == 93


def test_any_group_name_is_a_team_on_the_floor_and_only_aftersale_changes_counting() -> None:
    from agents.core.policy import resolve_policy

    settings = settings_from_yaml(
        "shops: {s1: {agents: {a: {group: presale}, b: {group: vip-night_2}, c: {group: aftersale}, d: {}}}}"
    )
    policy = resolve_policy(settings, "s1")
    assert policy.aftersale_agents == frozenset({"c"})
    assert policy.agent_groups == {"a": "presale", "b": "vip-night_2", "c": "aftersale"}


def test_rating_days_reaches_back_no_further_than_a_buyers_state_keeps_consultations() -> None:
    """`28d` is today and 27 business days before it: a rating of day D+28 found day D's
    consultation live only until pruning dropped it, and always in a rebuild."""
    assert settings_from_yaml("defaults: {rating_days: 27}").defaults.rating_days == 27
    for text in ("defaults: {rating_days: 28}", "shops: {s1: {rating_days: 28}}"):
        with pytest.raises(ConfigError, match="rating_days"):
            settings_from_yaml(text)


def test_shop_and_agent_ids_are_kept_as_written() -> None:
    """YAML 1.1 typing made `012345` the shop 5349 (octal), `on` the shop True and `1_000` the
    shop 1000: the real shops then ran on the defaults, their block lists gone."""
    settings = settings_from_yaml(
        "shops:\n"
        "  012345: {block: ['ad_*']}\n"
        "  1_000: {}\n"
        "  on: {}\n"
        "  '7': {agents: {0042: {group: presale}, yes: {}}}\n"
    )
    assert sorted(settings.shops) == ["012345", "1_000", "7", "on"]
    assert settings.shops["012345"].block == ["ad_*"]
    assert sorted(settings.shops["7"].agents) == ["0042", "yes"]


def test_merge_keys_take_overrides_as_safe_load_does() -> None:
    """`<<: *base` and then the shop's own `name:` is YAML's usual idiom, not a key written
    twice; two merged mappings that share a key merge as PyYAML's safe_load merges them."""
    text = (
        "shops:\n"
        "  s1: &base {name: 基础, service_hours: '08:00-23:00', block: ['ad_*']}\n"
        "  s2: {<<: *base, name: 二店}\n"
        "  s3: {<<: [&night {service_hours: '20:00-02:00', name: 夜班}, *base]}\n"
    )
    settings = settings_from_yaml(text)
    plain = yaml.safe_load(text)["shops"]
    for shop in ("s2", "s3"):
        read = settings.shops[shop]
        assert {"name": read.name, "service_hours": read.service_hours, "block": read.block} == plain[shop]
    assert settings.shops["s2"].name == "二店"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("shops:\n  s1: {block: ['ad_*']}\n  s2: {}\n  s1: {}\n", "'s1'", "line 4"),
        ("defaults: {alert_threshold_seconds: 10}\ndefaults: {}\n", "'defaults'", "line 2"),
        ("shops: {s1: {agents: {a: {}, a: {group: presale}}}}\n", "'a'", "line 1"),
    ],
)
def test_a_key_written_twice_is_refused_with_its_line(text: str, key: str, line: str) -> None:
    """The second `s1:` block used to replace the first without a word."""
    with pytest.raises(ConfigError, match=f"the key {key} is written twice at {line}"):
        settings_from_yaml(text)


@pytest.mark.parametrize(
    "text",
    [
        "defaults: {alert_threshold_seconds: .inf}",
        "shops: {s1: {alert_threshold_seconds: .inf}}",
        "defaults: {alert_threshold_seconds: .nan}",
        "processing: {wait_limit_hours: .inf}",
        "web: {stream_write_timeout_seconds: 1e400}",
    ],
)
def test_an_infinite_duration_is_refused_naming_its_key(text: str) -> None:
    """`.inf` passed `gt=0` and reached math.floor in the leader's round: OverflowError."""
    key = text.split("{")[-1].split(":")[0]
    with pytest.raises(ConfigError, match=f"{key}`"):
        settings_from_yaml(text)


def test_a_file_not_in_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yaml"
    path.write_bytes("shops: {旗舰店: {}}\n".encode("gbk"))
    with pytest.raises(ConfigError, match=r"KEFU_CONFIG: .*kefu.yaml is not UTF-8 text \(byte 0x"):
        load_settings({"KEFU_CONFIG": str(path)})


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"KEFU_REDIS_URL": "redis://:S3cretPassw0rd@127.0.0.1:99999/0"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "http://127.0.0.1:6379/0"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis://127.0.0.1:6379/0?socket_timeout=soon"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis://127.0.0.1:6379/kefu"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis+cluster://:S3cretPassw0rd@10.0.0.1:7000,10.0.0.2"}, "KEFU_REDIS_URL"),
        # A cluster has database 0 only: redis-py refused it at start, as a traceback.
        ({"KEFU_REDIS_URL": "redis+cluster://:S3cretPassw0rd@10.0.0.1:7000/1"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis+cluster://10.0.0.1:7000/?db=2"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis://:Pass/Word77@redis.internal:6379/0"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis://:S3cret#Word@redis.internal:6379/0"}, "KEFU_REDIS_URL"),
        ({"KEFU_REDIS_URL": "redis://:6380/TopSecret9@redis.internal:6379/0"}, "KEFU_REDIS_URL"),
        ({"KEFU_KAFKA_BOOTSTRAP": "broker1:abc"}, "KEFU_KAFKA_BOOTSTRAP"),
        ({"KEFU_KAFKA_BOOTSTRAP": "127.0.0.1:9092,127.0.0.1:99999"}, "KEFU_KAFKA_BOOTSTRAP"),
    ],
)
def test_a_connection_the_clients_cannot_use_is_refused_naming_the_key(
    tmp_path: Path, environ: dict[str, str], key: str
) -> None:
    """At start-up, with the key's name, not as a traceback from deep inside redis-py or yarl;
    and never with the password."""
    path = tmp_path / "kefu.yaml"
    path.write_text("{}\n")
    with pytest.raises(ConfigError, match=f"^{key}: ") as caught:
        load_settings({"KEFU_CONFIG": str(path), **environ})
    # A password with an unencoded / # ? cuts the URL short: its pieces are the "port" or the
    # "database", and the message quotes neither.
    for piece in ("S3cretPassw0rd", "Pass", "Word77", "S3cret", "TopSecret9", "6380/"):
        assert piece not in str(caught.value)


@pytest.mark.parametrize(
    "environ",
    [
        {"KEFU_REDIS_URL": "redis://redis.internal"},
        {"KEFU_REDIS_URL": "rediss://:p%2Fss@[::1]:6380/2?ssl_cert_reqs=required&socket_timeout=5"},
        {"KEFU_REDIS_URL": "unix:///var/run/redis.sock?db=3"},
        {"KEFU_REDIS_URL": "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002"},
        {"KEFU_REDIS_URL": "redis+cluster://10.0.0.1:7000/0"},
        {"KEFU_KAFKA_BOOTSTRAP": "kafka"},  # the clients' port, 9092
        {"KEFU_KAFKA_BOOTSTRAP": "kafka-0.kafka,kafka-1.kafka:9093,[::1]"},
        {"KEFU_REDIS_URL": "", "KEFU_KAFKA_BOOTSTRAP": ""},  # empty: the file's (the defaults)
    ],
)
def test_a_connection_the_clients_take_is_taken(tmp_path: Path, environ: dict[str, str]) -> None:
    path = tmp_path / "kefu.yaml"
    path.write_text("{}\n")
    load_settings({"KEFU_CONFIG": str(path), **environ})


def test_an_empty_variable_leaves_the_files_value_and_its_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yaml"
    path.write_text("redis: {url: 'redis://127.0.0.1:6379/zero'}\n")
    with pytest.raises(ConfigError, match=r"^redis\.url: "):
        load_settings({"KEFU_CONFIG": str(path), "KEFU_REDIS_URL": ""})


def test_a_connection_in_the_file_is_checked_under_its_key(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yaml"
    path.write_text("redis: {url: 'redis://127.0.0.1:6379/kefu'}\n")
    with pytest.raises(ConfigError, match=r"^redis\.url: the database after the port must be a number"):
        load_settings({"KEFU_CONFIG": str(path)})
