"""The join screen in headless Chromium: the camera preview, the microphone level, device pickers,
the remembered name, joining muted or with the camera off, and the room's link to copy."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from testsupport.browser import frames, save_artifact
from testsupport.web_page import ICE, module_daemon, participant, rooms_of, tile_of, wait_for_moving_video

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room of its own.
daemon = module_daemon(ICE + rooms_of("preview", "phone", "devices"))


def loudest(page, seconds: float = 4.0) -> float:
    """The highest reading of the microphone level meter over ``seconds``."""
    return page.evaluate(
        """(ms) => new Promise((done) => {
            let top = 0;
            const timer = setInterval(() => { top = Math.max(top, document.getElementById('mic-level').value); }, 50);
            setTimeout(() => { clearInterval(timer); done(top); }, ms);
        })""", seconds * 1000)


def test_join_screen_previews_and_joins_muted_with_the_camera_off(browser, daemon):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=daemon.url)
    ann = context.new_page()
    ann.goto(f"{daemon.url}/room/preview")
    # the name typed once is there on the next visit
    ann.locator("#join").get_by_label("Your name").fill("Ann")
    ann.reload()
    expect(ann.locator("#join").get_by_label("Your name")).to_have_value("Ann")
    # the camera preview moves; the (fake, beeping) microphone moves the meter
    expect(ann.get_by_label("Your camera preview")).to_be_visible(timeout=10000)
    first = frames(ann, ".preview-box")
    ann.wait_for_timeout(1000)
    assert frames(ann, ".preview-box") > first
    expect(ann.get_by_role("meter", name="Microphone level")).to_be_visible()
    assert loudest(ann) > 0.02
    expect(ann.locator("#join").get_by_role("combobox", name="Camera").locator("option")).to_have_text(["fake_device_0"])
    expect(ann.locator("#join").get_by_role("combobox", name="Microphone").locator("option")).not_to_have_count(0)
    # the link to send to others: the room's address, without Ann's name
    ann.get_by_role("button", name="Copy link").click()
    expect(ann.locator("#notice")).to_have_text(f"Link copied: {daemon.url}/room/preview")
    assert ann.evaluate("() => navigator.clipboard.readText()") == f"{daemon.url}/room/preview"
    # muted: the meter falls silent; camera off: the preview says so
    ann.get_by_label("Join with the microphone muted").check()
    ann.get_by_label("Join with the camera off").check()
    # (the meter shows what the microphone gave a moment ago; once it has fallen, it stays down)
    ann.wait_for_function("() => document.getElementById('mic-level').value === 0", timeout=5000)
    assert loudest(ann, 1.5) == 0
    expect(ann.locator("#preview-off")).to_have_text("Camera off")
    save_artifact(ann, "join-screen.png")
    ann.get_by_role("button", name="Join").click()
    expect(ann.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true", timeout=10000)
    expect(ann.get_by_role("button", name="Camera on")).to_have_attribute("aria-pressed", "true")
    # the others see it from the start, and see it change
    bob = participant(browser, daemon, "Bob", room="preview")
    expect(bob.locator(f"{tile_of(bob, 'Ann')} .badge")).to_have_text(["Muted", "Camera off"], timeout=15000)
    ann.keyboard.press("m")
    ann.keyboard.press("v")
    expect(bob.locator(f"{tile_of(bob, 'Ann')} .badge")).to_have_count(0, timeout=10000)
    wait_for_moving_video(bob, "Ann")
    context.close()
    bob.context.close()


def test_a_phone_sized_join_screen_keeps_join_in_reach(browser, daemon):
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{daemon.url}/room/phone?name=Pat")
    expect(page.get_by_label("Your camera preview")).to_be_visible(timeout=10000)
    page.get_by_role("button", name="Join").scroll_into_view_if_needed()
    expect(page.get_by_role("button", name="Join")).to_be_in_viewport()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the join screen is {width}px wide: it scrolls sideways on a phone"
    save_artifact(page, "join-screen-phone.png")
    page.context.close()


def test_devices_picked_before_joining_are_the_ones_the_others_get(chromiums, browser, daemon):
    # Chromium's second fake camera delivers depth frames it does not encode; the third is an ordinary one.
    with chromiums.lend(devices=3) as three_devices:  # the session's, shared with the other three-camera test
        page = three_devices.new_page()
        page.goto(f"{daemon.url}/room/devices?name=Ann&muted=1&camera=off")
        expect(page.get_by_label("Join with the microphone muted")).to_be_checked()  # from the link
        expect(page.get_by_label("Join with the camera off")).to_be_checked()
        page.get_by_label("Join with the camera off").uncheck()
        camera = page.locator("#join").get_by_role("combobox", name="Camera")
        expect(camera).to_be_enabled(timeout=10000)
        camera.select_option(label="fake_device_2")
        microphone = page.locator("#join").get_by_role("combobox", name="Microphone")
        expect(microphone).to_be_enabled()
        microphone.select_option(index=1)
        expect(page.locator("#preview")).to_have_js_property("paused", False)
        label = "v => v.srcObject.getVideoTracks()[0].label"
        page.wait_for_function(f"() => ({label})(document.getElementById('preview')) === 'fake_device_2'", timeout=10000)
        mic = microphone.input_value()  # the preview takes the picked microphone a moment later
        page.wait_for_function("(mic) => document.getElementById('preview').srcObject.getAudioTracks()[0]"
                               ".getSettings().deviceId === mic", arg=mic, timeout=10000)
        page.get_by_role("button", name="Join").click()
        expect(page.get_by_role("button", name="Unmute")).to_be_visible(timeout=10000)
        # the call sends what was picked, and the in-call pickers say so
        expect(page.locator("#call").get_by_role("combobox", name="Camera")).to_have_value(
            page.evaluate("() => document.getElementById('preview').srcObject.getVideoTracks()[0].getSettings().deviceId"))
        expect(page.locator("#call").get_by_role("combobox", name="Microphone")).to_have_value(mic)
        bob = participant(browser, daemon, "Bob", room="devices")
        wait_for_moving_video(bob, "Ann")
        expect(bob.locator(f"{tile_of(bob, 'Ann')} .badge")).to_have_text(["Muted"], timeout=10000)
        bob.context.close()
