"""Tests against a real daemon (in this process, or `videoroomd serve` through the start_daemon
fixture), sockets on loopback, aiortc participants (testsupport.media_bot), TURN clients and
the test hosts. They may import testsupport and bench; what takes more than about 3 s is marked
slow.
"""
