"""The daemon: root nursery, room supervision, reload, drain, systemd notification.

``daemon.py`` wires every part together (rooms, engine, media workers, TURN,
the cluster, the port) and is imported by the CLI only; ``supervisor`` (the
restart loop) is the one module other folders (rooms) may import.
"""
