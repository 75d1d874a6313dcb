"""End to end safety: both real processes plus the notification fakes, real HTTP, the public and staff APIs.

Red-flag messages are escalated, listed for staff and delivered to the (fake) SMS, e-mail and webhook exactly
once; duplicates are one escalation; with Rasa stopped the protocol reply and the escalation still happen;
a patient who asks for a person is handed to staff and back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from knowledge.clinic import load_clinic_profile
from tests.patient import Patient
from tests.staff_users import staff_headers

pytestmark = pytest.mark.e2e

URGENT = "my chin has yellow pus and I feel feverish"
EMERGENCY = "my lips are swelling and my throat feels tight"
CLINIC = load_clinic_profile()


def patient(product) -> Patient:
    return Patient(httpx.Client(base_url=product.url, timeout=30))


def chat(product, text: str) -> dict:
    """One message from a new patient."""
    return patient(product).says(text)


def staff(product, method: str, path: str, **kwargs) -> httpx.Response:
    """The staff API as a clinician with a personal token (made with `python -m bot.staff`)."""
    headers = staff_headers(product, "clinician")
    return httpx.request(method, f"{product.url}/admin{path}", headers=headers, timeout=10, **kwargs)


def escalations_of(product, session_id: str) -> list[dict]:
    listed = staff(product, "GET", "/escalations", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    return [e for e in listed.json() if e["conversation_id"] == session_id]


def delivered_to_fakes(product, escalation_id: int) -> dict[str, list[dict]]:
    """What the fakes received for one escalation, found by its notification keys (`esc<id>-...`)."""
    assert product.fakes, "the e2e product runs with the notification fakes"
    received = httpx.get(f"{product.fakes.control_url}/received", timeout=5).json()
    key = f"esc{escalation_id}-"
    return {
        "sms": [m for m in received["sms"] if f"Ref {key}" in m["body"]],
        "email": [m for m in received["email"] if m["message_id"].startswith(f"<{key}")],
        "webhook": [h for h in received["webhook"] if h["idempotency_key"].startswith(key)],
    }


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.25)


def assert_delivered_exactly_once(product, escalation_id: int) -> None:
    wait_until(lambda: all(delivered_to_fakes(product, escalation_id).values()))
    time.sleep(3)  # longer than the outbox poll: a second delivery would show now
    delivered = delivered_to_fakes(product, escalation_id)
    assert {channel: len(items) for channel, items in delivered.items()} == {
        "sms": 1,
        "email": 1,
        "webhook": 1,
    }
    assert delivered["sms"][0]["to"] == CLINIC.on_call_phone
    assert delivered["webhook"][0]["signature_valid"]


def test_an_urgent_message_is_escalated_listed_delivered_once_and_acknowledged(product) -> None:
    reply = chat(product, URGENT)

    first = reply["messages"][0]
    assert (first["kind"], first["triage"]) == ("escalation", "urgent")
    assert CLINIC.phone in first["text"]
    assert "Talk to a person" in [button["title"] for button in first["buttons"]]

    [escalation] = escalations_of(product, reply["session_id"])
    assert (escalation["severity"], escalation["patient_text"]) == ("urgent", URGENT)
    assert "local_infection" in escalation["concepts"]
    assert_delivered_exactly_once(product, escalation["id"])
    [listed] = escalations_of(product, reply["session_id"])
    assert {n["status"] for n in listed["notifications"]} == {"delivered"}

    acked = staff(product, "POST", f"/escalations/{escalation['id']}/acknowledge")
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "E2E Clinician"
    open_ids = [e["id"] for e in staff(product, "GET", "/escalations", params={"status": "open"}).json()]
    assert escalation["id"] not in open_ids


def test_an_emergency_reply_tells_the_patient_to_call_the_emergency_number(product) -> None:
    reply = chat(product, EMERGENCY)

    first = reply["messages"][0]
    assert (first["kind"], first["triage"]) == ("escalation", "emergency")
    assert CLINIC.emergency_number in first["text"][:160]
    [escalation] = escalations_of(product, reply["session_id"])
    assert escalation["severity"] == "emergency"


def test_the_same_message_sent_twice_at_once_is_one_escalation(product) -> None:
    someone = patient(product)
    someone.says("hi")
    with ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(pool.map(lambda _: someone.says(URGENT), range(2)))

    assert all(r["messages"][0]["kind"] == "escalation" for r in replies), "both get the protocol reply"
    [escalation] = escalations_of(product, someone.session_id)
    assert_delivered_exactly_once(product, escalation["id"])


def test_with_rasa_stopped_a_red_flag_still_gets_its_reply_and_its_escalation(product) -> None:
    product.stop_rasa()
    try:
        reply = chat(product, URGENT)
        kinds = [m["kind"] for m in reply["messages"]]
        assert kinds[0] == "escalation" and reply["messages"][0]["triage"] == "urgent"
        assert "fallback" in kinds  # and a clear "call the clinic" instead of an answer
        [escalation] = escalations_of(product, reply["session_id"])
        assert_delivered_exactly_once(product, escalation["id"])
    finally:
        product.start_rasa()
        product.wait_until_ready()


def test_a_patient_who_asks_for_a_person_is_handed_to_staff_and_back(product) -> None:
    someone = patient(product)
    asked = someone.says("is there a human I could speak with please")
    session = someone.session_id
    assert [m["kind"] for m in asked["messages"]] == ["handoff"], asked
    assert CLINIC.phone in asked["messages"][0]["text"]
    handed = staff(product, "GET", "/conversations/handed-off").json()
    assert session in [c["conversation_id"] for c in handed]

    waiting = someone.says("can I wear makeup tomorrow?")
    assert [m["kind"] for m in waiting["messages"]] == ["handoff"], "no automatic answer while staff have it"

    posted = staff(
        product, "POST", f"/conversations/{session}/messages", json={"text": "Yes, after 24 hours."}
    )
    assert posted.status_code == 201
    polled = someone.messages()["messages"]
    assert polled[-1]["sender"] == "staff" and polled[-1]["text"] == "Yes, after 24 hours."
    transcript = staff(product, "GET", f"/conversations/{session}/messages").json()
    assert [m["sender"] for m in transcript] == ["patient", "assistant", "patient", "assistant", "staff"]

    assert staff(product, "POST", f"/conversations/{session}/hand-back").json()["handed_off"] is False
    answered = someone.says("can I wear makeup tomorrow?")
    assert answered["messages"] and all(m["kind"] != "handoff" for m in answered["messages"]), answered


@pytest.mark.parametrize(
    ("text", "disposition", "kinds"),
    [
        ("my lips are swelling and my throat feels tight", "emergency", {"escalation"}),
        ("my chin has yellow pus and I feel feverish", "urgent", {"escalation"}),
        ("my cheeks are pink and a bit warm, it was done yesterday", "routine", {"answer"}),
        ("can I wear sunscreen after microneedling?", "none", {"answer"}),
    ],
)
def test_each_disposition_through_the_real_product(product, text: str, disposition: str, kinds: set) -> None:
    """One message per disposition of the protocol, through the real detector and real Rasa."""
    reply = chat(product, text)
    levels = [m["triage"] for m in reply["messages"]]
    order = ["none", "routine", "urgent", "emergency"]
    assert max(levels, key=order.index) == disposition, reply
    assert kinds <= {m["kind"] for m in reply["messages"]}, reply
    escalated = escalations_of(product, reply["session_id"])
    assert [e["severity"] for e in escalated] == (
        [disposition] if disposition in ("urgent", "emergency") else []
    )
    if disposition == "emergency":
        assert CLINIC.emergency_number in reply["messages"][0]["text"]
        assert not any(m["kind"] == "answer" for m in reply["messages"]), "no article after an emergency"


# Unsure: a report the rules cannot place, its learned P(urgent or emergency) in the middle of the grey zone
# (0.49 of 0.20-0.77 with the layer trained on the 2026-12-02 bank), so a retrained layer moving it a little
# still leaves it unsure. A message near the band's edge made this test depend on the last training.
UNSURE = "the treated area looks wrong and keeps changing, I'm worried"


def test_an_unsure_report_gets_safety_netting_and_clarifying_questions_whose_yes_escalates(product) -> None:
    """Through real Rasa: the safety net, the form's first question, and a "yes" re-triaged as a red flag."""
    someone = patient(product)
    first = someone.says(UNSURE)
    assert all(m["triage"] == "none" for m in first["messages"]), first
    safety_net = [m for m in first["messages"] if m["kind"] == "escalation"]
    assert safety_net and CLINIC.emergency_number in safety_net[0]["text"], first
    asked = first["messages"][-1]
    assert "breathing" in asked["text"].lower()
    assert [b["title"] for b in asked["buttons"]] == ["Yes", "No"]
    assert escalations_of(product, someone.session_id) == []

    answered = someone.says("Yes")
    assert answered["messages"][0]["triage"] == "emergency", answered
    assert CLINIC.emergency_number in answered["messages"][0]["text"]
    [escalation] = escalations_of(product, someone.session_id)
    assert (escalation["severity"], escalation["concepts"]) == ("emergency", ["airway_breathing"])


def test_an_unsure_report_answered_no_to_every_question_is_reassured_and_not_escalated(product) -> None:
    someone = patient(product)
    someone.says(UNSURE)
    asked = []
    for _ in range(4):
        reply = someone.says("No")
        assert all(m["triage"] in ("none", "routine") for m in reply["messages"]), reply
        asked.append(" ".join(m["text"] for m in reply["messages"]))
    assert "nothing points to an urgent problem" in asked[-1], "\n".join(asked)
    questions = zip(["fever", "spreading", "worse"], asked, strict=False)
    assert [word for word, text in questions if word in text.lower()] == ["fever", "spreading", "worse"]
    assert escalations_of(product, someone.session_id) == []


def test_rasa_handled_every_turn_without_failing_or_warning(product) -> None:
    """A turn Rasa fails on (after replying) is not saved: the conversation would be forgotten."""
    log = (product.log_dir / "rasa.log").read_text(encoding="utf-8", errors="replace")
    assert "message.received.failure" not in log
    assert "Traceback" not in log
    assert "Warning" not in log, "a quiet start: no third-party warnings in Rasa's log"
