"""The chat widget in a real browser: Debian's chromium through Playwright, on the demo clinic page.

Most tests run against the real product (the `product` fixture: Rasa and the clinic app as two processes,
notification fakes for staff alerts). Two run against the app alone on a real port, with Rasa really
unreachable and either no staff alert channel or a tight rate limit, which the shared product cannot have.
Screenshots go to results/screenshots/, the measured figures to results/widget-metrics.json.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, expect

from bot import services as services_module
from bot.channels.web.texts import tel_uri
from bot.db import Database
from bot.main import create_app
from bot.rasa_client import RasaClient
from bot.services import Services
from bot.settings import Settings
from knowledge.clinic import load_clinic_profile
from knowledge.replies import load_replies
from tests.browser.conftest import ROOT, axe_violations
from tests.conftest import free_port
from tests.escalation.stubs import triage_engine
from tests.staff_users import staff_token

pytestmark = pytest.mark.e2e

CLINIC = load_clinic_profile()
REPLIES = load_replies(CLINIC)
# Says the treatment has happened: asked without a stage ("can I wear makeup tomorrow?"), the assistant would
# first ask whether it has.
QUESTION = "can I wear makeup the day after my treatment?"
URGENT = "my chin has yellow pus and I feel feverish"
EMERGENCY = "my lips are swelling and my throat feels tight"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
METRICS = ROOT / "results" / "widget-metrics.json"

# Which element of the widget has the focus ("outside" when it is elsewhere on the page).
ACTIVE = """() => {
  const a = document.activeElement;
  if (!a || a.id !== 'clinic-assistant') return 'outside';
  const inner = a.shadowRoot.activeElement;
  return inner ? (inner.className || inner.tagName.toLowerCase()) : 'host';
}"""
SEND_READY = (
    "() => !document.querySelector('#clinic-assistant').shadowRoot.querySelector('.ca-send').disabled"
)
STORED = """() => Object.keys(localStorage).filter(k => k.startsWith('clinic-assistant:'))
  .map(k => JSON.parse(localStorage.getItem(k)))"""
# Every Content-Security-Policy or Trusted Types refusal on the page, from before its first script.
WATCH_POLICY = """window.__policyViolations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__policyViolations.push(e.violatedDirective + ' ' + (e.blockedURI || e.sample || '')));"""


# --- helpers -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def metrics() -> Iterator[dict]:
    """Figures the tests measure on the way (never asserted): written out once the module has run."""
    figures: dict = {}
    yield figures
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(figures, indent=2) + "\n")


def open_page(browser, url: str, **context_options) -> Page:
    context = browser.new_context(viewport=context_options.pop("viewport", DESKTOP), **context_options)
    context.add_init_script(WATCH_POLICY)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#clinic-assistant[data-ready=true]")).to_be_attached()
    return page


def active(page: Page) -> str:
    return page.evaluate(ACTIVE)


def tab_to_bubble(page: Page) -> None:
    for _ in range(30):
        page.keyboard.press("Tab")
        if active(page) == "ca-bubble":
            return
    pytest.fail("the chat bubble cannot be reached with the Tab key")


def open_with_keyboard(page: Page) -> None:
    tab_to_bubble(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert active(page) == "ca-input", "opening puts the focus in the message box"


def ask(page: Page, text: str) -> None:
    """Type a message and send it with Enter; return once the widget has the reply."""
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    page.wait_for_function(SEND_READY, timeout=30_000)


def policy_violations(page: Page) -> list[str]:
    return page.evaluate("window.__policyViolations")


def no_serious_axe_violations(page: Page, state: str, metrics: dict) -> None:
    assert policy_violations(page) == [], "the widget works under the page's CSP and Trusted Types"
    found = axe_violations(page)
    metrics.setdefault("axe_serious_or_critical", {})[state] = [v["id"] for v in found]
    assert found == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]


def session_of(page: Page) -> dict:
    [stored] = page.evaluate(STORED)
    return stored


def staff(product, method: str, path: str, **kwargs) -> httpx.Response:
    token = staff_token(product, "clinician")
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{product.url}/admin{path}", headers=headers, timeout=10, **kwargs)


# --- the real product ---------------------------------------------------------------------------------
def test_a_patient_chats_by_keyboard_and_the_chat_survives_a_reload_until_it_is_ended(
    product, browser, screenshots, metrics
) -> None:
    page = open_page(browser, product.url)
    metrics["ready_ms_first_load"] = round(
        page.evaluate("performance.getEntriesByName('clinic-assistant-ready')[0].startTime")
    )
    open_with_keyboard(page)
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    assert page.locator(".ca-typing").is_visible(), "a typing indicator while the assistant answers"
    page.wait_for_function(SEND_READY, timeout=30_000)

    answer = page.locator(".ca-msg--assistant.ca-kind-answer").last
    expect(answer).to_be_visible()
    api = httpx.get(
        f"{product.url}/api/conversations/{session_of(page)['id']}/messages",
        headers={"X-Session-Token": session_of(page)["token"]},
        timeout=10,
    ).json()
    [cited] = [m for m in api["messages"] if m["sender"] == "assistant" and m["kind"] == "answer"]
    title = cited["sources"][0]["title"]
    expect(answer.locator(".ca-source")).to_have_text(REPLIES.text("citation").replace("{title}", title))
    assert "makeup" in answer.locator(".ca-text").inner_text().lower()
    expect(page.locator(".ca-disclaimer")).to_have_text(REPLIES.text("widget_disclaimer"))

    # Focus stays in the open chat both ways round, and Escape gives it back to the bubble.
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert active(page) not in ("outside", "host"), f"focus left the chat after {key}"
    page.locator(".ca-input").focus()
    page.locator(".ca-log").evaluate("log => { log.scrollTop = log.scrollHeight; }")  # show the footnote
    page.screenshot(path=str(screenshots / "widget-desktop.png"))
    no_serious_axe_violations(page, "desktop, answered", metrics)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert active(page) == "ca-bubble", "closing returns the focus to the bubble"

    # The browser keeps the session, never the conversation; a reload shows it again from the server.
    kept = json.dumps(page.evaluate("() => ({...localStorage})"))
    assert "makeup" not in kept and page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    page.reload()
    expect(page.locator("#clinic-assistant[data-ready=true]")).to_be_attached()
    open_with_keyboard(page)
    expect(page.locator(".ca-msg--patient .ca-text")).to_have_text(
        ["can I wear makeup the day after my treatment?"]
    )
    expect(page.locator(".ca-source")).to_have_count(1)

    # End the chat by keyboard: gone from the page, the device and the server.
    token = session_of(page)
    page.keyboard.press("Shift+Tab")
    assert active(page) == "ca-action", "the end-chat action is next to the message box"
    expect(page.locator(".ca-actions .ca-action").last).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".ca-confirm")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator(".ca-ended")).to_have_text(REPLIES.text("widget_ended"))
    expect(page.locator(".ca-msg--patient, .ca-msg--assistant")).to_have_count(0)
    assert page.evaluate(STORED) == []
    assert active(page) == "ca-input"
    old = httpx.get(
        f"{product.url}/api/conversations/{token['id']}/messages",
        headers={"X-Session-Token": token["token"]},
        timeout=10,
    )
    assert old.status_code == 401
    page.reload()
    open_with_keyboard(page)
    expect(page.locator(".ca-msg")).to_have_count(1)
    expect(page.locator(".ca-greeting")).to_be_visible()
    page.context.close()


def test_a_red_flag_pins_an_alert_with_a_call_link_and_says_staff_know_only_as_the_api_does(
    product, browser, screenshots, metrics
) -> None:
    page = open_page(browser, product.url)
    open_with_keyboard(page)
    ask(page, URGENT)

    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert.locator(".ca-alert-title")).to_have_text(REPLIES.text("widget_alert_urgent"))
    call = alert.get_by_role("link")
    expect(call).to_have_attribute("href", tel_uri(CLINIC.phone))
    expect(call).to_have_text(REPLIES.text("widget_call_clinic"))
    stored = session_of(page)
    api = httpx.get(
        f"{product.url}/api/conversations/{stored['id']}/messages",
        headers={"X-Session-Token": stored["token"]},
        timeout=10,
    ).json()
    [escalation] = [m for m in api["messages"] if m["kind"] == "escalation"]
    assert escalation["alerted"] is True, "the product's staff alerts go to the notification fakes"
    expect(alert.locator(".ca-alert-notified")).to_have_text(REPLIES.text("widget_notified"))
    expect(page.locator(".ca-msg--assistant.ca-triage-urgent")).to_have_count(1)
    page.screenshot(path=str(screenshots / "widget-alert-urgent.png"))

    ask(page, EMERGENCY)
    expect(alert.locator(".ca-alert-title")).to_have_text(REPLIES.text("widget_alert_emergency"))
    expect(call).to_have_attribute("href", f"tel:{CLINIC.emergency_number}")
    expect(page.locator(".ca-alert")).to_have_count(1)
    page.screenshot(path=str(screenshots / "widget-alert.png"))
    no_serious_axe_violations(page, "emergency alert", metrics)

    page.reload()  # the alert is pinned again from the conversation the server kept
    expect(page.locator("#clinic-assistant[data-ready=true]")).to_be_attached()
    open_with_keyboard(page)
    expect(page.get_by_role("alert").locator(".ca-alert-title")).to_have_text(
        REPLIES.text("widget_alert_emergency")
    )
    page.context.close()


def test_talk_to_the_clinic_hands_over_and_staff_replies_arrive_as_text(product, browser, metrics) -> None:
    page = open_page(browser, product.url)
    open_with_keyboard(page)
    ask(page, "hi")
    page.locator(".ca-actions .ca-action").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(SEND_READY, timeout=30_000)
    expect(page.locator(".ca-kind-handoff")).to_have_count(1)
    session_id = session_of(page)["id"]
    waiting = staff(product, "GET", "/conversations/handed-off").json()
    assert session_id in [c["conversation_id"] for c in waiting]

    hostile = (
        '<img src=x onerror="window.__pwned=1"> Dana here. <a href="javascript:window.__pwned=2">x</a> '
        "Book a check-up at https://birchwood-skin.example/book. javascript:window.__pwned=3"
    )
    started = time.monotonic()
    posted = staff(
        product, "POST", f"/conversations/{session_id}/messages", json={"text": hostile, "staff_name": "Dana"}
    )
    assert posted.status_code == 201
    reply = page.locator(".ca-msg--staff")
    expect(reply).to_have_count(1, timeout=15_000)
    metrics["staff_reply_seen_after_s"] = round(time.monotonic() - started, 1)
    expect(reply.locator(".ca-who")).to_have_text(REPLIES.text("widget_staff"))
    assert '<img src=x onerror="window.__pwned=1">' in reply.inner_text(), "shown as the text it is"
    assert page.locator("#clinic-assistant img").count() == 0
    links = reply.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://birchwood-skin.example/book")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    assert page.evaluate("window.__pwned") is None

    # Closed, the widget still hears from staff and says so on the bubble.
    page.keyboard.press("Escape")
    staff(product, "POST", f"/conversations/{session_id}/messages", json={"text": "Are you there?"})
    expect(page.locator(".ca-badge")).to_have_text("1", timeout=15_000)
    assert REPLIES.text("widget_new_reply") in page.locator(".ca-bubble").get_attribute("aria-label")
    page.keyboard.press("Enter")
    expect(page.locator(".ca-msg--staff")).to_have_count(2)
    expect(page.locator(".ca-badge")).to_be_hidden()
    no_serious_axe_violations(page, "handoff with staff replies", metrics)
    page.context.close()


def test_on_a_phone_the_chat_fills_the_screen_and_the_input_does_not_zoom(
    product, browser, screenshots, metrics
) -> None:
    page = open_page(browser, product.url, viewport=PHONE, is_mobile=True, has_touch=True)
    page.locator(".ca-bubble").tap()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")  # it rises into place
    box = {side: round(value) for side, value in dialog.bounding_box().items()}
    assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    assert float(page.locator(".ca-input").evaluate("e => getComputedStyle(e).fontSize")[:-2]) >= 16
    ask(page, "how long will my skin be red?")
    expect(page.locator(".ca-msg--assistant")).not_to_have_count(0)
    page.screenshot(path=str(screenshots / "widget-mobile.png"))
    no_serious_axe_violations(page, "phone", metrics)
    page.context.close()

    wide = open_page(browser, product.url, viewport={"width": 800, "height": 700})
    wide.locator(".ca-bubble").click()
    assert wide.get_by_role("dialog").bounding_box()["width"] < 800, "a corner panel on a larger screen"
    wide.context.close()


def test_the_bubble_is_ready_soon_after_the_page_loads(product, browser, metrics) -> None:
    """Records the time from navigation to an interactive bubble (the figure, not a limit)."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    samples = []
    for _ in range(5):
        page.goto(product.url)
        expect(page.locator("#clinic-assistant[data-ready=true]")).to_be_attached()
        expect(page.locator(".ca-bubble")).to_be_enabled()
        samples.append(page.evaluate("performance.getEntriesByName('clinic-assistant-ready')[0].startTime"))
    metrics["ready_ms_warm_loads"] = [round(s) for s in samples]
    metrics["ready_ms_median"] = round(statistics.median(samples))
    sizes = {}
    for name in ("widget.js", "widget.css"):
        served = httpx.get(f"{product.url}/widget/{name}", headers={"accept-encoding": "gzip"}, timeout=10)
        assert served.headers["content-encoding"] == "gzip"
        sizes[name] = int(served.headers["content-length"])
    metrics["gzipped_bytes"] = {**sizes, "total": sum(sizes.values())}
    assert all(sample > 0 for sample in samples)
    context.close()


