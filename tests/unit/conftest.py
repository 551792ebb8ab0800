"""Tests of pure code: no socket, no daemon, no child process but a documentation tool (groff,
systemd-analyze, node for the page's modules). They may import videoroomd and testsupport's
pure parts; what takes more than about 3 s is marked slow.
"""
