"""Where a shop's alerts go and how they read: its channels (the shop's, else the defaults'),
each channel's quiet hours in the shop's time zone, names, the floor link, retry time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from config.settings import Settings, shop_notify
from streams.notify.quiet import QuietHours, quiet_hours
from streams.notify.robots import ChannelConfig
from streams.render.notices import Names, floor_link, names_for


class Routes:
    """`channels`: the resolved channels per configured shop id, and under "" the defaults'."""

    def __init__(self, settings: Settings, channels: Mapping[str, Sequence[ChannelConfig]]) -> None:
        self.settings = settings
        self._channels = channels

    def channels(self, shop_id: str) -> Sequence[ChannelConfig]:
        return self._channels.get(shop_id, self._channels.get("", ()))

    def quiet(self, shop_id: str, channel: ChannelConfig) -> QuietHours | None:
        shop = self.settings.shops.get(shop_id)
        defaults = self.settings.defaults
        zone = (shop.timezone if shop is not None else None) or defaults.timezone
        hours = (shop.service_hours if shop is not None else None) or defaults.service_hours
        return quiet_hours(channel.quiet_hours, ZoneInfo(zone), hours)

    def names(self, shop_id: str, agent_id: str) -> Names:
        return names_for(self.settings, shop_id, agent_id)

    def link(self, shop_id: str) -> str | None:
        return floor_link(shop_notify(self.settings, shop_id).floor_url, shop_id)

    def retry_seconds(self, shop_id: str) -> float:
        return shop_notify(self.settings, shop_id).retry_seconds
