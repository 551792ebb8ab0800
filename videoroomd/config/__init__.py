"""The TOML configuration: discovery, strict validation, frozen typed objects.

``schema`` is the one source of defaults; ``keys`` maps TOML keys to fields and
their checks. Imports only ``certs`` (to read the files a config names) and
``http.hosts`` (the host rule); everything else imports it.
"""

from .errors import ConfigError, Problem
from .load import Location, load, locate, parse
from .schema import (ClusterConfig, Config, IceConfig, IceServerUrl, LogConfig, RoomConfig, ServerConfig, TurnConfig,
                     TurnServer, WebhooksConfig)

__all__ = [
    "ClusterConfig", "Config", "ConfigError", "IceConfig", "IceServerUrl", "Location", "LogConfig", "Problem",
    "RoomConfig", "ServerConfig", "TurnConfig", "TurnServer", "WebhooksConfig", "load", "locate", "parse",
]
