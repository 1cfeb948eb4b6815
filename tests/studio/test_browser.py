"""The review page in a real browser (Debian's chromium driven by Playwright), used with the keyboard only."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.studio.conftest import XSS, Served, serve

L2, L4, T2, L6, L8, L10 = ("extracted:talk-L2", "extracted:talk-L4", "transformed:talk-L2", "extracted:talk-L6",
                           "extracted:talk-L8", "hypothetical:talk-L10:bread")


@pytest.fixture
def studio(dataset):
    background, security = serve(dataset)
    with background as url:
        yield Served(url, url.rstrip("/"), security.token, dataset)


def showing(page, record_id: str, status: str | None = None) -> None:
    selector = f'#record[data-id="{record_id}"]' + (f'[data-status="{status}"]' if status else "")
    page.wait_for_selector(selector, timeout=10000)


def open_queue(page, studio, record_id: str = L2) -> None:
    page.goto(f"{studio.url}?sort=file")  # the records in the order they were built
    showing(page, record_id)


def actions(studio) -> list[tuple[str, str]]:
    return [(d["action"], d["id"]) for d in studio.dataset.decisions()]


def test_review_with_the_keyboard_only_accept_reject_edit_undo(page, studio):
    open_queue(page, studio)
    assert page.locator("#shortcuts").inner_text().count("accept") >= 1  # shortcuts are shown on the page
    page.keyboard.press("a")
    showing(page, L4)
    page.keyboard.press("r")
    page.keyboard.type("cut mid-story")
    page.keyboard.press("Enter")
    showing(page, T2)
    page.keyboard.press("e")
    assert page.evaluate("document.activeElement.id") == "edit-answer"
    page.keyboard.press("Control+A")
    page.keyboard.type("I count every flash when the fog comes in.")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "edit-question"
    page.keyboard.press("Control+A")
    page.keyboard.type("What do you do in fog?")
    page.keyboard.press("Control+Enter")
    showing(page, L6)
    decisions = studio.dataset.decisions()
    assert [(d["action"], d["id"]) for d in decisions] == [("accept", L2), ("reject", L4), ("edit", T2)]
    assert decisions[1]["reason"] == "cut mid-story"
    assert decisions[2]["answer"] == "I count every flash when the fog comes in."
    assert decisions[2]["question"] == "What do you do in fog?"
    # selectors, not wait_for_function: polling a string needs eval, which the page's CSP refuses
    page.wait_for_selector("#progress-table tr.total td:first-of-type:text-is('3 / 6')")
    # undo takes back the edit and shows that record again, undecided
    page.keyboard.press("u")
    showing(page, T2, "undecided")
    assert studio.dataset.decisions()[-1]["action"] == "undo"
    assert "Undid edit" in page.locator("#notice").inner_text()
    page.keyboard.press("k")
    showing(page, L4, "rejected")
    assert "cut mid-story" in page.locator("#decision-reason").inner_text()
    page.keyboard.press("ArrowRight")
    showing(page, T2)
    page.keyboard.press("f")
    showing(page, L6)
    page.keyboard.press("n")  # next still to do: L8 (L6 is undecided too, so it is L8 after L6)
    showing(page, L8)
    assert actions(studio)[-1] == ("flag", T2)


def test_a_reload_keeps_the_decisions_the_position_and_the_undo(page, studio):
    open_queue(page, studio)
    page.keyboard.press("a")
    showing(page, L4)
    page.keyboard.press("e")
    page.keyboard.press("Control+A")
    page.keyboard.type("Storms come sideways.")
    page.keyboard.press("Control+Enter")
    showing(page, T2)
    page.reload()
    showing(page, T2)
    page.keyboard.press("k")
    showing(page, L4, "edited")
    assert page.locator("#answer").inner_text() == "Storms come sideways."
    page.wait_for_selector("#progress-table tr.total td:first-of-type:text-is('2 / 6')")
    page.keyboard.press("u")  # the tab's own last decision, remembered across the reload
    showing(page, L4, "undecided")
    assert actions(studio)[-1] == ("undo", L4)


def test_record_text_with_markup_shows_as_text(page, studio):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{studio.url}?sort=file#{quote(L8, safe='')}")
    showing(page, L8)
    assert page.locator("#answer").inner_text() == XSS
    answer_turn = page.locator(".turn.role-answer mark")
    assert answer_turn.first.inner_text() in XSS
    assert page.locator("#record script, #record img").count() == 0
    page.keyboard.press("e")
    page.keyboard.press("Control+A")
    page.keyboard.type('<img src=y onerror="window.__xss = 2"> edited')
    page.keyboard.press("Control+Enter")
    showing(page, L10)
    page.keyboard.press("k")
    showing(page, L8, "edited")
    assert page.locator("#answer").inner_text() == '<img src=y onerror="window.__xss = 2"> edited'
    assert page.locator("#record img, #record script").count() == 0
    assert page.evaluate("window.__xss") is None and dialogs == []


def test_emptying_the_answer_is_refused_with_a_clear_message(page, studio):
    open_queue(page, studio)
    page.keyboard.press("e")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#notice.error")
    assert "answer cannot be empty" in page.locator("#notice").inner_text()
    assert page.locator("#edit-answer").count() == 1  # still editing
    page.keyboard.press("Escape")
    showing(page, L2, "undecided")
    assert studio.dataset.decisions() == []


def test_two_tabs_on_one_record_both_kept_later_wins_and_the_page_shows_the_change(browser, studio):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        first, second = context.new_page(), context.new_page()
        open_queue(first, studio)
        open_queue(second, studio)
        second.keyboard.press("r")
        second.keyboard.press("Enter")
        showing(second, L4)
        # the first tab notices within a poll and shows that the record changed under it
        first.wait_for_selector("#changed-banner:not([hidden])", timeout=10000)
        assert "rejected" in first.locator("#changed-banner").inner_text()
        showing(first, L2, "rejected")
        first.bring_to_front()
        first.keyboard.press("a")
        showing(first, L4)
        assert actions(studio) == [("reject", L2), ("accept", L2)]
        second.keyboard.press("k")
        showing(second, L2, "accepted")
    finally:
        context.close()


def test_filters_and_the_stale_link(page, studio):
    page.goto(f"{studio.url}?persona=Ben%20Ortiz&type=extracted&sort=file")
    showing(page, L6)
    assert "record 1 of 2" in page.locator("#position").inner_text()
    page.keyboard.press("j")
    showing(page, L8)
    page.keyboard.press("j")
    page.wait_for_selector("#notice:has-text('End of the queue')")
    assert page.locator("#stale-count").inner_text() == "0"
