"""Triage comes first: no amount in the text, no state of the database and no character a client sends can
take away the triage reply (issue 7, "Triage is not really first")."""

from __future__ import annotations

import json

import pytest

from bot.escalation.handoff import hand_off
from bot.models import Message
from knowledge.clinic import load_clinic_profile
from tests.escalation.stubs import EMERGENCY_TEXT, URGENT_TEXT
from tests.hardening.conftest import make_read_only, remove_database, write_lock
from tests.patient import Patient

CLINIC = load_clinic_profile()
THROAT = "my throat is closing and I can't breathe"


def assert_emergency_reply(reply: dict) -> None:
    first = reply["messages"][0]
    assert (first["kind"], first["triage"]) == ("escalation", "emergency"), reply
    assert first["text"].startswith(f"Call {CLINIC.emergency_number} now"), first["text"]


@pytest.mark.parametrize(
    "text",
    [
        f"day 999999 {THROAT}",
        f"99999999 hours ago {THROAT}",
        f"had it done 99999999999999999999 days ago and {THROAT}",
        f"day 1e309 {THROAT}",
        f"{'9' * 400} weeks since the treatment, {THROAT}",
        f"it's been nan days, {THROAT}",
    ],
)
def test_an_absurd_amount_of_time_still_gets_the_emergency_reply(client, services, text) -> None:
    reply = Patient(client).says(text)

    assert_emergency_reply(reply)
    [escalation] = services.escalations.recent()
    assert escalation.severity == "emergency"


def test_a_treatment_date_in_the_message_beyond_the_calendar_is_ignored_not_fatal(client) -> None:
    reply = Patient(client).says(f"I had microneedling on 31/12/9999 and {THROAT}")
    assert_emergency_reply(reply)


# --- the database fails before triage could be written down ----------------------------------------------


def test_a_locked_database_still_gives_the_triage_reply_and_the_clinic_phone(client, db_path) -> None:
    with write_lock(db_path):
        response = client.post("/api/chat", json={"text": EMERGENCY_TEXT})

    assert response.status_code == 200, response.text
    reply = response.json()
    assert_emergency_reply(reply)
    assert reply["session_id"] is None, "no conversation could be opened"
    assert CLINIC.phone in reply["messages"][-1]["text"]


def test_a_locked_database_in_an_ongoing_conversation_still_gives_the_triage_reply(client, db_path) -> None:
    patient = Patient(client)
    patient.says("hello")
    with write_lock(db_path):
        response = client.post(
            "/api/chat",
            json={"session_id": patient.session_id, "text": URGENT_TEXT},
            headers=patient.headers(),
        )

    assert response.status_code == 200, response.text
    first, *rest = response.json()["messages"]
    assert (first["kind"], first["triage"]) == ("escalation", "urgent")
    assert CLINIC.phone in first["text"] and CLINIC.phone in rest[-1]["text"]


def test_a_read_only_database_still_gives_the_triage_reply(client, db) -> None:
    patient = Patient(client)
    patient.says("hello")
    make_read_only(db)

    response = client.post(
        "/api/chat",
        json={"session_id": patient.session_id, "text": EMERGENCY_TEXT},
        headers=patient.headers(),
    )
    assert response.status_code == 200, response.text
    assert_emergency_reply(response.json())
    assert CLINIC.phone in response.json()["messages"][-1]["text"]
    fresh = client.post("/api/chat", json={"text": EMERGENCY_TEXT})
    assert fresh.status_code == 200 and fresh.json()["session_id"] is None
    assert_emergency_reply(fresh.json())


def test_a_database_that_is_gone_still_gives_the_triage_reply(client, db, db_path) -> None:
    patient = Patient(client)
    patient.says("hello")
    remove_database(db, db_path)

    for headers, session_id in ((patient.headers(), patient.session_id), ({}, None)):
        response = client.post(
            "/api/chat", json={"session_id": session_id, "text": EMERGENCY_TEXT}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert_emergency_reply(response.json())
        assert CLINIC.phone in response.json()["messages"][-1]["text"]


def test_reading_a_conversation_while_the_database_is_gone_is_a_clear_503(client, db, db_path) -> None:
    patient = Patient(client)
    patient.says("hello")
    remove_database(db, db_path)

    response = client.get(f"/api/conversations/{patient.session_id}/messages", headers=patient.headers())
    assert response.status_code == 503
    assert set(response.json()) == {"detail", "problems"} and CLINIC.phone in response.json()["detail"]


# --- what a clumsy client sends ---------------------------------------------------------------------------


def test_half_an_emoji_and_control_characters_in_a_handed_off_conversation_keep_the_reply(
    client, services
) -> None:
    patient = Patient(client)
    patient.says("hello")
    hand_off(services.db, patient.session_id, "patient_request")
    # A client that cut "😟" in half: JSON allows the lone escape, Python decodes it, UTF-8 cannot hold it.
    body = json.dumps({"session_id": patient.session_id, "text": f"{URGENT_TEXT} \\ud83d\x00\x1b"})
    body = body.replace("\\\\ud83d", "\\ud83d")

    response = client.post(
        "/api/chat", content=body, headers={**patient.headers(), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["session_id"] == patient.session_id
    assert [m["kind"] for m in reply["messages"]] == ["escalation", "handoff"]
    with services.db.session() as session:
        kept = session.query(Message).filter(Message.for_staff.is_(True)).one()
    assert kept.text == URGENT_TEXT, "kept for staff, cleaned at the boundary"
    assert client.get(f"/api/conversations/{patient.session_id}/messages", headers=patient.headers()).json()


def test_a_failure_after_triage_still_gives_the_triage_reply(client, services) -> None:
    async def broken(sender, text, metadata):  # an action that answers something the contract cannot hold
        return [{"custom": {"text": "x", "kind": "answer", "sources": [{"no": "title"}]}}]

    services.rasa.send = broken
    response = client.post("/api/chat", json={"text": URGENT_TEXT})

    assert response.status_code == 200, response.text
    first, *rest = response.json()["messages"]
    assert (first["kind"], first["triage"]) == ("escalation", "urgent")
    assert CLINIC.phone in rest[-1]["text"]
    assert response.json()["session_id"], "the conversation itself was fine"
