"""Every state of the page, in the windows people use (a 1280x800 and a 1024x700 laptop, a 390x844
phone): the join card with its password field and each refusal, a call of 1, 2, 4 and 9 people, a
shared screen, a side panel, the question before Shift+L leaves, the screen after leaving. At each,
what must be reachable lies wholly in the window and no control or mark covers another
(testsupport.page_geometry). One page per browser walks the call's states, resized through the
windows at each; the other people are aiortc bots."""

from __future__ import annotations

import signal

import pytest
from playwright.sync_api import expect

from testsupport.bot_crowd import BotCrowd
from testsupport.browser import save_artifact
from testsupport.page_geometry import LAYOUT_PROBLEMS, SETTLED, VIEW_SHARE
from testsupport.web_page import ICE, tile_of

pytestmark = pytest.mark.browser

ROOMS = ICE + '[rooms.lobby]\nmax_peers = 12\n[rooms.solo]\nmax_peers = 1\n[rooms.board]\npassword = "letmein"\n'
WINDOWS = [(1280, 800), (1024, 700), (390, 844)]
BOTS = ["Bob", "Cleo", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy"]
# Counts the times the page starts the camera.
COUNT_CAMERA_STARTS = """
    window.cameraStarts = 0;
    const start = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = (constraints) => { window.cameraStarts += 1; return start(constraints); };
"""


def calm(page, where: str) -> None:
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], f"{where}: {problems}"


def in_every_window(page, where: str) -> None:
    for width, height in WINDOWS:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate(SETTLED)  # the tiles are laid out again on the next frames
        calm(page, f"{where} at {width}x{height}")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.evaluate(SETTLED)


def test_the_join_card_keeps_its_refusals_in_view_and_an_unknown_room_starts_no_camera(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS)
    crowd = BotCrowd(daemon, room="solo")
    try:
        crowd.add("Sol")  # the one-person room is full
        for width, height in WINDOWS:
            where = f"{width}x{height}"
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.add_init_script(COUNT_CAMERA_STARTS)
            page.goto(f"{daemon.url}/room/board?name=Pat")
            expect(page.get_by_label("Room password")).to_be_visible(timeout=10000)
            expect(page.get_by_label("Your camera preview")).to_be_visible(timeout=10000)
            calm(page, f"the join card with its password field at {where}")
            alert = page.get_by_role("alert")
            page.get_by_role("button", name="Join").click()
            expect(alert).to_have_text("This room needs a password.", timeout=10000)
            expect(alert).to_be_in_viewport(ratio=1)
            calm(page, f"'needs a password' at {where}")
            page.get_by_label("Room password").fill("nope")
            page.get_by_role("button", name="Join").click()
            expect(alert).to_have_text("Wrong password. Try again.", timeout=10000)
            expect(alert).to_be_in_viewport(ratio=1)
            calm(page, f"'wrong password' at {where}")
            page.goto(f"{daemon.url}/room/solo?name=Pat&autojoin=1")
            expect(alert).to_have_text("room 'solo' is full (1 people). Try again later, or pick another room.", timeout=10000)
            expect(alert).to_be_in_viewport(ratio=1)
            calm(page, f"'room is full' at {where}")
            page.goto(f"{daemon.url}/room/nowhere?name=Pat")
            expect(alert).to_have_text("There is no room with this name. Check the link, or pick a room from the list.", timeout=10000)
            expect(alert).to_be_in_viewport(ratio=1)
            expect(page.get_by_role("link", name="See the rooms of this server")).to_be_in_viewport(ratio=1)
            expect(page.get_by_role("button", name="Join")).to_have_count(0)
            expect(page.locator("#preview")).to_be_hidden()
            assert page.evaluate("window.cameraStarts") == 0  # nothing to join: the camera stays off
            calm(page, f"'no room with this name' at {where}")
            if width == 390:
                save_artifact(page, "phone-unknown-room.png")
            context.close()
    finally:
        crowd.close()


