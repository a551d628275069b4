"""The `notify` configuration: one sentence naming the key, and secrets that never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config.redaction import install_log_redaction
from config.secret import mask_secrets
from config.settings import (
    ConfigError,
    environment_secrets,
    is_quiet,
    resolve_channels,
    settings_from_yaml,
    settings_secrets,
    shop_notify,
)

DING_URL = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123456789abcdef"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef"
FLAGSHIP = """
defaults:
  notify: {floor_url: "http://wall.example:6066"}
shops:
  flagship:
    name: 旗舰店
    notify:
      digest_at: null
      channels:
        - {type: dingtalk, url_env: KEFU_FLAGSHIP_DING_URL, secret_env: KEFU_FLAGSHIP_DING_SECRET,
           quiet_hours: "23:00-08:00"}
        - {type: wecom, url_file: %(file)s, name: team-wecom}
    agents:
      "flagship:xiaomei": {name: 小美, mention: "13800000000"}
"""


def flagship(tmp_path: Path) -> str:
    secret_file = tmp_path / "wecom-url"
    secret_file.write_text(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key-0123456789abcdef\n"
    )
    return FLAGSHIP % {"file": secret_file}


def test_a_shop_resolves_its_channels_from_the_environment_and_a_file(tmp_path: Path) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    environ = {"KEFU_FLAGSHIP_DING_URL": DING_URL, "KEFU_FLAGSHIP_DING_SECRET": DING_SECRET}
    ding, wecom = resolve_channels(settings, "flagship", environ)
    assert (ding.type, ding.name, ding.quiet_hours) == ("dingtalk", "dingtalk", "23:00-08:00")
    assert (ding.url.reveal(), ding.secret and ding.secret.reveal()) == (DING_URL, DING_SECRET)
    assert (wecom.name, wecom.secret) == ("team-wecom", None)
    assert wecom.url.reveal().endswith("key=wecom-key-0123456789abcdef")
    assert DING_SECRET not in repr((ding, wecom)) and "0123456789abcdef0123456789abcdef" not in repr(ding)
    # Resolved secrets are remembered: any later message masks them, whatever its shape.
    assert (
        mask_secrets(f"boom {DING_SECRET} at 0123456789abcdef0123456789abcdef") == "boom ******** at ********"
    )


def test_a_shop_notify_replaces_only_the_keys_it_sets(tmp_path: Path) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    mine, other = shop_notify(settings, "flagship"), shop_notify(settings, "elsewhere")
    assert (mine.digest_at, mine.floor_url, len(mine.channels)) == (None, "http://wall.example:6066", 2)
    assert (other.digest_at, other.floor_url, other.channels) == ("09:00", "http://wall.example:6066", [])
    assert settings.shops["flagship"].agents["flagship:xiaomei"].mention == "13800000000"


CHANNEL = "shops: {s: {notify: {channels: [%s]}}}"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (CHANNEL % "{type: slack, url_env: X}", "$.shops.s.notify.channels[0].type"),
        (
            CHANNEL % "{type: dingtalk, url_env: X, url_file: /f}",
            "$.shops.s.notify.channels[0]: set exactly one",
        ),
        (
            CHANNEL % "{type: dingtalk}",
            "$.shops.s.notify.channels[0]: set exactly one of url_env and url_file",
        ),
        (
            CHANNEL % "{type: dingtalk, url: 'https://x/robot/send?access_token=abc'}",
            "channels[0].url: robot URLs",
        ),
        (
            CHANNEL % "{type: feishu, url_env: X, secret: hunter22}",
            "$.shops.s.notify.channels[0].secret: robot",
        ),
        (CHANNEL % "{type: wecom, url_env: X, secret_env: Y}", "channels[0]: a wecom robot has no signature"),
        (CHANNEL % "{type: webhook, url_env: 'no way'}", "$.shops.s.notify.channels[0].url_env: expected"),
        (
            CHANNEL % "{type: dingtalk, url_env: X, quiet_hours: '23-08'}",
            "channels[0].quiet_hours: expected HH:MM",
        ),
        (
            CHANNEL % "{type: dingtalk, url_env: X, quiet_hours: '08:00-08:00'}",
            "channels[0].quiet_hours: the start",
        ),
        ("defaults: {notify: {digest_at: '25:00'}}", "$.defaults.notify.digest_at: expected a local time"),
        ("shops: {s: {notify: {digest_at: 9}}}", "$.shops.s.notify.digest_at"),
        ("defaults: {notify: {floor_url: wall:6066}}", "$.defaults.notify.floor_url: expected an http"),
        (
            "defaults: {notify: {channels: [{type: dingtalk, url_env: X, secret_env: Y, secret_file: /z}]}}",
            "$.defaults.notify.channels[0]: set at most one of secret_env and secret_file",
        ),
    ],
)
def test_invalid_notify_configuration_is_one_sentence_naming_the_key(text: str, names: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from_yaml(text)
    assert names in str(raised.value)
    assert "\n" not in str(raised.value)
    assert "abc" not in str(raised.value) and "hunter22" not in str(raised.value)


def test_a_missing_variable_or_unreadable_file_names_the_key(tmp_path: Path) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    with pytest.raises(
        ConfigError, match=r"channels\[0\]\.url_env: the environment variable KEFU_FLAGSHIP_DING_URL"
    ):
        resolve_channels(settings, "flagship", {})
    with pytest.raises(
        ConfigError, match=r"channels\[0\]\.secret_env: the environment variable KEFU_FLAGSHIP_DING_S"
    ):
        resolve_channels(settings, "flagship", {"KEFU_FLAGSHIP_DING_URL": DING_URL})
    (tmp_path / "wecom-url").unlink()
    environ = {"KEFU_FLAGSHIP_DING_URL": DING_URL, "KEFU_FLAGSHIP_DING_SECRET": DING_SECRET}
    with pytest.raises(
        ConfigError, match=r"^\$\.shops\.flagship\.notify\.channels\[1\]\.url_file: cannot read .*"
    ):
        resolve_channels(settings, "flagship", environ)


def test_a_url_that_is_no_url_is_refused_without_quoting_it(tmp_path: Path) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    environ = {
        "KEFU_FLAGSHIP_DING_URL": "oapi.dingtalk.com/robot?access_token=tok-0123456789",
        "KEFU_FLAGSHIP_DING_SECRET": "s",
    }
    with pytest.raises(ConfigError, match=r"channels\[0\]\.url_env: the robot's URL must be") as raised:
        resolve_channels(settings, "flagship", environ)
    assert "tok-0123456789" not in str(raised.value)


def test_robot_secrets_are_settings_secrets_and_environment_secrets(tmp_path: Path) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    environ = {"KEFU_FLAGSHIP_DING_URL": DING_URL, "KEFU_FLAGSHIP_DING_SECRET": DING_SECRET}
    known = settings_secrets(settings, environ)
    assert {DING_URL, DING_SECRET, "0123456789abcdef0123456789abcdef", "wecom-key-0123456789abcdef"} <= set(
        known
    )
    # Before the file is read: a robot URL is known by its look, whatever the variable's name.
    assert "0123456789abcdef0123456789abcdef" in environment_secrets({"ANY_NAME": DING_URL})
    assert settings_secrets(settings_from_yaml(""), {}) == settings_secrets(settings_from_yaml(""), environ)


def test_every_log_line_masks_the_robot_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_from_yaml(flagship(tmp_path))
    environ = {"KEFU_FLAGSHIP_DING_URL": DING_URL, "KEFU_FLAGSHIP_DING_SECRET": DING_SECRET}
    undo = install_log_redaction(settings_secrets(settings, environ))
    try:
        logging.getLogger("kefu.test").warning("posting to %s with %s", DING_URL, DING_SECRET)
    finally:
        undo()
    assert "0123456789abcdef0123456789abcdef" not in caplog.text and DING_SECRET not in caplog.text
    assert "posting to" in caplog.text


@pytest.mark.parametrize(
    ("quiet", "service", "minute", "expected"),
    [
        ("23:00-08:00", None, 23 * 60, True),
        ("23:00-08:00", None, 7 * 60 + 59, True),
        ("23:00-08:00", None, 8 * 60, False),
        ("12:00-13:00", None, 12 * 60 + 30, True),
        ("12:00-13:00", None, 13 * 60, False),
        ("outside_service_hours", "08:00-23:00", 7 * 60, True),
        ("outside_service_hours", "08:00-23:00", 8 * 60, False),
        ("outside_service_hours", None, 3 * 60, False),
        (None, "08:00-23:00", 3 * 60, False),
    ],
)
def test_quiet_hours(quiet: str | None, service: str | None, minute: int, expected: bool) -> None:
    assert is_quiet(quiet, service, minute) is expected
