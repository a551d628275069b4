"""The input topics' retention: one rule, read by the topics and by the offsets that fence them."""

from __future__ import annotations

import pytest

from config.calendar import MS_PER_DAY
from config.retention import input_retention_days, input_retention_ms
from config.settings import settings_from_yaml


@pytest.mark.parametrize(
    ("yaml_text", "days"),
    [
        ("{}", 93 + 7 + 1),
        ("defaults: {retention_days: 28, after_sale_days: 0}", 29),
        ("shops: {s1: {retention_days: 120}, s2: {after_sale_days: 14}}", 120 + 14 + 1),
    ],
)
def test_input_topics_keep_what_rebuild_needs_for_every_report(yaml_text: str, days: int) -> None:
    """The longest retention of any shop, the after-sale look-back before it, a day for zones."""
    settings = settings_from_yaml(yaml_text)
    assert input_retention_days(settings) == days
    assert input_retention_ms(settings) == days * 86_400_000 == days * MS_PER_DAY
