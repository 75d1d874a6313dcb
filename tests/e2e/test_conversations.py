"""End to end: both real processes, real HTTP, the public chat API."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from tests.patient import Patient, reply_text

pytestmark = pytest.mark.e2e


def patient(product) -> Patient:
    return Patient(httpx.Client(base_url=product.url, timeout=30))


def chat(product, text: str, treatment_date: date | None = None) -> dict:
    """One message from a new patient."""
    return patient(product).says(text, treatment_date)


def test_makeup_question_is_answered_from_an_article(product) -> None:
    # Treated yesterday: the after-care article (with no date, the assistant asks whether it has happened).
    reply = chat(product, "can I wear makeup tomorrow?", date.today() - timedelta(days=1))
    assert reply["session_id"] and reply["session_token"]
    answers = [m for m in reply["messages"] if m["kind"] == "answer"]
    assert answers, reply
    assert answers[0]["sources"], "an answer always cites its article"
    assert "makeup" in reply_text(reply) or "make-up" in reply_text(reply)
    assert all(m["triage"] == "none" for m in reply["messages"])


def level(reply: dict) -> str:
    order = ["none", "routine", "urgent", "emergency"]
    return max((m["triage"] for m in reply["messages"]), key=order.index)


def test_redness_on_day_two_is_expected_but_not_on_day_nine(product) -> None:
    early = chat(product, "why is my skin red on day 2")
    assert level(early) == "routine", early
    assert not any(m["kind"] == "escalation" for m in early["messages"])

    late = chat(product, "why is my skin red on day 9")
    assert level(late) == "urgent", late
    assert late["messages"][0]["kind"] == "escalation"


def test_out_of_scope_question_gets_a_fallback_with_the_clinic_phone(product) -> None:
    from knowledge.clinic import load_clinic_profile

    reply = chat(product, "how much is botox?")
    kinds = {m["kind"] for m in reply["messages"]}
    assert "fallback" in kinds, reply
    assert load_clinic_profile().phone in reply_text(reply)
    assert not any(m["sources"] for m in reply["messages"])


@pytest.mark.parametrize(("said", "expected"), [("2 days ago", "routine"), ("8 days ago", "urgent")])
def test_treatment_day_is_remembered_for_the_conversation(product, said: str, expected: str) -> None:
    someone = patient(product)
    first = someone.says(f"hi, I had my microneedling done {said}")
    assert level(first) == "none", first
    assert level(someone.says("is it normal that my face is still red?")) == expected


@pytest.mark.parametrize(("days_ago", "expected"), [(1, "routine"), (9, "urgent")])
def test_treatment_date_from_the_api_is_used(product, days_ago: int, expected: str) -> None:
    reply = chat(product, "why is my skin still red?", date.today() - timedelta(days=days_ago))
    assert level(reply) == expected, reply


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 5000},
        {"nothing": 1},
        {"text": 42},
        {"text": "hi", "treatment_date": "yesterday"},
    ],
)
def test_bad_input_gets_a_clear_error_not_a_stack_trace(product, body) -> None:
    response = httpx.post(f"{product.url}/api/chat", json=body, timeout=10)
    assert response.status_code == 422
    assert "detail" in response.json()
    assert "Traceback" not in response.text


def health(product) -> dict:
    return httpx.get(f"{product.url}/api/health", timeout=10).json()


def test_rasa_down_still_gives_a_clear_message_then_recovers(product) -> None:
    from knowledge.clinic import load_clinic_profile

    product.stop_rasa()
    try:
        reply = chat(product, "can I exercise tomorrow?")
        assert [m["kind"] for m in reply["messages"]] == ["fallback"]
        assert load_clinic_profile().phone in reply_text(reply)
        assert (health(product)["status"], health(product)["rasa"]) == ("degraded", False)
    finally:
        product.start_rasa()
        product.wait_until_ready()
    assert health(product)["status"] == "ok"
    assert any(m["kind"] == "answer" for m in chat(product, "when can I go back to the gym?")["messages"])


def test_a_rasa_that_hangs_is_given_up_after_its_timeout(product) -> None:
    """Rasa paused (SIGSTOP): the patient gets the clinic's phone once the timeout passes, not a hang."""
    import os
    import signal
    import time

    from knowledge.clinic import load_clinic_profile

    timeout = float(product.environment()["ASSISTANT_RASA_TIMEOUT_SECONDS"])
    rasa = product.processes["rasa"].pid
    os.kill(rasa, signal.SIGSTOP)
    try:
        started = time.monotonic()
        reply = chat(product, "how long until I see results?")
        waited = time.monotonic() - started
    finally:
        os.kill(rasa, signal.SIGCONT)
    assert [m["kind"] for m in reply["messages"]] == ["fallback"]
    assert load_clinic_profile().phone in reply_text(reply)
    assert timeout <= waited < timeout + 10


def test_a_long_conversation_keeps_its_treatment_date_across_rasa_sessions(product) -> None:
    someone = patient(product)
    someone.says("I had microneedling 2 days ago")
    for question in ("can I use sunscreen?", "when can I work out again?", "how many sessions will I need?"):
        reply = someone.says(question)
        assert any(m["kind"] == "answer" for m in reply["messages"]), reply
    assert level(someone.says("is it normal that my skin is red?")) == "routine"
