"""Homeserver configuration: load/validate ``homeserver.yaml`` and generate a new one."""

from __future__ import annotations

from hs.config.errors import ConfigError
from hs.config.model import (
    DatabaseSettings,
    HomeserverConfig,
    ListenerConfig,
    RateLimit,
    load_config,
    parse_config,
)
from hs.config.template import generate_config, render_config

__all__ = [
    "ConfigError",
    "DatabaseSettings",
    "HomeserverConfig",
    "ListenerConfig",
    "RateLimit",
    "generate_config",
    "load_config",
    "parse_config",
    "render_config",
]