# --- the app alone: Rasa unreachable, no staff channel or a tight limit -----------------------------------
@contextmanager
def app_alone(tmp_path: Path, migrated_template: Path, **overrides) -> Iterator[str]:
    """The clinic app on a real port with real triage and database; its Rasa address answers nothing."""
    database = tmp_path / "app.db"
    database.write_bytes(migrated_template.read_bytes())
    settings = Settings(_env_file=None, environment="test", var_dir=tmp_path, **overrides)
    services = Services(
        settings=settings,
        db=Database(f"sqlite:///{database}"),
        clinic=CLINIC,
        triage=triage_engine(),
        answerer=None,  # type: ignore[arg-type] - only Rasa's actions use it, and Rasa is down
        rasa=RasaClient(f"http://127.0.0.1:{free_port()}", 2.0),
    )
    try:
        previous = services_module.current()
    except RuntimeError:
        previous = None
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services=services), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if previous is not None:
            services_module.install(previous)


def test_with_rasa_down_and_no_staff_channel_the_widget_gives_the_phone_and_never_says_staff_know(
    browser, tmp_path, migrated_template, metrics
) -> None:
    with app_alone(tmp_path, migrated_template) as url:
        page = open_page(browser, url, reduced_motion="reduce")
        open_with_keyboard(page)
        assert page.locator(".ca-panel").evaluate("e => getComputedStyle(e).animationName") == "none"

        ask(page, "can I wear makeup tomorrow?")
        unavailable = page.locator(".ca-msg--assistant").last
        expect(unavailable.locator(".ca-text")).to_have_text(REPLIES.text("unavailable"))
        expect(unavailable.get_by_role("link", name=CLINIC.phone)).to_have_attribute(
            "href", tel_uri(CLINIC.phone)
        )

        ask(page, URGENT)
        alert = page.get_by_role("alert")
        expect(alert).to_be_visible()
        expect(alert.get_by_role("link")).to_have_attribute("href", tel_uri(CLINIC.phone))
        expect(alert.locator(".ca-alert-notified")).to_be_hidden()
        assert REPLIES.text("widget_notified") not in page.locator(".ca-panel").inner_text()
        assert "could not alert" in page.locator(".ca-triage-urgent").inner_text()
        no_serious_axe_violations(page, "rasa down, nobody alerted", metrics)
        page.context.close()


