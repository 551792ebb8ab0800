"""The connectivity check page (/check), in Chromium, against a daemon with its TURN server on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from testsupport.daemon import free_port
from testsupport.web_page import ICE, browser, playwright  # noqa: F401 (fixtures)

@pytest.mark.browser
def test_the_check_page_says_udp_turn_udp_and_turn_tcp_work(browser, start_daemon):
    turn_port = free_port()
    turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    daemon = start_daemon(rooms=turn + ICE + "[rooms.lobby]\n")
    page = browser.new_context().new_page()
    page.goto(f"{daemon.url}/check")
    expect(page.locator("#check-summary[data-done='1']")).to_be_visible(timeout=30000)
    for item in ("udp", "turn-udp", "turn-tcp"):
        expect(page.locator(f"#check-{item}")).to_have_attribute("data-state", "works")
    expect(page.locator("#check-udp")).to_contain_text("Direct UDP: Works")
    expect(page.locator("#check-turn-tcp")).to_contain_text("TURN over TCP: Works")
    expect(page.locator("#check-turn-tls")).to_have_text("TURN over TLS: Not tried: this server does not offer it.")
    expect(page.locator("#check-summary")).to_have_text("Done: 3 of 3 ways work. Calls will use the best one that works.")


@pytest.mark.browser
def test_without_turn_the_check_says_what_was_not_tried_and_raises_no_alarm(browser, start_daemon):
    daemon = start_daemon(rooms=ICE + "[rooms.lobby]\n")
    page = browser.new_context().new_page()
    page.goto(f"{daemon.url}/check")
    expect(page.locator("#check-summary[data-done='1']")).to_be_visible(timeout=30000)
    expect(page.locator("#check-results li[data-state='fails']")).to_have_count(0)
    expect(page.locator("#check-udp")).to_contain_text("Not tried here: this test asks the server's TURN server, which is not running")
    expect(page.locator("#check-summary")).to_contain_text("Nothing could be tried from this page: the server runs no TURN server.")
    expect(page.locator("#check-summary")).not_to_contain_text("cannot reach")
    page.context.close()


def test_check_credentials_are_rate_limited_per_address(start_daemon):
    turn_port = free_port()
    daemon = start_daemon(rooms=f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n' + ICE + "[rooms.lobby]\n")
    with urllib.request.urlopen(f"{daemon.url}/api/check", timeout=5) as response:
        offered = json.load(response)
    assert offered["stun"] == f"stun:127.0.0.1:{turn_port}"
    assert [s["urls"] for s in offered["turn"]] == [f"turn:127.0.0.1:{turn_port}?transport=udp",
                                                   f"turn:127.0.0.1:{turn_port}?transport=tcp"]
    assert offered["turn"][0]["username"].split(":", 1)[1].startswith("check-")
    statuses = []
    for _ in range(8):
        try:
            with urllib.request.urlopen(f"{daemon.url}/api/check", timeout=5) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            assert "too many connectivity checks from 127.0.0.1" in error.read().decode()
    assert 429 in statuses
    with urllib.request.urlopen(f"{daemon.url}/healthz", timeout=5) as response:  # the daemon still answers
        assert response.status == 200
