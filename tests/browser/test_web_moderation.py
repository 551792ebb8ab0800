"""Moderation on the page: a moderator who came with ?token= admits a participant from the waiting room,
then mutes, stops the camera of, and removes them from the people list; the participant's page shows
each, what it sends stops reaching the moderator, then its call ends with the reason."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from testsupport.web_page import (ICE, KEEP_PEER_CONNECTIONS, tile_of,
                                  wait_for_moving_video)
from videoroomd.auth.tokens import Grants, mint

SECRET = "w" * 40
ROOMS = ICE + f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[rooms.class]\naccess = "token"\nlobby = true\n'

# Audio packets this page received so far, over every connection it made.
AUDIO_PACKETS = """async () => {
    let packets = 0;
    for (const pc of window.peerConnections)
        for (const entry of (await pc.getStats()).values())
            if (entry.type === "inbound-rtp" && entry.kind === "audio") packets += entry.packetsReceived || 0;
    return packets;
}"""


def token(identity: str, name: str, moderator: bool = False) -> str:
    return mint("app", SECRET, room="class", identity=identity, name=name, now=time.time(), ttl=600,
                grants=Grants(moderate=moderator))


def page_with(browser, daemon, token_text: str, *, waits: bool = False):
    context = browser.new_context(viewport={"width": 1100, "height": 750})
    context.add_init_script(KEEP_PEER_CONNECTIONS)
    page = context.new_page()
    page.goto(f"{daemon.url}/room/class?token={token_text}&autojoin=1")
    if not waits:
        expect(page.locator("#call")).to_be_visible(timeout=15000)
    return page


def test_a_moderator_mutes_stops_and_removes_a_participant_who_sees_each(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS, media="workers = 1")
    ann = page_with(browser, daemon, token("ann", "Ann", moderator=True))  # a moderator walks in
    bob = page_with(browser, daemon, token("bob", "Bob"), waits=True)
    expect(bob.locator("#join-message")).to_contain_text("waiting room", timeout=15000)
    expect(bob.locator("#call")).to_be_hidden()
    ann.get_by_role("button", name="Admit Bob").click()
    expect(bob.locator("#call")).to_be_visible(timeout=15000)
    expect(ann.locator("#lobby-waiting")).to_be_hidden()
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(bob, "Ann")
    # Only the moderator has the controls.
    expect(ann.locator("#room-moderation")).to_be_visible()
    expect(ann.get_by_role("button", name="Mute Bob")).to_be_visible()
    assert bob.locator("#room-moderation").count() == 0 and bob.locator(".moderate").count() == 0
    ann.wait_for_function("async () => (await (" + AUDIO_PACKETS + ")()) > 50")

    ann.get_by_role("button", name="Mute Bob").click()
    expect(bob.locator("#notice")).to_contain_text("Ann muted your microphone", timeout=10000)
    expect(bob.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator("#participants li:has-text('Bob') .state-muted")).to_be_visible(timeout=10000)
    ann.wait_for_timeout(1000)  # what was on its way
    before = ann.evaluate(AUDIO_PACKETS)
    ann.wait_for_timeout(2000)
    assert ann.evaluate(AUDIO_PACKETS) - before <= 3  # the server forwards nothing of Bob's microphone

    ann.get_by_role("button", name="Stop Bob's camera").click()
    expect(bob.locator("#notice")).to_contain_text("Ann stopped your camera", timeout=10000)
    expect(bob.locator("#camera-button")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator("#participants li:has-text('Bob') .state-camera-off")).to_be_visible(timeout=10000)

    ann.get_by_role("button", name="Remove Bob").click()
    ann.get_by_label("Why Bob is removed").fill("please be kind")
    ann.locator(".remove-form button[type=submit]").click()
    expect(bob.locator("#join-message")).to_contain_text("removed by Ann: please be kind", timeout=10000)
    expect(bob.locator("#call")).to_be_hidden()
    bob.wait_for_function("() => window.peerConnections.every((pc) => pc.connectionState === 'closed')")
    expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(0, timeout=10000)
    expect(ann.locator("#participants li:has-text('Bob')")).to_have_count(0)
    for page in (ann, bob):
        page.context.close()