def test_too_many_messages_get_the_friendly_slow_down_and_a_red_flag_still_gets_through(
    browser, tmp_path, migrated_template
) -> None:
    with app_alone(tmp_path, migrated_template, rate_limit_per_client="2/minute") as url:
        page = open_page(browser, url)
        open_with_keyboard(page)
        ask(page, "hello")
        ask(page, "can I wear makeup?")
        ask(page, "and what about sunscreen?")

        notice = page.locator(".ca-problem").last
        expect(notice).to_contain_text(REPLIES.text("slow_down"))
        expect(notice).to_contain_text(REPLIES.text("widget_not_sent"))
        expect(page.locator(".ca-input")).to_have_value("and what about sunscreen?")

        page.locator(".ca-input").fill("")
        ask(page, URGENT)  # over the limit, and still the protocol's instruction and the alert
        expect(page.get_by_role("alert")).to_be_visible()
        expect(page.locator(".ca-triage-urgent")).to_have_count(1)
        page.context.close()


def test_a_chat_ended_elsewhere_starts_again_and_the_message_still_gets_through(
    browser, tmp_path, migrated_template
) -> None:
    with app_alone(tmp_path, migrated_template) as url:
        page = open_page(browser, url)
        open_with_keyboard(page)
        ask(page, "hello")
        first = session_of(page)
        ended = httpx.delete(
            f"{url}/api/conversations/{first['id']}", headers={"X-Session-Token": first["token"]}, timeout=10
        )
        assert ended.status_code == 204  # e.g. "forget this device" in another tab, or an expired token

        ask(page, URGENT)
        expect(page.locator(".ca-problem")).to_have_text(REPLIES.text("widget_session_restarted"))
        expect(page.locator(".ca-msg--patient .ca-text")).to_have_text([URGENT])
        expect(page.get_by_role("alert")).to_be_visible()
        second = session_of(page)
        assert second["id"] != first["id"]
        messages = httpx.get(
            f"{url}/api/conversations/{second['id']}/messages",
            headers={"X-Session-Token": second["token"]},
            timeout=10,
        ).json()["messages"]
        assert [m["text"] for m in messages if m["sender"] == "patient"] == [URGENT]
        page.context.close()


def test_the_clinics_colour_name_and_side_are_applied_with_readable_text(
    browser, tmp_path, migrated_template, metrics
) -> None:
    with app_alone(tmp_path, migrated_template) as url:
        page = open_page(browser, f"{url}/?color=%23ffd166&position=left&name=Birchwood")
        bubble = page.locator(".ca-bubble")
        assert bubble.bounding_box()["x"] < DESKTOP["width"] / 2, "on the left"
        styles = bubble.evaluate("e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]")
        assert styles == ["rgb(255, 209, 102)", "rgb(17, 17, 17)"], "dark text on a light clinic colour"
        open_with_keyboard(page)
        expect(page.get_by_role("dialog")).to_have_accessible_name(
            REPLIES.text("widget_title", clinic_name="Birchwood")
        )
        ask(page, "hello")
        no_serious_axe_violations(page, "light clinic colour", metrics)
        page.context.close()
