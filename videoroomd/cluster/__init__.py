"""Several daemons (nodes) serving one set of rooms through Redis.

Owns the Redis implementations of the seams the rest of the package
defines: the room directory (:mod:`..rooms.directory`) on Redis, the node
directory with each node's published load (:mod:`.nodes`, its local
implementation beside it), the records both store (:mod:`.records`), the
node's heartbeat, its metrics, the participant link across nodes
(:mod:`.cluster_service`, :mod:`.remote_link`, :mod:`.room_side` on
:mod:`.link_bus`), and :class:`.node.ClusterNode`, which the daemon makes
only when the config has a ``[cluster]`` table. May import
``rooms.directory``, ``rooms.chat`` (a chat message and its bounds), the participant link's seam, codec and local
implementation (``rooms.link``, ``rooms.link_codec``, ``rooms.local_link``, with
the refusal ``JoinRefused`` and the outbox bound of ``rooms.room``),
``placement`` and ``config``; only
:mod:`.redis_client` imports the Redis client library (coredis), and only
when a client is made, so a daemon without ``[cluster]`` never loads it.
"""
