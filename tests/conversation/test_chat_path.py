"""The chat path with safety: escalations recorded before Rasa, handoff instead of automatic answers,
and staff notified by the app's own outbox worker, through the real notification protocols."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.escalation.handoff import hand_off, post_staff_reply
from bot.escalation.models import HandoffMessage, StaffNotification
from bot.services import Services
from tests.escalation.stubs import EMERGENCY_TEXT, URGENT_REPLY, URGENT_TEXT, running_app, stub_services


@pytest.fixture
def services(settings, db) -> Services:
    fast = settings.model_copy(update={"outbox_poll_seconds": 0.1, "outbox_retry_base_seconds": 0.2})
    return stub_services(fast, db)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with running_app(services) as client:
        yield client


def chat(client: TestClient, text: str, session_id: str | None = None) -> dict:
    response = client.post("/api/chat", json={"text": text, "session_id": session_id})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_urgent_message_is_escalated_offers_a_person_and_still_gets_its_answer(client, services) -> None:
    reply = chat(client, URGENT_TEXT)

    escalation, answer = reply["messages"]
    assert (escalation["kind"], escalation["triage"], escalation["text"]) == (
        "escalation",
        "urgent",
        URGENT_REPLY,
    )
    assert escalation["buttons"] == [{"title": "Talk to a person", "payload": "/request_human"}]
    assert answer["kind"] == "answer"
    [recorded] = services.escalations.recent()
    assert (recorded.conversation_id, recorded.severity, recorded.patient_text) == (
        reply["session_id"],
        "urgent",
        URGENT_TEXT,
    )


def test_staff_are_notified_by_the_running_app_exactly_once(
    client, smtp_fake, twilio_fake, webhook_fake
) -> None:
    session = chat(client, EMERGENCY_TEXT)["session_id"]
    chat(client, EMERGENCY_TEXT, session)  # the patient sends it again

    wait_for(lambda: smtp_fake.received() and twilio_fake.received() and webhook_fake.received())
    time.sleep(0.5)  # a few more polls: nothing else may arrive
    assert (len(smtp_fake.received()), len(twilio_fake.received()), len(webhook_fake.received())) == (1, 1, 1)
    assert "EMERGENCY" in twilio_fake.received()[0]["body"]


def test_rasa_down_the_escalation_is_still_recorded_and_answered(client, services) -> None:
    services.rasa.down = True
    reply = chat(client, URGENT_TEXT)

    assert [m["kind"] for m in reply["messages"]] == ["escalation", "fallback"]
    assert reply["messages"][0]["text"] == URGENT_REPLY
    assert "call" in reply["messages"][1]["text"].lower()
    assert len(services.escalations.recent()) == 1


def test_notifier_down_the_escalation_waits_in_the_outbox_and_goes_out_later(
    client, services, smtp_fake
) -> None:
    smtp_fake.stop()
    chat(client, URGENT_TEXT)
    wait_for(lambda: _email(services).attempts >= 2)  # retried, with backoff, while the server is down
    assert _email(services).status == "pending"

    smtp_fake.start()
    wait_for(lambda: smtp_fake.received())
    time.sleep(0.5)
    assert len(smtp_fake.received()) == 1
    assert _email(services).status == "delivered"


def _email(services: Services) -> StaffNotification:
    [escalation] = services.escalations.recent()
    notifications = services.escalations.notifications([escalation.id])[escalation.id]
    return next(n for n in notifications if n.channel == "email")


def test_a_handed_off_conversation_gets_no_automatic_answers_but_is_still_triaged(client, services) -> None:
    session = chat(client, "hello")["session_id"]
    hand_off(services.db, session, "patient_request")
    services.rasa.received.clear()

    question = chat(client, "can I wear makeup tomorrow?", session)
    worry = chat(client, URGENT_TEXT, session)

    assert services.rasa.received == [], "Rasa is not asked while staff have the conversation"
    assert [m["kind"] for m in question["messages"]] == ["handoff"]
    assert "staff" in question["messages"][0]["text"]
    assert [m["kind"] for m in worry["messages"]] == ["escalation", "handoff"]
    assert worry["messages"][0]["buttons"] == [], "no need to offer a person: staff already have it"
    assert len(services.escalations.recent()) == 1
    with services.db.session() as db_session:
        kept = [m.text for m in db_session.query(HandoffMessage).order_by(HandoffMessage.id)]
    assert kept == ["can I wear makeup tomorrow?", URGENT_TEXT]


def test_the_patient_picks_up_staff_replies_by_polling(client, services) -> None:
    session = chat(client, "hello")["session_id"]
    assert client.get(f"/api/conversations/{session}/messages").json() == {
        "session_id": session,
        "handed_off": False,
        "messages": [],
    }
    first = post_staff_reply(services.db, session, "Hi, this is Dana from the clinic.", "Dana")
    post_staff_reply(services.db, session, "Could you send a photo?", "Dana")

    everything = client.get(f"/api/conversations/{session}/messages").json()
    newer = client.get(f"/api/conversations/{session}/messages", params={"after": first.id}).json()
    assert everything["handed_off"] is True
    assert [m["text"] for m in everything["messages"]] == [
        "Hi, this is Dana from the clinic.",
        "Could you send a photo?",
    ]
    assert {m["kind"] for m in everything["messages"]} == {"handoff"}
    assert [m["text"] for m in newer["messages"]] == ["Could you send a photo?"]
    assert client.get("/api/conversations/nope/messages").status_code == 404
