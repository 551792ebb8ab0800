"""The page's chat in headless Chromium: people write to each other, late joiners catch up, nothing typed runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from testsupport.browser import save_artifact
from testsupport.web_page import ICE, module_daemon, participant, rooms_of, wait_for_moving_video

pytestmark = pytest.mark.browser

# One daemon for the module; each test has a room (and so a chat history) of its own.
daemon = module_daemon(ICE + rooms_of("history", "markup", "too-fast", "phone"))


def in_call(browser, daemon, name: str, camera: bool = False, **kwargs):
    """``name`` in the call; with the camera off unless ``camera`` (chat needs no video, and every camera
    is an encoder running beside the others on the test machine)."""
    page = participant(browser, daemon, name, extra="" if camera else "&camera=off", **kwargs)
    expect(page.locator("#call")).to_be_visible(timeout=15000)
    return page


def say(page, text: str) -> None:
    page.get_by_label("Message to everyone in the room").fill(text)
    page.get_by_label("Message to everyone in the room").press("Enter")


def messages(page):
    return page.locator("#chat-messages .chat-text")


def test_three_people_chat_and_a_late_joiner_sees_the_history(browser, daemon):
    ann, bob, cleo = (in_call(browser, daemon, name, room="history", camera=name == "Bob") for name in ("Ann", "Bob", "Cleo"))
    ann.get_by_role("button", name="Chat").click()
    expect(ann.get_by_label("Message to everyone in the room")).to_be_focused()
    say(ann, "hello from Ann")
    expect(ann.get_by_label("Message to everyone in the room")).to_have_value("")
    # Bob and Cleo have the panel closed: the Chat button counts what they have not read
    for page in (bob, cleo):
        expect(page.get_by_role("button", name="Chat, 1 unread")).to_be_visible(timeout=10000)
        expect(page.locator("#chat-unread")).to_have_text("1")
    bob.get_by_role("button", name="Chat, 1 unread").click()
    expect(messages(bob)).to_have_text(["hello from Ann"])
    expect(bob.locator("#chat-messages .chat-name")).to_have_text(["Ann"])
    expect(bob.locator("#chat-unread")).to_be_hidden()
    bob.get_by_label("Message to everyone in the room").fill("hi Ann,\nBob here")
    bob.get_by_role("button", name="Send").click()
    expect(messages(ann)).to_have_text(["hello from Ann", "hi Ann,\nBob here"], timeout=10000)
    expect(ann.locator("#chat-messages .chat-name")).to_have_text(["Ann (you)", "Bob"])
    expect(cleo.locator("#chat-unread")).to_have_text("2")
    # someone who joins later reads what was said, and it is not counted as unread
    dan = in_call(browser, daemon, "Dan", room="history")
    expect(dan.locator("#chat-unread")).to_be_hidden()
    dan.get_by_role("button", name="Chat").click()
    expect(messages(dan)).to_have_text(["hello from Ann", "hi Ann,\nBob here"], timeout=10000)
    first_time = dan.locator("#chat-messages time").first
    expect(first_time).to_have_text(re.compile(r"^\d{1,2}:\d{2}"))  # local time, hours and minutes
    expect(first_time).to_have_attribute("datetime", re.compile(r"Z$"))
    wait_for_moving_video(ann, "Bob")
    save_artifact(ann, "chat.png")
    # Escape closes the panel and gives the focus back to the Chat button
    ann.get_by_label("Message to everyone in the room").press("Escape")
    expect(ann.locator("#chat-panel")).to_be_hidden()
    expect(ann.get_by_role("button", name="Chat")).to_be_focused()
    for page in (ann, bob, cleo, dan):
        page.context.close()


def test_markup_in_a_message_is_shown_as_text(browser, daemon):
    ann, bob = in_call(browser, daemon, "Ann", room="markup"), in_call(browser, daemon, "Bob", room="markup")
    hostile = "<b>hi</b><img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>"
    ann.get_by_role("button", name="Chat").click()
    say(ann, hostile)
    bob.get_by_role("button", name="Chat").click()
    expect(messages(bob)).to_have_text([hostile], timeout=10000)
    assert bob.locator("#chat-messages img, #chat-messages b, #chat-messages script").count() == 0
    assert bob.evaluate("() => window.pwned") is None
    ann.context.close()
    bob.context.close()


# Which came of the message just sent: "refused" (the error shows) or "sent" (one more than ``went`` is listed).
SENT_OR_REFUSED = """(went) => !document.getElementById("chat-error").hidden ? "refused"
    : document.querySelectorAll("#chat-messages .chat-text").length > went && "sent" """


def test_sending_too_fast_says_how_long_to_wait(browser, daemon):
    ann, bob = in_call(browser, daemon, "Ann", room="too-fast"), in_call(browser, daemon, "Bob", room="too-fast")
    ann.get_by_role("button", name="Chat").click()
    went = 0
    for n in range(8):  # 5 in a row are allowed, then one every 2 s: a slow machine may earn one while they go
        say(ann, f"message {n}")
        outcome = ann.wait_for_function(SENT_OR_REFUSED, arg=went, timeout=10000).json_value()
        if outcome == "refused":
            break
        went += 1
    assert outcome == "refused" and went >= 5, (outcome, went)
    expect(messages(ann)).to_have_count(went)
    # it says how long to wait: 2 s, or 1 s when part of the next one has come back already
    alert = ann.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^Not sent: you are sending messages too fast; wait [12] s\.$"))
    wait = int(re.search(r"wait (\d) s", alert.text_content()).group(1))
    # the text is given back to send again, and the others never saw it
    expect(ann.get_by_label("Message to everyone in the room")).to_have_value(f"message {n}")
    expect(bob.locator("#chat-unread")).to_have_text(str(went))
    # after the wait it says, it goes (the others get it and nothing else: the refused one never came)
    ann.wait_for_timeout(wait * 1000 + 100)
    ann.get_by_label("Message to everyone in the room").press("Enter")
    expect(bob.locator("#chat-unread")).to_have_text(str(went + 1), timeout=10000)
    expect(ann.get_by_role("alert")).to_be_hidden()
    bob.get_by_role("button", name="Chat").click()
    expect(messages(bob)).to_have_text([f"message {i}" for i in range(went)] + [f"message {n}"])
    ann.context.close()
    bob.context.close()


def test_on_a_phone_the_chat_covers_the_call_and_closes(browser, daemon):
    phone = in_call(browser, daemon, "Phone", room="phone", viewport={"width": 390, "height": 844})
    phone.get_by_role("button", name="Chat").click()
    send = phone.get_by_role("button", name="Send")
    expect(send).to_be_in_viewport()
    say(phone, "typed on a phone")
    expect(messages(phone)).to_have_text(["typed on a phone"], timeout=10000)
    box = phone.locator("#chat-panel").bounding_box()
    assert box["width"] == 390 and box["height"] == 844
    save_artifact(phone, "chat-phone.png")
    phone.get_by_role("button", name="Close the chat").click()
    expect(phone.get_by_role("button", name="Leave")).to_be_in_viewport()
    phone.context.close()
