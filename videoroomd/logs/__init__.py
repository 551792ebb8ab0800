"""Structured logging: configured once at start, read back by `videoroomd logs`.

``ratelimit`` bounds the lines a client can cause. Imports nothing of the
package.
"""
