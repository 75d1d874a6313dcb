"""The staff workflow in real Chromium against the real product (Rasa server + clinic app):

an editor signs in, edits an article with the live Markdown preview and submits it; a clinician signs in,
reviews the diff and the safety gate, signs off and publishes; the public chat API then answers with the
new text. Screenshots of the editor and the review diff go to results/screenshots/. The clinician finally
rolls the article back in one click, so the shared product is left as it was.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.conftest import AXE
from tests.patient import Patient
from tests.staff_users import PASSWORD, staff_token

pytestmark = pytest.mark.e2e

ARTICLE = "makeup-after-treatment"
MARKER = "Mineral powder is the kindest choice once the clinic says your skin is ready."
QUESTION = "can I wear makeup after microneedling?"


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core in the page, loaded as a same-origin script so the admin's strict CSP stays on."""
    url = page.url.split("/admin")[0] + "/admin/static/axe-for-tests.js"
    page.route(url, lambda route: route.fulfill(body=AXE.read_text(), content_type="text/javascript"))
    page.add_script_tag(url=url)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


def sign_in(page, product, username: str) -> None:
    page.goto(f"{product.url}/admin/kb")
    assert "/admin/login" in page.url, "staff pages need a signed-in user"
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{product.url}/admin/kb")


def chat_answer(product) -> str:
    reply = Patient(httpx.Client(base_url=product.url, timeout=30)).says(QUESTION)
    return " ".join(message["text"] for message in reply["messages"] if message["kind"] == "answer")


def answers_with(product, text: str, present: bool, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while (text in chat_answer(product)) != present:
        assert time.monotonic() - started < timeout, (
            f"the chat API did not {'start' if present else 'stop'} quoting it"
        )
        time.sleep(0.2)
    return time.monotonic() - started


def test_an_edit_goes_from_editor_to_clinician_to_the_chat(product, browser, screenshots) -> None:
    staff_token(product, "editor", "browser-editor")
    staff_token(product, "clinician", "browser-clinician")
    assert MARKER not in chat_answer(product)
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    # The editor finds the article, edits it (the preview follows the typing) and submits it.
    sign_in(page, product, "browser-editor")
    page.get_by_label("Search").fill("makeup")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="Wearing makeup after microneedling").click()
    page.get_by_role("link", name="Edit").click()
    body = page.get_by_label("Text (Markdown")
    opening, rest = body.input_value().split("\n\n", 1)
    body.fill(f"{opening} {MARKER}\n\n{rest}")
    page.get_by_label("What changed").fill("mineral powder advice")
    page.locator("#preview").get_by_text("Mineral powder is the kindest").wait_for()
    assert not axe_violations(page), "the editor is accessible"
    page.screenshot(path=str(screenshots / "staff-editor.png"), full_page=True)
    page.get_by_role("button", name="Save and submit for review").click()
    page.get_by_text("Submitted for a clinician's review.").wait_for()
    page.get_by_role("button", name="Sign out").click()

    # The clinician reviews the diff and the safety gate, signs off and publishes.
    sign_in(page, product, "browser-clinician")
    page.goto(f"{product.url}/admin/kb/{ARTICLE}")
    page.get_by_role("link", name="Review and publish").click()
    page.locator("ins", has_text="Mineral powder is the kindest").wait_for()
    assert page.locator(".gate.passed").is_visible(), "the safety gate passed"
    assert not axe_violations(page), "the review page is accessible"
    page.screenshot(path=str(screenshots / "staff-review-diff.png"), full_page=True)
    page.get_by_role("button", name="Sign off and publish v2").click()
    page.get_by_text("Published: patients get this version now.").wait_for()

    live_after = answers_with(product, MARKER, present=True)
    print(f"\nthe chat API quoted the new text {live_after:.2f} s after the publish page came back")

    # One click rolls it back (and publishes that, through the same gate).
    page.goto(f"{product.url}/admin/kb/{ARTICLE}/history")
    page.get_by_role("button", name="Roll back to v1 (live now)").click()
    page.get_by_text("Rolled back and published.").wait_for()
    answers_with(product, MARKER, present=False)
    context.close()
