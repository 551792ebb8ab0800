"""videoroomd: self-hosted video rooms in the browser."""

__version__ = "0.1.0"
