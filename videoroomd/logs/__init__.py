"""Structured logging: configured once at start, read back by `videoroomd logs`."""