def test_a_call_of_one_two_four_and_nine_with_a_screen_a_panel_and_leaving_stays_calm(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS, media="workers = 2")
    crowd = BotCrowd(daemon)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{daemon.url}/room/lobby?name=Ann&autojoin=1")
        expect(page.locator("#call")).to_be_visible(timeout=15000)
        # one's own picture as in a mirror; every control an icon with its name, none pressed yet
        assert page.locator("figure[data-endpoint='me'] video").evaluate("v => getComputedStyle(v).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
        assert page.locator(".controls button:visible").evaluate_all("bs => bs.every((b) => b.querySelector('svg.icon'))")
        in_every_window(page, "alone")
        crowd.add("Bob")
        expect(page.locator("figure.tile")).to_have_count(2, timeout=20000)
        in_every_window(page, "two people")
        # tiles are 16:9 and show a 4:3 camera whole (letterboxed, not cropped)
        box = page.locator("figure.tile >> nth=1").bounding_box()
        assert abs(box["width"] / box["height"] - 16 / 9) < 0.05, box
        assert page.locator("figure.tile >> nth=1").locator("video").evaluate("v => getComputedStyle(v).objectFit") == "contain"
        # on a loopback call the quality marks say good: a busy machine's frame rate is no bad network
        expect(page.locator(".quality[data-quality='good']").first).to_be_visible(timeout=15000)
        expect(page.locator(".quality[data-quality='fair'], .quality[data-quality='poor']")).to_have_count(0)
        for name in BOTS[1:3]:
            crowd.add(name)
        expect(page.locator("figure.tile")).to_have_count(4, timeout=20000)
        in_every_window(page, "four people")
        for name in BOTS[3:]:
            crowd.add(name)
        expect(page.locator("figure.tile")).to_have_count(9, timeout=30000)
        in_every_window(page, "nine people")
        for name in BOTS[3:]:
            crowd.remove(name)
        crowd.add("Zed", screens=1)  # a second video: shown on the stage as a screen
        expect(page.locator("#stage figure video")).to_have_count(1, timeout=20000)
        try:
            expect(page.locator("#stage .presenting")).to_have_count(0, timeout=15000)  # its first frame came
        except AssertionError:
            print(page.evaluate("() => [...document.querySelectorAll('#stage figure')].map(f => [f.className, f.dataset.owner, f.querySelector('video')?.readyState, f.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames, f.textContent])"))
            raise
        in_every_window(page, "a shared screen")
        # a touch phone: no pin button on every tile (nothing to hover); a tap on a tile shows its own
        touch = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone = touch.new_page()
        phone.goto(f"{daemon.url}/room/lobby?name=Pia&autojoin=1")
        expect(phone.locator("figure.tile")).to_have_count(6, timeout=20000)
        expect(phone.locator("#stage figure")).to_have_count(1, timeout=20000)
        phone.wait_for_timeout(500)
        expect(phone.locator(".tile .pin:visible")).to_have_count(0)
        calm(phone, "a touch phone with a shared screen")
        phone.locator(tile_of(phone, "Bob")).tap()
        expect(phone.locator(f"{tile_of(phone, 'Bob')} .pin")).to_be_visible()
        expect(phone.locator(".tile .pin:visible")).to_have_count(1)
        calm(phone, "a touch phone, a tile tapped")
        touch.close()
        # one side panel at a time: the chat replaces the people list and the call keeps most of the window
        expect(page.locator("#people-panel")).to_be_hidden()  # closed when the window was a phone's
        page.locator("#people-button").click()
        expect(page.locator("#people-panel")).to_be_visible()
        calm(page, "the people list open at 1280x800")
        page.get_by_role("button", name="Chat", exact=True).click()
        expect(page.locator("#chat-panel")).to_be_visible()
        expect(page.locator("#people-panel")).to_be_hidden()
        expect(page.locator("#chat-button")).to_have_attribute("aria-pressed", "true")
        assert page.evaluate(VIEW_SHARE) > 0.7
        calm(page, "the chat open at 1280x800")
        page.locator("#stats-button").click()
        expect(page.locator("#stats-panel")).to_be_visible()
        expect(page.locator("#chat-panel")).to_be_hidden()
        expect(page.locator("#stats-button")).to_have_attribute("aria-pressed", "true")
        # on a phone a panel covers the call, its close button in reach
        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.locator("#people-panel")).to_be_hidden()
        page.get_by_role("button", name="People", exact=True).click()
        expect(page.locator("#people-panel")).to_be_in_viewport(ratio=1)
        calm(page, "the people list on a phone")
        page.get_by_role("button", name="Close the people list").click()
        expect(page.locator("#people-panel")).to_be_hidden()
        save_artifact(page, "phone-screen-share.png")
        page.set_viewport_size({"width": 1280, "height": 800})
        # a pressed button looks pressed; a shortcut after a click leaves no focus ring behind
        unpressed = page.locator("#mic-button").evaluate("b => getComputedStyle(b).backgroundColor")
        page.locator("#mic-button").click()
        expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
        assert page.locator("#mic-button").evaluate("b => getComputedStyle(b).backgroundColor") != unpressed
        page.keyboard.press("m")
        expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
        assert page.evaluate("() => document.activeElement === document.body")
        # the colours follow the system's scheme
        page.emulate_media(color_scheme="dark")
        dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        page.emulate_media(color_scheme="light")
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != dark
        page.emulate_media(color_scheme="dark")
        in_every_window(page, "the dark scheme")
        # Shift+L asks first; Escape stays, Enter leaves; then a screen says so, with Rejoin
        page.keyboard.press("Shift+L")
        expect(page.get_by_role("dialog", name="Leave the call?")).to_be_visible()
        in_every_window(page, "the question before leaving")
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(page.locator("#call")).to_be_visible()
        page.keyboard.press("Shift+L")
        expect(page.get_by_role("dialog", name="Leave the call?")).to_be_visible()  # Enter answers it, not the page
        # The first question's "close" event is queued: a browser busy enough handles the second Shift+L
        # first, and the late close must not answer the question now on screen (it made Enter do nothing).
        page.evaluate("() => document.getElementById('leave-dialog').dispatchEvent(new Event('close'))")
        page.evaluate("() => { window.camera = document.querySelector(\"figure[data-endpoint='me'] video\").srcObject.getVideoTracks()[0]; }")
        # leaving takes effect at once, whatever the server does: here it is frozen and does not answer the
        # leave (for a few seconds only: after 5 s it would count its media workers as hung)
        daemon.signal(signal.SIGSTOP)
        try:
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="You left the call")).to_be_visible(timeout=3000)
            assert page.evaluate("() => window.camera.readyState") == "ended"
        finally:
            daemon.signal(signal.SIGCONT)
        assert page.evaluate("() => !document.querySelector('#preview').srcObject?.getTracks().some((t) => t.readyState === 'live')")
        in_every_window(page, "after leaving")
        page.get_by_role("button", name="Rejoin").click()
        expect(page.locator("figure.tile")).to_have_count(5, timeout=20000)  # Bob, Cleo, Dan, Zed and oneself
        expect(page.locator("figure[data-endpoint='me'] video")).to_have_js_property("readyState", 4, timeout=10000)
    finally:
        context.close()
        crowd.close()


