from __future__ import annotations

from agents.exposure.floor import mask_buyer


def test_buyers_are_masked_as_events_md_shows() -> None:
    assert mask_buyer("tb_9f2") == "tb_***2"
    assert mask_buyer("a") == "***a"
    assert "9f" not in mask_buyer("tb_9f2")
