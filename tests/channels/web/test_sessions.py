"""Sessions the widget relies on: issued by the server, opened only by their own unexpired, unforged token.

Every refusal is checked on all three routes a widget uses: POST /api/chat, GET and DELETE
/api/conversations/{id}.
"""

from __future__ import annotations

import logging

import pytest
from itsdangerous import URLSafeTimedSerializer

from bot.conversation.sessions import SALT, Sessions
from bot.models import Conversation
from tests.channels.web.conftest import Clock
from tests.escalation.stubs import URGENT_TEXT
from tests.patient import Patient


def routes(session_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("POST", "/api/chat", {"session_id": session_id, "text": "can I wear makeup?"}),
        ("GET", f"/api/conversations/{session_id}/messages", None),
        ("DELETE", f"/api/conversations/{session_id}", None),
    ]


def refused_everywhere(client, session_id: str, token: str | bytes | None) -> None:
    headers = {"X-Session-Token": token} if token is not None else {}
    for method, path, body in routes(session_id):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert set(response.json()) == {"detail", "problems"}, "a clear error, never a stack trace"


def conversation_ids(services) -> set[str]:
    with services.db.session() as session:
        return {row.id for row in session.query(Conversation)}


def test_a_new_chat_gets_an_unguessable_server_issued_session(client) -> None:
    first, second = Patient(client), Patient(client)
    first.says("hello")
    second.says("hello")

    assert first.session_id != second.session_id
    assert first.session_id.startswith("api-") and len(first.session_id) >= 36
    assert first.token and first.session_id not in {first.token, second.token}
    assert first.messages()["messages"], "the token opens its own conversation"


def test_a_session_id_the_client_chose_is_refused_and_never_created(client, services) -> None:
    someone = Patient(client)
    someone.says("hello")
    before = conversation_ids(services)

    for chosen in ("api-" + "0" * 32, "my-own-session", someone.session_id):
        refused_everywhere(client, chosen, token=None)
    response = client.post("/api/chat", json={"session_id": "api-" + "1" * 32, "text": "hi"})
    assert response.status_code == 401
    assert conversation_ids(services) == before, "no conversation starts under a client's id"


def test_forged_tokens_are_refused(client, services) -> None:
    someone = Patient(client)
    someone.says("hello")
    session_id, token = someone.session_id, someone.token
    other_key = URLSafeTimedSerializer("not-the-servers-key", salt=SALT)
    forged = [
        other_key.dumps({"c": session_id, "s": "guessed-secret"}),  # signed with another key
        token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),  # signature altered
        token.replace(token.split(".")[0], other_key.dumps({"c": session_id, "s": "x"}).split(".")[0]),
        "",
        "not.a.token",
        "é".encode() * 10,  # raw UTF-8 bytes in the header
        "x" * 500,
    ]
    for candidate in forged:
        refused_everywhere(client, session_id, candidate)
    oversized = client.get(
        f"/api/conversations/{session_id}/messages", headers={"X-Session-Token": "x" * 600}
    )
    assert oversized.status_code == 422 and oversized.json()["problems"][0]["field"] == "X-Session-Token"
    assert someone.messages()["messages"], "the real token still works"


def test_a_token_signed_by_the_server_but_with_the_wrong_secret_is_refused(client, services) -> None:
    someone = Patient(client)
    someone.says("hello")
    # Even a correctly signed token (a leaked signing key) needs the secret whose hash the database keeps.
    signed = services.sessions._serializer.dumps({"c": someone.session_id, "s": "not-the-secret"})
    refused_everywhere(client, someone.session_id, signed)


def test_another_sessions_token_is_refused(client) -> None:
    alice, bob = Patient(client), Patient(client)
    alice.says("my chin is a bit red")
    bob.says("hello")

    refused_everywhere(client, alice.session_id, bob.token)
    assert [m["text"] for m in alice.messages()["messages"]][0] == "my chin is a bit red"
    assert "my chin" not in str(bob.messages()), "bob sees only his own conversation"


def test_an_expired_token_is_refused_and_the_widget_can_start_again(make_client, db, tmp_path) -> None:
    client = make_client()
    clock = Clock()
    max_age = 3600
    client.services.sessions = Sessions(db, "signing-key-for-tests", max_age, clock=clock)
    someone = Patient(client)
    someone.says("hello")

    clock.now += max_age  # exactly at the limit: still open
    assert someone.messages()["messages"]
    clock.now += 2  # past it
    refused_everywhere(client, someone.session_id, someone.token)
    response = client.get(
        f"/api/conversations/{someone.session_id}/messages", headers={"X-Session-Token": someone.token}
    )
    assert "expired" in response.json()["detail"]

    fresh = Patient(client)  # what the widget does after a 401: a new session
    fresh.says("hello again")
    assert fresh.session_id != someone.session_id and fresh.messages()["messages"]


def test_the_configured_session_lifetime_is_the_one_enforced(make_client) -> None:
    client = make_client(session_max_age_seconds=-1)  # every token is already too old
    response = client.post("/api/chat", json={"text": "hello"})
    assert response.status_code == 200
    issued = response.json()
    refused_everywhere(client, issued["session_id"], issued["session_token"])


def test_ending_the_chat_forgets_the_session_everywhere(client, services) -> None:
    someone = Patient(client)
    someone.says("hello")

    ended = client.delete(f"/api/conversations/{someone.session_id}", headers=someone.headers())
    assert ended.status_code == 204
    refused_everywhere(client, someone.session_id, someone.token)
    with services.db.session() as session:
        row = session.get(Conversation, someone.session_id)
        assert row.token_hash is None and row.ended_at is not None, "the clinic keeps its record"


@pytest.mark.parametrize("alert_channels", [True, False])
def test_the_api_says_whether_staff_were_alerted_and_keeps_it_for_a_reload(
    make_client, settings, tmp_path, alert_channels
) -> None:
    configured = settings if alert_channels else None
    client = make_client(configured)
    someone = Patient(client)
    reply = someone.says(URGENT_TEXT)

    escalation = reply["messages"][0]
    assert escalation["kind"] == "escalation" and escalation["alerted"] is alert_channels
    assert ("has been alerted" in escalation["text"]) is alert_channels
    assert all(m["alerted"] is None for m in reply["messages"][1:])
    kept = [m for m in someone.messages()["messages"] if m["kind"] == "escalation"]
    assert [m["alerted"] for m in kept] == [alert_channels]


def test_no_token_or_patient_text_in_the_logs(client, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    someone = Patient(client)
    someone.says("my chin is hot and swollen, email me at jo@example.com")
    someone.messages()
    client.delete(f"/api/conversations/{someone.session_id}", headers=someone.headers())

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert someone.token not in logged
    assert "chin" not in logged and "jo@example.com" not in logged
