"""The chat path in-process with the real triage engine: escalations recorded before Rasa, staff told only
when it is true, handoff instead of automatic answers, and staff notified by the app's own outbox worker
through the real notification protocols."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.escalation.handoff import hand_off, post_staff_reply
from bot.models import Message
from bot.outbox.models import OutboxMessage
from bot.services import Services
from knowledge.clinic import load_clinic_profile
from tests.escalation.stubs import EMERGENCY_TEXT, ROUTINE_TEXT, URGENT_TEXT, running_app, stub_services
from tests.patient import Patient

CLINIC = load_clinic_profile()


@pytest.fixture
def services(settings, db) -> Services:
    fast = settings.model_copy(update={"outbox_poll_seconds": 0.1, "outbox_retry_base_seconds": 0.2})
    return stub_services(fast, db)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with running_app(services) as client:
        yield client


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_urgent_message_is_escalated_offers_a_person_and_still_gets_its_answer(client, services) -> None:
    reply = Patient(client).says(URGENT_TEXT)

    escalation, answer = reply["messages"]
    assert (escalation["kind"], escalation["triage"]) == ("escalation", "urgent")
    assert CLINIC.phone in escalation["text"]
    assert escalation["text"].endswith("The clinic team has been alerted.")
    assert escalation["buttons"] == [{"title": "Talk to a person", "payload": "Talk to a person"}]
    assert answer["kind"] == "answer"
    [recorded] = services.escalations.recent()
    assert (recorded.conversation_id, recorded.severity, recorded.patient_text) == (
        reply["session_id"],
        "urgent",
        URGENT_TEXT,
    )
    assert recorded.concepts[0] == "local_infection"


def test_an_emergency_gets_only_its_instruction_never_an_article(client, services) -> None:
    reply = Patient(client).says(EMERGENCY_TEXT + ". Can I wear makeup tomorrow?")

    [instruction] = reply["messages"]
    assert instruction["text"].startswith(f"Call {CLINIC.emergency_number} now")
    assert instruction["triage"] == "emergency"
    assert not [text for text in services.rasa.received if not text.startswith("/EXTERNAL")]


def test_an_expected_effect_gets_the_protocols_reassurance_and_no_escalation(client, services) -> None:
    reply = Patient(client).says(ROUTINE_TEXT)

    assert {m["triage"] for m in reply["messages"]} == {"routine"}
    assert services.escalations.recent() == []


def test_the_patient_is_not_told_staff_know_when_no_one_could_be_alerted(db, services) -> None:
    lonely = services.settings.model_copy(
        update={
            "twilio_account_sid": "",
            "smtp_host": "",
            "webhook_url": "",
            "var_dir": services.settings.var_dir,
        }
    )
    with running_app(stub_services(lonely, db)) as client:
        reply = Patient(client).says(URGENT_TEXT)
    text = reply["messages"][0]["text"]
    assert "has been alerted" not in text
    assert "We could not alert the clinic team automatically" in text


def test_staff_are_notified_by_the_running_app_exactly_once(
    client, smtp_fake, twilio_fake, webhook_fake
) -> None:
    patient = Patient(client)
    patient.says(EMERGENCY_TEXT)
    again = patient.says("my throat feels tight and my lips are swollen")  # the same red flag in other words

    assert again["messages"][0]["text"].endswith("The clinic team already knows about this conversation.")
    wait_for(lambda: smtp_fake.received() and twilio_fake.received() and webhook_fake.received())
    time.sleep(0.5)  # a few more polls: nothing else may arrive
    assert (len(smtp_fake.received()), len(twilio_fake.received()), len(webhook_fake.received())) == (1, 1, 1)
    sms = twilio_fake.received()[0]["body"]
    assert "EMERGENCY" in sms
    assert patient.session_id not in sms and patient.token not in sms, "notices carry a reference only"


def test_a_worse_level_in_the_same_conversation_is_a_new_escalation(client, services) -> None:
    patient = Patient(client)
    patient.says(URGENT_TEXT)
    patient.says(EMERGENCY_TEXT)

    assert sorted(e.severity for e in services.escalations.recent()) == ["emergency", "urgent"]


def test_a_red_flag_named_over_two_messages_is_one_report(client, services) -> None:
    patient = Patient(client)
    first = patient.says("my face is really red")
    second = patient.says("it's hot and the red is spreading down my neck")

    assert {m["triage"] for m in first["messages"]} == {"routine"}
    assert second["messages"][0]["kind"] == "escalation"
    assert services.escalations.recent()[0].concepts[0] == "local_infection"


def test_rasa_down_the_escalation_is_still_recorded_and_answered(client, services) -> None:
    services.rasa.down = True
    reply = Patient(client).says(URGENT_TEXT)

    assert [m["kind"] for m in reply["messages"]] == ["escalation", "fallback"]
    assert reply["messages"][0]["triage"] == "urgent"
    assert CLINIC.phone in reply["messages"][1]["text"]
    assert len(services.escalations.recent()) == 1


def test_notifier_down_the_escalation_waits_in_the_outbox_and_goes_out_later(
    client, services, smtp_fake
) -> None:
    smtp_fake.stop()
    Patient(client).says(URGENT_TEXT)
    wait_for(lambda: _email(services).attempts >= 2)  # retried, with backoff, while the server is down
    assert _email(services).status == "pending"

    smtp_fake.start()
    wait_for(lambda: smtp_fake.received())
    time.sleep(0.5)
    assert len(smtp_fake.received()) == 1
    assert _email(services).status == "delivered"


def _email(services: Services) -> OutboxMessage:
    [escalation] = services.escalations.recent()
    notifications = services.escalations.notifications([escalation.id])[escalation.id]
    return next(n for n in notifications if n.channel == "email")


def test_a_handed_off_conversation_gets_no_automatic_answers_but_is_still_triaged(client, services) -> None:
    patient = Patient(client)
    patient.says("hello")
    hand_off(services.db, patient.session_id, "patient_request")
    services.rasa.received.clear()

    question = patient.says("can I wear makeup tomorrow?")
    worry = patient.says(URGENT_TEXT)

    assert services.rasa.received == [], "Rasa is not asked while staff have the conversation"
    assert [m["kind"] for m in question["messages"]] == ["handoff"]
    assert "staff" in question["messages"][0]["text"]
    assert [m["kind"] for m in worry["messages"]] == ["escalation", "handoff"]
    assert worry["messages"][0]["buttons"] == [], "no need to offer a person: staff already have it"
    assert len(services.escalations.recent()) == 1
    with services.db.session() as db_session:
        kept = [
            m.text for m in db_session.query(Message).filter(Message.for_staff.is_(True)).order_by(Message.id)
        ]
    assert kept == ["can I wear makeup tomorrow?", URGENT_TEXT]


def test_the_patient_sees_the_conversation_again_and_picks_up_staff_replies(client, services) -> None:
    patient = Patient(client)
    patient.says("hello")
    assert [m["sender"] for m in patient.messages()["messages"]] == ["patient", "assistant"]
    first = post_staff_reply(services.db, patient.session_id, "Hi, this is Dana from the clinic.", "Dana")
    post_staff_reply(services.db, patient.session_id, "Could you send a photo?", "Dana")

    everything = patient.messages()
    newer = patient.messages(after=first.id)
    assert everything["handed_off"] is True
    assert [m["text"] for m in everything["messages"] if m["sender"] == "staff"] == [
        "Hi, this is Dana from the clinic.",
        "Could you send a photo?",
    ]
    assert [m["text"] for m in newer["messages"]] == ["Could you send a photo?"]


def test_every_reply_is_kept_with_the_conversation(client, services) -> None:
    patient = Patient(client)
    patient.says(URGENT_TEXT)
    senders = [m["sender"] for m in patient.messages()["messages"]]
    assert senders == ["patient", "assistant", "assistant"]