def test_firefox_keeps_the_join_card_and_a_call_of_one_to_nine_with_a_screen_and_a_panel_calm(browser, start_daemon):
    """The same geometry in Firefox ESR, on 127.0.0.1, through the same states (1, 2, 4 and 9 people,
    a shared screen) in the same windows: the layout needs only the signalling (tiles and the stage
    appear as the others publish; their media would need test hosts, as in test_web_firefox.py)."""
    from test_web_firefox_features import FirefoxPage

    daemon = start_daemon(rooms=ROOMS, media="workers = 2")
    crowd = BotCrowd(daemon)
    fox = FirefoxPage(f"{daemon.url}/room/board?name=Fox", size=(1280, 800))

    def calm_in_every_window(where: str) -> None:
        for width, height in WINDOWS:
            fox.run("viewport", width=width, height=height)
            fox.wait(f"() => innerWidth === {width}")
            fox.eval(SETTLED)
            problems = fox.eval(LAYOUT_PROBLEMS)
            assert problems == [], f"Firefox, {where} at {width}x{height}: {problems}"

    try:
        fox.wait("() => !document.getElementById('password-field').hidden && !document.getElementById('join-button').disabled")
        calm_in_every_window("the join card with its password field")
        fox.run("click", selector="#join-button")
        fox.wait_texts("#join-message", ["This room needs a password."])
        calm_in_every_window("'needs a password'")
        fox.run("goto", url=f"{daemon.url}/room/lobby?name=Fox&autojoin=1")
        fox.wait("() => !document.getElementById('call').hidden")
        calm_in_every_window("alone")
        for count, joining in ((2, BOTS[:1]), (4, BOTS[1:3]), (9, BOTS[3:])):
            for name in joining:
                crowd.add(name)
            fox.wait(f"() => document.querySelectorAll('figure.tile').length === {count}", timeout=30)
            calm_in_every_window(f"{count} people")
        for name in BOTS[3:]:
            crowd.remove(name)
        crowd.add("Zed", screens=1)
        fox.wait("() => document.querySelectorAll('figure.tile').length === 5 && document.querySelectorAll('#stage figure').length === 1", timeout=30)
        calm_in_every_window("five people and a shared screen")
        fox.run("viewport", width=1280, height=800)
        fox.wait("() => innerWidth === 1280")
        fox.run("press", key="c")
        fox.wait("() => !document.getElementById('chat-panel').hidden && document.getElementById('people-panel').hidden")
        assert fox.eval(VIEW_SHARE) > 0.7
        assert fox.eval(LAYOUT_PROBLEMS) == []
        fox.run("press", key="Escape")  # out of the chat's input (typing there is not a shortcut), the panel closed
        fox.wait("() => document.getElementById('chat-panel').hidden")
        fox.run("press", key="Shift+L")
        fox.wait("() => document.getElementById('leave-dialog').open")
        calm_in_every_window("the question before leaving")
        fox.run("press", key="Enter")
        fox.wait("() => !document.getElementById('left').hidden")
        calm_in_every_window("after leaving")
    finally:
        fox.close()
        crowd.close()
