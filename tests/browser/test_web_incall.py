"""In the call, in headless Chromium: keyboard shortcuts, the people list's muted / camera off /
sharing, a connection-quality mark on each tile, and a browser that refuses to share a screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from testsupport.browser import save_artifact
from testsupport.web_page import ICE, KEEP_PEER_CONNECTIONS, module_daemon, participant, rooms_of, tile_of, wait_for_moving_video
from test_web_screen import SCREEN_FLAGS, wait_for_moving_screen

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room of its own.
daemon = module_daemon(ICE + rooms_of("shortcuts", "refused", "three", "stopped"))


@pytest.fixture
def browser(chromiums):
    """The session's Chromium with a fake screen to share (as test_web_screen.py's), in
    place of the default one."""
    with chromiums.lend(extra_flags=SCREEN_FLAGS) as shared:
        yield shared


def person(page, name: str):
    return page.locator(f"#participants li:has(.who:text-is('{name}'))")


def test_shortcuts_and_the_people_list_show_who_is_muted_has_the_camera_off_and_shares(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="shortcuts")
    bob = participant(browser, daemon, "Bob", room="shortcuts")
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(bob, "Ann")
    # the shortcuts are on the buttons
    expect(bob.get_by_role("button", name="Mute")).to_have_attribute("aria-keyshortcuts", "M")
    expect(bob.get_by_role("button", name="Mute").locator("kbd")).to_have_text("M")
    expect(bob.get_by_role("button", name="Leave")).to_have_attribute("aria-keyshortcuts", "Shift+L")
    bob.keyboard.press("m")
    bob.keyboard.press("v")
    expect(person(ann, "Bob").locator(".state")).to_have_text(["muted", "camera off"], timeout=10000)
    expect(person(bob, "Bob (you)").locator(".state")).to_have_text(["muted", "camera off"])
    expect(bob.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    bob.keyboard.press("s")
    wait_for_moving_screen(ann, "Bob")
    expect(person(ann, "Bob").locator(".state")).to_have_text(["muted", "camera off", "sharing"], timeout=10000)
    expect(person(bob, "Bob (you)").locator(".state")).to_have_text(["muted", "camera off", "sharing"])
    bob.keyboard.press("m")
    expect(person(ann, "Bob").locator(".state")).to_have_text(["camera off", "sharing"], timeout=10000)
    # typing in the chat is typing, not shortcuts
    ann.keyboard.press("c")
    message = ann.get_by_label("Message to everyone in the room")
    expect(message).to_be_focused()
    message.press_sequentially("mvsL")
    expect(message).to_have_value("mvsL")
    expect(ann.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "false")
    expect(ann.get_by_role("button", name="Camera off")).to_have_attribute("aria-pressed", "false")
    expect(ann.locator("#call")).to_be_visible()
    # each tile says how the connection is, from the call's statistics
    quality = ann.locator(f"{tile_of(ann, 'Bob')} .quality")
    # loopback loses nothing; a machine busy with other tests may delay packets into "fair" jitter, said so
    expect(quality).to_have_attribute("aria-label", re.compile(r"^Connection: (good|fair, jitter \d+ ms)$"), timeout=15000)
    expect(quality).to_have_attribute("data-quality", re.compile(r"^(good|fair)$"))
    # Shift+L asks first; Enter leaves
    bob.locator("body").press("Shift+L")
    expect(bob.get_by_role("dialog", name="Leave the call?")).to_be_visible()
    bob.keyboard.press("Enter")
    expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(0, timeout=10000)
    expect(person(ann, "Bob")).to_have_count(0)
    for page in (ann, bob):
        page.context.close()


REFUSE_SCREEN = """
    window.screenRefusal = "NotAllowedError";
    navigator.mediaDevices.getDisplayMedia = async () => {
        throw new DOMException("Permission denied by system", window.screenRefusal);
    };
