"""What the tests (tests/) and the benchmarks (bench/) share to drive a real videoroomd.

A Phoenix client, aiortc participants and the asyncio thread they run on, the
network hosts, browsers, TURN clients, /metrics reading and waiting. It may
import videoroomd (as any client of it would) and third-party libraries;
videoroomd never imports it, and the wheel does not ship it
(pyproject.toml's package discovery takes videoroomd* only).
"""
