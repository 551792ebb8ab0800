"""Several daemons (nodes) serving one set of rooms through Redis.

Owns the Redis implementations of the seams the rest of the package
defines: the room directory (:mod:`..rooms.directory`) on Redis, the node
directory with each node's published load (:mod:`.nodes`, its local
implementation beside it), the records both store (:mod:`.records`), the
node's heartbeat, its metrics, and :class:`.node.ClusterNode`, which the
daemon makes only when the config has a ``[cluster]`` table. May import
``rooms.directory``, ``placement`` and ``config``; only
:mod:`.redis_client` imports the Redis client library (coredis), and only
when a client is made, so a daemon without ``[cluster]`` never loads it.
"""
