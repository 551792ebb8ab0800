"""The `videoroomd` command line: one place turns user errors into `videoroomd: message`.

The outermost layer: may import any folder (the daemon to serve, the config to
check, the logs to tail, the cluster to list nodes); nothing imports it.
"""

from .main import main

__all__ = ["main"]
