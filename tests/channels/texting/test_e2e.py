"""The texting channels end to end: the real product (Rasa server and clinic app, two processes), the fakes
process playing Twilio and Meta on 127.0.0.1, real HTTP in both directions (signed webhooks in, the Twilio
REST API and the Graph API out, Twilio's signed status callbacks back in)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.fakes import FakeTwilio
from bot.fakes.process import FAKE_ACCOUNT_SID
from knowledge.clinic import load_clinic_profile

pytestmark = pytest.mark.e2e

CLINIC = load_clinic_profile()
CLINIC_NUMBER = "+15550100100"
URGENT = "my chin has yellow pus and I feel feverish"


def number() -> str:
    return f"+1555010{uuid.uuid4().int % 10_000:04d}"


def twilio(product) -> FakeTwilio:
    """Twilio's signing side only (the fakes process runs the API the app sends to)."""
    return FakeTwilio(FAKE_ACCOUNT_SID, product.fakes.auth_token)


def texts(product, sender: str, body: str, request: tuple[bytes, dict] | None = None) -> httpx.Response:
    url = f"{product.url}/channels/twilio/messages"
    content, headers = request or twilio(product).incoming(url, sender, CLINIC_NUMBER, body)
    return httpx.post(url, content=content, headers=headers, timeout=10)


def received(product, fake: str, to: str) -> list[dict]:
    everything = httpx.get(f"{product.fakes.control_url}/received", timeout=5).json()
    return [m for m in everything[fake] if m["to"] == to]


def wait_replies(product, fake: str, to: str, count: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(found := received(product, fake, to)) < count:
        assert time.monotonic() < deadline, f"no reply after {timeout:.0f}s"
        time.sleep(0.2)
    return found


def database(product, query: str, *params) -> list[tuple]:
    with sqlite3.connect(product.settings.var_dir / "app.db") as connection:
        return connection.execute(query, params).fetchall()


def test_an_sms_question_is_acknowledged_at_once_and_answered_from_the_articles(product) -> None:
    sender = number()
    started = time.perf_counter()
    response = texts(product, sender, "can I wear makeup the day after my treatment?")
    acknowledged = time.perf_counter() - started

    assert response.status_code == 200 and response.text.endswith("<Response></Response>")
    assert acknowledged < 1.0
    [reply] = wait_replies(product, "sms", sender, 1)
    assert "Source: " in reply["body"] and "**" not in reply["body"]
    assert reply["from"] == CLINIC_NUMBER
    assert int(reply["num_segments"]) <= 4
    # Twilio's status callbacks (signed by the fake with the auth token) reached the app and were kept.
    deadline = time.monotonic() + 20
    while not database(product, "select status from delivery_events where provider_ref = ?", reply["sid"]):
        assert time.monotonic() < deadline, "no status callback recorded"
        time.sleep(0.2)
    time.sleep(0.5)
    statuses = {
        s
        for (s,) in database(
            product, "select status from delivery_events where provider_ref = ?", reply["sid"]
        )
    }
    assert statuses == {"sent", "delivered"}


def test_a_red_flag_sms_gets_the_instruction_first_and_staff_are_alerted(product) -> None:
    sender = number()
    assert texts(product, sender, URGENT).status_code == 200

    [reply] = wait_replies(product, "sms", sender, 1)
    assert CLINIC.phone in reply["body"][:153], "the instruction is in the first segment"
    conversations = database(
        product, "select conversation_id from channel_contacts where address = ?", sender
    )
    [(conversation_id,)] = conversations
    [(severity, channel)] = database(
        product, "select severity, channel from escalations where conversation_id = ?", conversation_id
    )
    assert (severity, channel) == ("urgent", "sms")


def test_one_message_delivered_six_times_at_once_is_answered_once(product) -> None:
    sender = number()
    url = f"{product.url}/channels/twilio/messages"
    request = twilio(product).incoming(url, sender, CLINIC_NUMBER, "how long does redness last?")

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: texts(product, sender, "", request).status_code, range(6)))

    assert statuses == [200] * 6
    wait_replies(product, "sms", sender, 1)
    time.sleep(3)  # longer than the outbox poll: a second reply would be here now
    assert len(received(product, "sms", sender)) == 1


def test_a_whatsapp_cloud_message_delivered_by_meta_is_answered_through_the_graph_api(product) -> None:
    wa_id = number().lstrip("+")
    delivered = httpx.post(
        f"{product.fakes.control_url}/whatsapp/deliver",
        json={
            "url": f"{product.url}/channels/whatsapp/webhook",
            "wa_id": wa_id,
            "text": "can I exercise on day 2?",
        },
        timeout=10,
    )
    assert delivered.json() == {"status": 200}

    [reply] = wait_replies(product, "whatsapp", wa_id, 1)
    assert reply["type"] == "text"
    assert "Source: " in reply["text"]["body"]


def test_rasa_stopped_mid_conversation_the_sms_patient_still_gets_a_clear_reply(product) -> None:
    sender = number()
    texts(product, sender, "can I wear makeup the day after my treatment?")
    wait_replies(product, "sms", sender, 1)
    product.stop_rasa()
    try:
        texts(product, sender, "and when can I go to the gym?")
        second = wait_replies(product, "sms", sender, 2)[1]["body"]
        assert second.startswith("Sorry, I can't answer questions right now.")
        assert CLINIC.phone in second
    finally:
        product.start_rasa()
        product.wait_until_ready()
