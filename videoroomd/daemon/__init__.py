"""The daemon: root nursery, room supervision, reload, drain, systemd notification."""
