"""Issue 7's probes against both real processes over real HTTP (uvicorn's own parsing of bodies and headers,
the real Rasa): the in-process versions of each, and more, are in tests/hardening."""

from __future__ import annotations

import json

import httpx
import pytest

from knowledge.clinic import load_clinic_profile
from tests.patient import Patient

pytestmark = pytest.mark.e2e
CLINIC = load_clinic_profile()


def client(product) -> httpx.Client:
    return httpx.Client(base_url=product.url, timeout=60)


@pytest.mark.parametrize(
    "text",
    ["day 999999 my throat is closing and I can't breathe", "99999999 hours ago my throat is closing"],
)
def test_an_absurd_treatment_day_still_gets_the_emergency_reply(product, text) -> None:
    reply = Patient(client(product)).says(text)
    first = reply["messages"][0]
    assert (first["kind"], first["triage"]) == ("escalation", "emergency")
    assert first["text"].startswith(f"Call {CLINIC.emergency_number} now")


def test_half_an_emoji_in_a_handed_off_conversation_keeps_the_reply(product) -> None:
    patient = Patient(client(product))
    assert [m["kind"] for m in patient.says("can I talk to a person please")["messages"]] == ["handoff"]
    body = json.dumps({"session_id": patient.session_id, "text": "my chin has yellow pus XX"}).replace(
        "XX", "\\ud83d\\u0000"
    )
    response = patient.client.post(
        "/api/chat", content=body, headers={**patient.headers(), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert [m["kind"] for m in response.json()["messages"]] == ["escalation", "handoff"]


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(product) -> None:
    def endless():
        for _ in range(64):
            yield b" " * 4096

    response = client(product).post(
        "/api/chat", content=endless(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert set(response.json()) == {"detail", "problems"}
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("token", [b"Bearer wrong", b"Bearer \xc3\xa9\xff", None])
def test_the_action_endpoint_checks_its_token_before_the_body(product, token) -> None:
    headers = {"content-type": "application/json", **({"authorization": token} if token else {})}
    response = client(product).post("/webhook", content=b"{not json", headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "problems"}


def test_a_token_in_the_query_string_opens_nothing(product) -> None:
    patient = Patient(client(product))
    patient.says("hello")
    response = patient.client.get(
        f"/api/conversations/{patient.session_id}/messages", params={"token": patient.token}
    )
    assert response.status_code == 401
