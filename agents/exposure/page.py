"""The floor display page, served as one self-contained file (no CDN, no network)."""

from __future__ import annotations

from importlib import resources

FLOOR_PAGE = resources.files("agents.exposure").joinpath("static/floor.html").read_text(encoding="utf-8")
