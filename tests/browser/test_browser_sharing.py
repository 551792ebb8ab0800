"""The browser phase's shared Chromium: what one test opens in it is gone before the next, and a
Chromium that went away (crashed, or closed by a test) is launched again for the next test
instead of failing it."""

from __future__ import annotations


def test_a_lent_chromium_loses_the_tests_contexts_and_is_launched_again_once_gone(chromiums):
    with chromiums.lend() as browser:
        before = list(browser.contexts)
        page = browser.new_context().new_page()
        page.set_content("<title>left open</title>")
        browser.new_page()  # a page in a context of its own
        assert len(browser.contexts) == len(before) + 2
    assert browser.is_connected()
    assert browser.contexts == before  # nothing the test opened reaches the next one
    assert page.is_closed()

    browser.close()  # gone, as a crashed Chromium is: no longer connected
    with chromiums.lend() as again:
        assert again is not browser and again.is_connected()
        page = again.new_page()
        page.set_content("<title>still here</title>")
        assert page.title() == "still here"
    assert chromiums.get() is again  # kept for the tests after this one
