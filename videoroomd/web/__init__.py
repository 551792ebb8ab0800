"""The daemon's own web client: static pages and modules, and the public room list they read."""
