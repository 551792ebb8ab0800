"""The `videoroomd` command line: one place turns user errors into `videoroomd: message`."""

from .main import main

__all__ = ["main"]
