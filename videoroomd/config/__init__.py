"""The TOML configuration: discovery, strict validation, frozen typed objects."""

from .errors import ConfigError, Problem
from .load import Location, load, locate, parse
from .schema import ClusterConfig, Config, IceConfig, IceServerUrl, LogConfig, RoomConfig, ServerConfig, TurnConfig, TurnServer

__all__ = [
    "ClusterConfig", "Config", "ConfigError", "IceConfig", "IceServerUrl", "Location", "LogConfig", "Problem",
    "RoomConfig", "ServerConfig", "TurnConfig", "TurnServer", "load", "locate", "parse",
]
