"""Participants of a running daemon as far as TURN is concerned: the credentials a join is handed."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass

from testsupport.phoenix import PhoenixClient, phoenix_client


@dataclass
class Issued:
    """A participant in a call, and the built-in server's credentials its join was handed."""

    client: PhoenixClient
    peer_id: str
    username: str
    password: str


async def offer_data(client: PhoenixClient, room: str) -> dict:
    """Ask for an offer (as a client adding tracks does) and return the offerData's data."""
    await client.media_event(room, {"type": "custom", "data": {"type": "renegotiateTracks"}})
    while True:
        event = await client.next_media_event()
        if event["type"] == "custom" and event["data"]["type"] == "offerData":
            return event["data"]["data"]


@asynccontextmanager
async def issued(daemon, room: str, name: str = "someone", transport: str = "udp"):
    """A participant joined to ``room`` and connected; yields its :class:`Issued` credentials
    (those for ``transport``); it leaves on exit."""
    async with phoenix_client(daemon) as client:
        reply = await client.join(room, displayName=name)
        assert reply["status"] == "ok", reply
        await client.media_event(room, {"type": "connect", "data": {"metadata": {"displayName": name}}})
        while True:
            event = await client.next_media_event()
            if event["type"] == "connected":
                peer_id = event["data"]["id"]
                break
        servers = (await offer_data(client, room))["integratedTurnServers"]
        (entry,) = [s for s in servers if s["transport"] == transport]
        yield Issued(client, peer_id, entry["username"], entry["password"])
