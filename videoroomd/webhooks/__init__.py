"""Webhooks: what happens in the rooms, POSTed as signed JSON to the URLs of ``[webhooks]``.

``signing`` makes the body and its signature (pure); ``http_post`` is one
POST over trio with a deadline and caps (h11, TLS through ``ssl``);
``delivery`` is one URL's bounded queue and its task, retrying with
backoff; ``service`` is the sink the rooms emit into (never blocking, never
raising) and the counters ``/metrics`` shows. Imports ``config``,
``backoff`` and ``logs``; nothing imports it but the daemon, which hands
the rooms its :class:`~.service.Webhooks` as their ``RoomEvents``.
"""

from .service import Webhooks

__all__ = ["Webhooks"]
