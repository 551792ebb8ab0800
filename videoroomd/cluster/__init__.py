"""Several daemons (nodes) serving one set of rooms through Redis.

Owns the Redis implementations of the seams the rest of the package
defines: the room directory (:mod:`..rooms.directory`), and the node
directory with each node's published load (:mod:`.nodes`, whose local
implementation lives here too), plus the records they store. May import
``rooms.directory``, ``placement`` and ``config``; nothing outside this
folder imports the Redis client, and this folder imports it only in
:mod:`.redis_client`, so a daemon without ``[cluster]`` never loads it.
"""
