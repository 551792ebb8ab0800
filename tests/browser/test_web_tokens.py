"""The page with an access token: /room/NAME?token=… joins a token room, shows the token's name,
and takes the token out of the address bar; the daemon's log never holds it."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from testsupport.web_page import ICE, participant, tile_of, wait_for_moving_video  # noqa: F401 (fixtures)
from videoroomd.auth.tokens import mint

pytestmark = pytest.mark.browser

SECRET = "p" * 40
ROOMS = ICE + f'[auth]\nkeys = {{ app = "{SECRET}" }}\n[rooms.class]\naccess = "token"\n'


def token(identity: str, name: str, room: str = "class") -> str:
    return mint("app", SECRET, room=room, identity=identity, name=name, now=time.time(), ttl=600)


def test_the_page_joins_a_token_room_with_the_token_and_hides_it(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS, media="workers = 1")
    ann_token, bob_token = token("ann", "Ann"), token("bob", "Bob")
    ann = browser.new_context(viewport={"width": 1000, "height": 700}).new_page()
    ann.goto(f"{daemon.url}/room/class?token={ann_token}&autojoin=1")
    expect(ann.locator("#call")).to_be_visible(timeout=15000)
    assert "token" not in ann.url and ann.url.endswith("/room/class?autojoin=1"), ann.url
    bob = participant(browser, daemon, "Typed", "class", f"&token={bob_token}")
    wait_for_moving_video(ann, "Bob")  # the token's name, not the one typed
    wait_for_moving_video(bob, "Ann")
    assert "token" not in bob.url
    # A wrong room's token is refused, and the page says why.
    eve = browser.new_context().new_page()
    eve.goto(f"{daemon.url}/room/class?token={token('eve', 'Eve', room='lobby')}&autojoin=1")
    expect(eve.locator("#join-message")).to_contain_text("not for room 'class'", timeout=15000)
    for page in (ann, bob, eve):
        page.context.close()
    log = daemon.log()
    assert ann_token.split(".")[2] not in log and bob_token.split(".")[2] not in log and SECRET not in log