"""


def test_a_refused_screen_share_is_explained_and_the_call_goes_on(browser, daemon):
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.add_init_script(REFUSE_SCREEN)
    ann = context.new_page()
    ann.goto(f"{daemon.url}/room/refused?name=Ann&autojoin=1")
    bob = participant(browser, daemon, "Bob", room="refused")
    wait_for_moving_video(bob, "Ann")
    ann.get_by_role("button", name="Share screen").click()
    expect(ann.locator("#notice")).to_have_text(
        "The screen is not shared: the picker was cancelled, or the browser or system does not allow this page to share the screen.")
    expect(ann.get_by_role("button", name="Share screen")).to_have_attribute("aria-pressed", "false")
    ann.evaluate("() => { window.screenRefusal = 'NotSupportedError'; }")
    ann.get_by_role("button", name="Share screen").click()
    expect(ann.locator("#notice")).to_have_text(
        "The screen is not shared: this browser could not share it (Permission denied by system).")
    # nothing changed for anyone: no stage, the cameras still move both ways
    expect(bob.locator("#stage")).to_be_hidden()
    expect(person(bob, "Ann").locator(".state")).to_have_count(0)
    wait_for_moving_video(bob, "Ann")
    wait_for_moving_video(ann, "Bob")
    context.close()
    bob.context.close()


def test_a_three_person_call_with_a_shared_screen_and_the_chat_open(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="three", viewport={"width": 1280, "height": 800})
    bob = participant(browser, daemon, "Bob", room="three")
    cleo = participant(browser, daemon, "Cleo", room="three")
    for name in ("Bob", "Cleo"):
        wait_for_moving_video(ann, name)
    bob.get_by_role("button", name="Share screen").click()
    wait_for_moving_screen(ann, "Bob")
    cleo.get_by_role("button", name="Mute").click()
    cleo.get_by_role("button", name="Chat").click()
    cleo.get_by_label("Message to everyone in the room").fill("Can you zoom in on the second chart?")
    cleo.get_by_label("Message to everyone in the room").press("Enter")
    ann.get_by_role("button", name="Chat").click()
    expect(ann.locator("#chat-messages .chat-text")).to_have_text(["Can you zoom in on the second chart?"], timeout=10000)
    ann.get_by_label("Message to everyone in the room").fill("Sure, one moment")
    ann.get_by_label("Message to everyone in the room").press("Enter")
    expect(person(ann, "Bob").locator(".state")).to_have_text(["sharing"], timeout=10000)
    expect(person(ann, "Cleo").locator(".state")).to_have_text(["muted"], timeout=10000)
    expect(ann.locator(f"{tile_of(ann, 'Bob')} .quality")).to_be_visible(timeout=15000)
    # the screen has the stage to itself, larger than any camera; the chat and every control are on screen
    stage = ann.locator("#stage").bounding_box()
    for name in ("Bob", "Cleo"):
        tile = ann.locator(tile_of(ann, name)).bounding_box()
        assert stage["width"] > 2 * tile["width"], (stage, tile)
    expect(ann.locator("#stage figure")).to_have_count(1)
    expect(ann.locator("#chat-panel")).to_be_in_viewport()
    for name in ("Mute", "Camera off", "Leave"):
        expect(ann.get_by_role("button", name=name)).to_be_in_viewport()
    ann.wait_for_timeout(500)  # the newest frames, not the first
    save_artifact(ann, "call-with-screen-share.png")  # docs/call-with-screen-share.png is a copy of one
    for page in (ann, bob, cleo):
        page.context.close()




def test_a_tile_whose_video_stops_arriving_says_the_connection_is_poor(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="stopped")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.add_init_script(KEEP_PEER_CONNECTIONS)  # so the test can stop what Bob's page sends
    bob = context.new_page()
    bob.goto(f"{daemon.url}/room/stopped?name=Bob&autojoin=1")
    wait_for_moving_video(ann, "Bob")
    quality = ann.locator(f"{tile_of(ann, 'Bob')} .quality")
    expect(quality).to_have_attribute("data-quality", re.compile(r"^(good|fair)$"), timeout=15000)
    # Bob's video stops on its way (his camera still on, as far as anyone was told)
    bob.evaluate("""() => {
        const sender = window.peerConnections[0].getSenders().find((s) => s.track?.kind === 'video');
        window.stopped = { sender, track: sender.track };
        return sender.replaceTrack(null);
    }""")
    expect(quality).to_have_attribute("aria-label", "Connection: poor, no video arrives", timeout=15000)
    expect(quality).to_contain_text("no video arrives")  # said on the tile, not only to a screen reader
    expect(ann.locator(f"{tile_of(ann, 'Bob')} .badge")).to_have_count(0)  # not "camera off": nobody turned it off
    # it comes back
    bob.evaluate("() => window.stopped.sender.replaceTrack(window.stopped.track)")
    expect(quality).to_have_attribute("data-quality", re.compile(r"^(good|fair)$"), timeout=15000)
    ann.context.close()
    context.close()
