"""The connection to Redis: the one module that imports the Redis client library.

The client is coredis, built on anyio and so at home under trio; its
connection pool runs tasks of its own, which :func:`open_redis` keeps inside
the caller's ``async with``. Every command of the cluster goes through the
client this returns, with the deadlines set here.
"""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 2.0   # seconds to open a connection; Redis is on the local network
COMMAND_TIMEOUT = 2.0   # seconds for an answer; callers hold deadlines of their own as well


class RedisMissing(ImportError):
    """The Redis client library is not installed; the text says how to install it."""


def client_module() -> Any:
    """The ``coredis`` module; raises RedisMissing when it is not installed."""
    try:
        import coredis
    except ImportError:
        raise RedisMissing("[cluster] needs the Redis client: pip install 'videoroomd[cluster]' (coredis)") from None
    return coredis


def make_client(url: str) -> Any:
    """A client for ``url`` (redis:// or rediss://), not yet open (see :func:`opened`); raises RedisMissing.

    Connections are made when a command needs one, so opening it does not
    fail while Redis is down: the commands raise (an OSError, or coredis's
    ConnectionError / TimeoutError) until it is back."""
    coredis = client_module()
    tls = {}
    if urlsplit(url).scheme == "rediss":
        # coredis's own default checks no host name: ours checks the certificate and the name, against
        # the system's trust store (or the CA file in $SSL_CERT_FILE, for a Redis with a private CA).
        tls["ssl_context"] = ssl.create_default_context()
    return coredis.Redis.from_url(url, decode_responses=False, connect_timeout=CONNECT_TIMEOUT,
                                  stream_timeout=COMMAND_TIMEOUT, **tls)


@asynccontextmanager
async def opened(client: Any) -> AsyncIterator[Any]:
    """``client`` open for the block: its connection pool's tasks run inside it."""
    try:
        async with client:
            yield client
    except BaseExceptionGroup as group:  # the pool's task group wraps what the block raised: unwrap one
        raise _single(group) from None


@asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[Any]:
    """A new client for ``url``, open for the block (:func:`make_client`, :func:`opened`)."""
    async with opened(make_client(url)) as client:
        yield client


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one exception a group of one holds (nested groups opened); the group itself otherwise."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
