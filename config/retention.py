"""How long the input topics must keep their records: computed from the settings alone, so the
topics (`streams/wire/topics.py`) and the offsets that fence them (`agents/store/batches.py`)
read one rule."""

from __future__ import annotations

from config.calendar import MS_PER_DAY
from config.settings import Settings


def input_retention_days(settings: Settings) -> int:
    """What `rebuild` must re-read to restore every report: the longest `retention_days`, the
    after-sale look-back before its first day (orders then still classify consultations), and a
    day for the time zones' offsets."""
    shops = settings.shops.values()
    retention = max([settings.defaults.retention_days, *(s.retention_days or 0 for s in shops)])
    after_sale = max([settings.defaults.after_sale_days, *(s.after_sale_days or 0 for s in shops)])
    return retention + after_sale + 1


def input_retention_ms(settings: Settings) -> int:
    return input_retention_days(settings) * MS_PER_DAY
