"""Configuration: the typed settings model and the default `kefu.yaml`."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
