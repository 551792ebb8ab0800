"""The daemon's own page in headless Chromium: people join, see and hear each other, and are told what is wrong."""

from __future__ import annotations

import re
import signal
import time

import pytest
from playwright.sync_api import expect

from testsupport.browser import launch, save_artifact
from testsupport.web_page import (KEEP_PEER_CONNECTIONS, ROOMS, module_daemon, participant,
                                  rooms_of, tile_of, wait_for_moving_video)

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room of its own (the list's lobby, solo and board, and these).
daemon = module_daemon(ROOMS + rooms_of("two", "three", "denied", "dropped", "left-while-away", "rejoin", "phone", "cameras"))


def test_room_list_shows_rooms_and_links_with_the_name(browser, daemon):
    page = browser.new_page()
    page.goto(daemon.url + "/")
    expect(page.get_by_role("heading", name="Pick a room")).to_be_visible()
    page.locator("#lobby").get_by_label("Your name").fill("Ada")
    link = page.get_by_role("link", name=re.compile("^lobby: 0 of 8 people"))
    expect(link).to_have_attribute("href", "/room/lobby?name=Ada")
    expect(page.get_by_role("link", name=re.compile("^board: .*needs a password"))).to_be_visible()
    page.close()


def test_two_people_see_each_other_and_leaving_removes_the_tile(browser, daemon):
    ann = participant(browser, daemon, "Ann", room="two")
    bob = participant(browser, daemon, "Bob", room="two")
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(bob, "Ann")
    expect(ann.locator("#participants li")).to_have_text(["Ann (you)", "Bob"])
    bob.get_by_role("button", name="Leave").click()
    expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(0, timeout=10000)
    expect(ann.locator("#people-count")).to_have_text("1")
    ann.context.close()
    bob.context.close()


def test_three_people_call_muting_and_speaking(browser, daemon):
    pages = {name: participant(browser, daemon, name, room="three") for name in ("Ann", "Bob", "Cleo")}
    for name, page in pages.items():
        for other in pages:
            if other != name:
                wait_for_moving_video(page, other)
    ann, bob, cleo = pages["Ann"], pages["Bob"], pages["Cleo"]
    # Chromium's fake microphone beeps: the others see who is speaking
    expect(ann.locator(f"{tile_of(ann, 'Bob')}.speaking")).to_have_count(1, timeout=15000)
    # mute shows on the other side
    bob.get_by_role("button", name="Mute").click()
    expect(bob.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator(f"{tile_of(ann, 'Bob')} .badge")).to_have_text("Muted", timeout=10000)
    save_artifact(ann, "three-person-call.png")  # docs/three-person-call.png is a copy of one
    cleo.keyboard.press("v")  # the camera goes off from the keyboard
    expect(ann.locator(f"{tile_of(ann, 'Cleo')} .badge")).to_have_text("Camera off", timeout=10000)
    cleo.keyboard.press("v")
    expect(ann.locator(f"{tile_of(ann, 'Cleo')} .badge")).to_have_count(0, timeout=10000)
    for page in pages.values():
        page.context.close()


def test_full_room_says_so(browser, daemon):
    first = participant(browser, daemon, "First", room="solo")
    expect(first.locator("#call")).to_be_visible(timeout=10000)
    second = participant(browser, daemon, "Second", room="solo")
    expect(second.get_by_role("alert")).to_have_text(
        "room 'solo' is full (1 people). Try again later, or pick another room.", timeout=10000)
    first.context.close()
    second.context.close()


def test_wrong_password_asks_again_and_the_right_one_lets_in(browser, daemon):
    page = participant(browser, daemon, "Pat", room="board", extra="&password=nope")
    expect(page.get_by_role("alert")).to_have_text("Wrong password. Try again.", timeout=10000)
    page.get_by_label("Room password").fill("letmein")
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#call")).to_be_visible(timeout=10000)
    page.context.close()


def test_unknown_room_says_so(browser, daemon):
    page = participant(browser, daemon, "Lost", room="nowhere")
    expect(page.get_by_role("alert")).to_have_text(
        "There is no room with this name. Check the link, or pick a room from the list.", timeout=10000)
    page.context.close()


def test_denied_camera_is_explained_and_the_call_still_works(playwright, browser, daemon):
    denying = launch(playwright, deny_media=True)
    try:
        watcher = participant(denying, daemon, "Watcher", room="denied")
        expect(watcher.locator("#notice")).to_contain_text("Camera and microphone access was denied", timeout=10000)
        expect(watcher.locator("figure[data-endpoint='me'] .badge")).to_have_text("Camera off")
        host = participant(browser, daemon, "Host", room="denied")
        wait_for_moving_video(watcher, "Host")
        host.context.close()
    finally:
        denying.close()


def test_a_participant_comes_back_after_the_server_restarts(browser, start_daemon):
    first = start_daemon(rooms=ROOMS, server="drain_timeout = 0")
    ann = participant(browser, first, "Ann")
    bob = participant(browser, first, "Bob")
    wait_for_moving_video(ann, "Bob")
    first.signal(signal.SIGTERM)
    first.proc.wait(timeout=15)
    expect(ann.locator("#notice")).to_contain_text("reconnecting", timeout=10000)
    start_daemon(rooms=ROOMS, port=first.port, name="again.toml")
    wait_for_moving_video(ann, "Bob", timeout=40)
    wait_for_moving_video(bob, "Ann", timeout=40)
    ann.context.close()
    bob.context.close()


def cut_off(browser, daemon, proxy, room: str):
    """Ann in ``room``, and Bob through ``proxy`` (his only way to the daemon's port); once they see
    each other, Bob's network is cut: his page says it reconnects and Ann sees him go. Returns
    (ann, bob)."""
    ann = participant(browser, daemon, "Ann", room=room)
    bob = browser.new_context().new_page()
    bob.goto(f"http://127.0.0.1:{proxy.port}/room/{room}?name=Bob&autojoin=1")
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(bob, "Ann")
    proxy.cut()
    expect(bob.locator("#notice")).to_contain_text("reconnecting", timeout=10000)
    expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(0, timeout=10000)
    return ann, bob


def test_a_participant_whose_network_drops_comes_back(browser, daemon):
    from testsupport.tcp_proxy import CuttableProxy

    proxy = CuttableProxy(daemon.port)
    try:
        ann, bob = cut_off(browser, daemon, proxy, "dropped")
        bob.wait_for_timeout(2000)
        proxy.restore()
        wait_for_moving_video(ann, "Bob", timeout=40)  # and come back
        wait_for_moving_video(bob, "Ann", timeout=40)
        expect(bob.locator("#notice")).to_contain_text("Reconnected")
        ann.context.close()
        bob.context.close()
    finally:
        proxy.close()


def test_leaving_while_the_page_reconnects_stays_left_and_rejoin_joins_once(browser, daemon):
    """Leave pressed while the page waits to reconnect: when the network is back the page does not
    join again behind the "You left the call" screen, and Rejoin then joins once."""
    from testsupport.tcp_proxy import CuttableProxy

    proxy = CuttableProxy(daemon.port)
    try:
        ann, bob = cut_off(browser, daemon, proxy, "left-while-away")
        bob.locator("#leave-button").click()
        expect(bob.get_by_role("heading", name="You left the call")).to_be_visible(timeout=3000)
        before = len(daemon.log())

        def joins() -> int:
            return sum('"peer joined"' in line and '"left-while-away"' in line for line in daemon.log()[before:].splitlines())

        proxy.restore()
        bob.wait_for_timeout(4000)  # past the reconnect's next tries (1 s, then 2 s)
        assert joins() == 0, daemon.log()[before:]
        expect(bob.locator("#notice")).not_to_contain_text("Reconnected")
        expect(bob.get_by_role("heading", name="You left the call")).to_be_visible()
        bob.get_by_role("button", name="Rejoin").click()
        wait_for_moving_video(ann, "Bob", timeout=30)
        bob.wait_for_timeout(3000)  # a second join, had the old reconnect gone on, would be in by now
        assert joins() == 1, daemon.log()[before:]
        expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(1)
        ann.context.close()
        bob.context.close()
    finally:
        proxy.close()


def test_a_participant_whose_media_connection_ends_rejoins_by_itself(browser, daemon):
    earlier = len(daemon.log())  # what the daemon said before this test
    ann = participant(browser, daemon, "Ann", room="rejoin")
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    # So the test can end its media path (as a network change would) while its signalling socket stays up.
    context.add_init_script(KEEP_PEER_CONNECTIONS)
    bob = context.new_page()
    bob.goto(f"{daemon.url}/room/rejoin?name=Bob&autojoin=1")
    wait_for_moving_video(ann, "Bob")
    bob.evaluate("() => window.peerConnections.forEach((pc) => pc.close())")
    # The server removes Bob (the others see him go) and tells his page that joining
    # again may work; the page does so with a new connection, and the call goes on.
    expect(ann.locator(tile_of(ann, "Bob"))).to_have_count(0, timeout=30000)
    wait_for_moving_video(ann, "Bob", timeout=40)
    wait_for_moving_video(bob, "Ann", timeout=40)
    assert "media connection" in daemon.log()[earlier:]
    ann.context.close()
    context.close()


def test_phone_sized_screen_keeps_every_control_reachable(browser, daemon):
    phone = participant(browser, daemon, "Phone", room="phone", viewport={"width": 390, "height": 844})
    other = participant(browser, daemon, "Desk", room="phone")
    wait_for_moving_video(phone, "Desk")
    for name in ("Mute", "Camera off", "Leave"):
        button = phone.get_by_role("button", name=name)
        expect(button).to_be_in_viewport()
    save_artifact(phone, "phone.png")
    phone.context.close()
    other.context.close()


def test_switching_camera_keeps_the_call_going(chromiums, browser, daemon):
    # Chromium's second fake camera delivers depth (Y16) frames that it does not encode;
    # the third is an ordinary colour camera.
    with chromiums.lend(devices=3) as three_cameras:  # the session's, shared with the other three-camera test
        ann = participant(three_cameras, daemon, "Ann", room="cameras")
        bob = participant(browser, daemon, "Bob", room="cameras")
        wait_for_moving_video(bob, "Ann")
        camera = ann.get_by_role("combobox", name="Camera")
        expect(camera).to_be_enabled()
        expect(camera.locator("option")).to_have_text(["fake_device_0", "fake_device_1", "fake_device_2"])
        camera.select_option(label="fake_device_2")
        deadline = time.monotonic() + 10
        while ann.eval_on_selector("figure[data-endpoint='me'] video", "v => v.srcObject.getVideoTracks()[0].label") != "fake_device_2":
            assert time.monotonic() < deadline, "the preview never showed the other camera"
            ann.wait_for_timeout(100)
        wait_for_moving_video(bob, "Ann")  # Bob still sees Ann, now from the other camera
        bob.context.close()


def test_a_call_over_https(browser, start_daemon, tmp_path):
    from videoroomd.certs.generate import generate

    generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn="localhost", days=1)
    secure = start_daemon(rooms=ROOMS, server=f'tls_cert = "{tmp_path}/tls.crt"\ntls_key = "{tmp_path}/tls.key"', wait=False)
    pages = []
    for name in ("Ann", "Bob"):
        # the certificate is self-signed: the person accepts it once, as here
        page = browser.new_context(ignore_https_errors=True).new_page()
        deadline = time.monotonic() + 20
        while True:
            try:
                page.goto(f"https://localhost:{secure.port}/room/lobby?name={name}&autojoin=1")
                break
            except Exception:
                assert time.monotonic() < deadline, secure.log()
                page.wait_for_timeout(200)
        pages.append(page)
    wait_for_moving_video(pages[0], "Bob")
    wait_for_moving_video(pages[1], "Ann")
    assert pages[0].evaluate("() => location.protocol") == "https:"
    for page in pages:
        page.context.close()
