"""The staff API: personal bearer tokens; escalations listed and acknowledged; handoff; unanswered questions.

The acting user is the token's owner: names in request bodies are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.db import Database
from bot.records import record_unanswered
from bot.services import Services
from bot.settings import Settings
from bot.staff.accounts import Accounts
from bot.staff.audit import Actor
from tests.escalation.stubs import URGENT_TEXT, running_app, stub_services

STAFF: dict[str, str] = {}  # the clinician's Authorization header, made per test


@pytest.fixture
def services(tmp_path: Path, db: Database) -> Services:
    settings = Settings(environment="test", var_dir=tmp_path)
    accounts = Accounts(db)
    setup = Actor.system("test set-up")
    clinician = accounts.create_user("lee", "Dr Lee", "clinician", "a long enough password", setup)
    STAFF["Authorization"] = f"Bearer {accounts.create_token(clinician.id, 'tests', setup)}"
    return stub_services(settings, db)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with running_app(services) as client:
        yield client


SESSIONS: dict[str, str] = {}  # conversation id -> its session token


def patient_says(client: TestClient, text: str, session_id: str | None = None) -> str:
    """A message in a new (or the given) patient session; returns its conversation id."""
    headers = {"X-Session-Token": SESSIONS[session_id]} if session_id else {}
    response = client.post("/api/chat", json={"text": text, "session_id": session_id}, headers=headers)
    assert response.status_code == 200
    reply = response.json()
    if reply.get("session_token"):
        SESSIONS[reply["session_id"]] = reply["session_token"]
    return reply["session_id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/escalations"),
        ("post", "/admin/escalations/1/acknowledge"),
        ("get", "/admin/conversations/handed-off"),
        ("get", "/admin/conversations/abc/messages"),
        ("post", "/admin/conversations/abc/messages"),
        ("post", "/admin/conversations/abc/hand-back"),
        ("get", "/admin/unanswered-questions"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_every_staff_route_needs_a_personal_token(client, method, path, headers) -> None:
    response = client.request(method, path, headers=headers, json={"text": "hi"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_escalations_are_listed_with_the_patient_text_and_notification_state(client) -> None:
    session = patient_says(client, URGENT_TEXT)

    [listed] = client.get("/admin/escalations", headers=STAFF).json()
    assert listed["conversation_id"] == session
    assert (listed["severity"], listed["concepts"], listed["channel"]) == (
        "urgent",
        ["local_infection"],
        "api",
    )
    assert listed["patient_text"] == URGENT_TEXT
    assert listed["acknowledged_at"] is None
    assert listed["created_at"].endswith(("+00:00", "Z"))
    assert listed["notifications"] == []  # no staff channel configured in this test


def test_acknowledging_moves_an_escalation_from_open_to_acknowledged(client) -> None:
    patient_says(client, URGENT_TEXT)
    patient_says(client, "more pus today")
    newest, older = client.get("/admin/escalations?status=open", headers=STAFF).json()

    acked = client.post(
        f"/admin/escalations/{older['id']}/acknowledge", headers=STAFF, json={"staff_name": "Mallory"}
    )
    again = client.post(f"/admin/escalations/{older['id']}/acknowledge", headers=STAFF)

    assert acked.status_code == 200
    assert acked.json()["acknowledged_by"] == "Dr Lee", "the token's owner, not a name in the body"
    assert again.json()["acknowledged_by"] == "Dr Lee", "the first acknowledgement counts"
    assert [e["id"] for e in client.get("/admin/escalations?status=open", headers=STAFF).json()] == [
        newest["id"]
    ]
    assert [e["id"] for e in client.get("/admin/escalations?status=acknowledged", headers=STAFF).json()] == [
        older["id"]
    ]
    assert len(client.get("/admin/escalations", headers=STAFF).json()) == 2
    assert client.post("/admin/escalations/999/acknowledge", headers=STAFF).status_code == 404
    assert client.get("/admin/escalations?status=bogus", headers=STAFF).status_code == 422


def test_staff_reply_and_hand_back(client, services) -> None:
    session = patient_says(client, "hello")

    posted = client.post(
        f"/admin/conversations/{session}/messages",
        headers=STAFF,
        json={"text": "Hi, Dana here.", "staff_name": "Dana"},
    )
    assert posted.status_code == 201 and posted.json()["sender"] == "staff"
    assert posted.json()["staff_name"] == "Dr Lee"
    [handed] = client.get("/admin/conversations/handed-off", headers=STAFF).json()
    assert (handed["conversation_id"], handed["reason"]) == (session, "staff_reply")

    patient_says(client, "thanks, it is still red", session)
    transcript = client.get(f"/admin/conversations/{session}/messages", headers=STAFF).json()
    assert [(m["sender"], m["text"]) for m in transcript if m["sender"] != "assistant"] == [
        ("patient", "hello"),
        ("staff", "Hi, Dana here."),
        ("patient", "thanks, it is still red"),
    ]
    polled = client.get(
        f"/api/conversations/{session}/messages", headers={"X-Session-Token": SESSIONS[session]}
    )
    assert [m["text"] for m in polled.json()["messages"] if m["sender"] == "staff"] == ["Hi, Dana here."]

    back = client.post(f"/admin/conversations/{session}/hand-back", headers=STAFF)
    assert back.json() == {"conversation_id": session, "handed_off": False, "changed": True}
    assert client.get("/admin/conversations/handed-off", headers=STAFF).json() == []
    services.rasa.received.clear()
    patient_says(client, "can I wear makeup?", session)
    assert services.rasa.received == ["can I wear makeup?"], "the assistant answers again"


def test_replies_and_hand_back_need_a_known_conversation_and_a_real_text(client) -> None:
    assert (
        client.post("/admin/conversations/nope/messages", headers=STAFF, json={"text": "x"}).status_code
        == 404
    )
    assert client.post("/admin/conversations/nope/hand-back", headers=STAFF).status_code == 404
    assert client.get("/admin/conversations/nope/messages", headers=STAFF).status_code == 404
    session = patient_says(client, "hello")
    assert (
        client.post(f"/admin/conversations/{session}/messages", headers=STAFF, json={"text": ""}).status_code
        == 422
    )


def test_unanswered_questions_are_listed_newest_first_and_redacted(client, services) -> None:
    session = patient_says(client, "hello")
    record_unanswered(services.db, session, "how much is botox?", "out_of_scope", None, "out_of_scope")
    with_phone = "do you do lip filler? call me on 07700 900123"
    record_unanswered(services.db, session, with_phone, "ask_procedure", 0.21)

    listed = client.get("/admin/unanswered-questions", headers=STAFF).json()
    assert [(q["question"], q["intent"], q["best_score"], q["reason"]) for q in listed] == [
        ("do you do lip filler? call me on [phone]", "ask_procedure", 0.21, "fallback"),
        ("how much is botox?", "out_of_scope", None, "out_of_scope"),
    ]
    assert "conversation_id" not in listed[0], "nothing that leads back to the patient"
    assert len(client.get("/admin/unanswered-questions?limit=1", headers=STAFF).json()) == 1
