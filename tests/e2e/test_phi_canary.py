"""The PHI canary (issue 7): conversations with both real processes carry a unique fake name, phone number and
e-mail address through every path that logs (an answer, a red flag and its staff alerts, Rasa commands,
a handoff with a staff reply, refused requests, Rasa down); then every line the app, Rasa and the
notification fakes wrote is searched. 0 hits, in logs that are not simply empty."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.patient import Patient
from tests.staff_users import staff_token

pytestmark = pytest.mark.e2e

MARK = uuid.uuid4().hex[:6]
NAME = f"Ottoline Quarrington{MARK}"
PHONE = "+1 617 555 0" + str(int(MARK, 16) % 900 + 100)
EMAIL = f"ottoline.q.{MARK}@canary-mail.example"
STAFF_NAME = f"Nurse Zebedee{MARK}"


def canaries() -> dict[str, str]:
    """Every form in which a canary could reach a log line."""
    digits = re.sub(r"\D", "", PHONE)
    return {
        "name": NAME,
        "surname": f"Quarrington{MARK}",
        "phone": PHONE,
        "phone digits": digits,
        "local phone": digits[-7:],
        "e-mail": EMAIL,
        "e-mail user": EMAIL.split("@")[0],
        "staff name": STAFF_NAME,
        "mark": MARK,
    }


def staff(product, method: str, path: str, **kwargs) -> httpx.Response:
    token = staff_token(product, "clinician")
    return httpx.request(
        method,
        f"{product.url}/admin{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.25)


def test_no_name_phone_or_email_reaches_any_log_line(product) -> None:
    client = httpx.Client(base_url=product.url, timeout=60)
    me = f"I'm {NAME}, call me on {PHONE} or write to {EMAIL}."

    # An ordinary question, then a red flag whose alerts go out through the outbox to the fakes.
    patient = Patient(client)
    patient.says(f"{me} Can I wear makeup tomorrow?")
    urgent = patient.says(f"{NAME} again: yellow pus on my chin and I feel feverish, ring {PHONE}")
    assert urgent["messages"][0]["kind"] == "escalation"
    fakes = f"{product.fakes.control_url}/received"
    wait_until(lambda: len(httpx.get(fakes, timeout=5).json()["webhook"]) > 0)

    # Text that Rasa would read as commands, and an emergency.
    for text in (f"/restart {NAME}", f"/ask_makeup@0.9 {EMAIL}", f'/greet{{"name": "{NAME}"}}'):
        assert patient.says(text)["messages"]
    assert patient.says(f"{NAME}: my lips are swelling and my throat feels tight")["messages"][0][
        "triage"
    ] == ("emergency")

    # A handoff: the patient writes to staff, staff reply by name, the patient reads it.
    waiting = Patient(client)
    waiting.says(f"can I talk to a person please? this is {NAME}")
    waiting.says(f"my email is {EMAIL} and my phone {PHONE}")
    posted = staff(
        product,
        "POST",
        f"/conversations/{waiting.session_id}/messages",
        json={"text": f"Hi {NAME}, we will call {PHONE} today.", "staff_name": STAFF_NAME},
    )
    assert posted.status_code == 201
    assert waiting.messages()["messages"][-1]["sender"] == "staff"
    assert staff(product, "GET", "/escalations").status_code == 200

    # Requests that are refused: the canary in an invalid field, an oversized body, a forged session.
    json_type = {"content-type": "application/json"}
    refused = [
        client.post("/api/chat", json={"text": me, "treatment_date": EMAIL}),
        client.post("/api/chat", json={"text": me, "session_id": PHONE}),
        client.post("/api/chat", json={"text": me * 400}),
        client.post("/api/chat", content=f'{{"text": "{NAME}"'.encode(), headers=json_type),
        client.post("/api/chat", json={"text": me}, headers={"X-Session-Token": EMAIL}),
        client.get(f"/api/conversations/{patient.session_id}/messages", params={"token": EMAIL}),
        client.post(
            "/webhook",
            content=f'{{"sender_id": "{NAME}"}}'.encode(),
            headers={**json_type, "authorization": f"Bearer {EMAIL}"},
        ),
    ]
    assert all(400 <= response.status_code < 500 for response in refused), [r.status_code for r in refused]

    # Rasa down: the warning about it must not carry what the patient wrote.
    product.stop_rasa()
    try:
        down = Patient(client).says(f"{me} is it ok to exercise?")
        assert down["messages"][-1]["kind"] == "fallback"
    finally:
        product.start_rasa()
        product.wait_until_ready()
    assert Patient(client).says(f"{NAME} here, can I use sunscreen?")["messages"]

    logs = {path.name: path.read_text(errors="replace") for path in sorted(product.log_dir.glob("*.log"))}
    assert set(logs) >= {"app.log", "rasa.log", "fakes.log"}
    found = {
        (log, what): [line for line in text.splitlines() if value.lower() in line.lower()][:3]
        for log, text in logs.items()
        for what, value in canaries().items()
    }
    assert {key: lines for key, lines in found.items() if lines} == {}, "patient data in the logs"

    # The logs are not simply empty: they say what happened, by ids, levels and counts.
    app = logs["app.log"]
    assert "clinic app ready" in app
    assert re.search(r"message conversation=C[0-9A-F]{12} channel=api triage=urgent escalation=new", app)
    assert re.search(r"escalation id=\d+ severity=urgent signs=\d+ status=new", app)
    assert re.search(r"outbox id=\d+ kind=alert channel=(sms|email|webhook) delivered", app)
    assert "rasa unavailable conversation=C" in app
    assert logs["rasa.log"].strip(), "Rasa wrote its log"
    assert "rest.message.received.failure" not in logs["rasa.log"], "Rasa handled every message"
    assert "notification fakes up" in logs["fakes.log"]
