"""No client can crowd out a patient (issue 7, "No rate limits"): limits per client, per conversation, overall
and on new sessions answer 429 with the friendly text, in the error schema, with Retry-After; a red flag is
still triaged and escalated when its sender is limited; escalations are capped and aggregated per source;
the outbox delivers an emergency before a thousand routine rows queued ahead of it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bot.escalation.models import Escalation
from bot.models import Conversation
from bot.outbox.models import PRIORITY, OutboxMessage
from bot.outbox.notifiers import build_notifiers
from knowledge.clinic import load_clinic_profile
from tests.conftest import start_conversation
from tests.escalation.stubs import EMERGENCY_TEXT, URGENT_TEXT
from tests.patient import Patient

CLINIC = load_clinic_profile()


def from_address(client: TestClient, host: str) -> TestClient:
    """The same running app, called from another network address."""
    return TestClient(client.app, client=(host, 50000))


def assert_slowed_down(response, services) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": services.replies.text("slow_down"), "problems": []}
    assert int(response.headers["retry-after"]) > 0
    assert CLINIC.phone in response.json()["detail"], "the friendly text says whom to call"


def say(client: TestClient, text: str = "can I wear makeup tomorrow?", patient: Patient | None = None):
    headers = patient.headers() if patient else {}
    session_id = patient.session_id if patient else None
    return client.post("/api/chat", json={"text": text, "session_id": session_id}, headers=headers)


def count(db, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_one_client_is_limited_others_are_not(make_client) -> None:
    client = make_client(rate_limit_per_client="3/minute")
    for _ in range(3):
        assert say(client).status_code == 200
    assert_slowed_down(say(client), client.services)
    assert say(from_address(client, "198.51.100.20")).status_code == 200


def test_one_conversation_is_limited_a_new_one_from_the_same_client_is_not(make_client) -> None:
    client = make_client(rate_limit_per_conversation="2/minute")
    patient = Patient(client)
    patient.says("hello")
    patient.says("can I wear makeup?")
    assert_slowed_down(say(client, patient=patient), client.services)
    assert say(client).status_code == 200


def test_the_overall_limit_holds_across_clients(make_client) -> None:
    client = make_client(rate_limit_global="3/minute")
    for number in range(3):
        assert say(from_address(client, f"198.51.100.{number + 1}")).status_code == 200
    assert_slowed_down(say(from_address(client, "198.51.100.99")), client.services)


def test_new_sessions_are_limited_per_client_and_a_refused_one_leaves_nothing_behind(make_client) -> None:
    client = make_client(rate_limit_new_sessions="2/hour")
    patient = Patient(client)
    patient.says("hello")
    assert say(client).status_code == 200
    before = count(client.services.db, Conversation)

    assert_slowed_down(say(client), client.services)
    assert count(client.services.db, Conversation) == before, "no conversation for a refused session"
    patient.says("can I wear makeup?")  # an existing session goes on


def test_a_red_flag_from_a_limited_client_still_gets_its_reply_and_its_escalation(
    make_client, settings
) -> None:
    client = make_client(settings, rate_limit_per_client="1/minute", rate_limit_new_sessions="1/hour")
    patient = Patient(client)
    patient.says("hello")
    client.services.rasa.received.clear()

    urgent = patient.says(URGENT_TEXT)  # over the client's limit
    first, *_, last = urgent["messages"]
    assert (first["kind"], first["triage"], first["alerted"]) == ("escalation", "urgent", True)
    assert CLINIC.phone in first["text"]
    assert last["text"] == client.services.replies.text("slow_down"), "and it is told to slow down"
    assert not [text for text in client.services.rasa.received if not text.startswith("/")], "no answer"

    emergency = say(client, EMERGENCY_TEXT)  # a new session, over the new-session limit as well
    assert emergency.status_code == 200
    assert emergency.json()["messages"][0]["text"].startswith(f"Call {CLINIC.emergency_number} now")
    assert emergency.json()["session_token"], "staff can follow it up, the patient can go on"
    assert sorted(e.severity for e in client.services.escalations.recent()) == ["emergency", "urgent"]


def test_the_health_check_is_a_read_not_a_message(make_client) -> None:
    client = make_client(rate_limit_per_client="1/minute", rate_limit_reads_per_client="2/minute")
    for _ in range(2):
        assert client.get("/api/health").status_code == 200
    assert_slowed_down(client.get("/api/health"), client.services)
    assert say(client).status_code == 200, "polling health used none of the message allowance"


# --- escalations from one source ----------------------------------------------------------------------


def test_escalations_are_capped_per_source_and_folded_into_the_last_alert(
    db, escalations, make_worker, twilio_fake, smtp_fake, webhook_fake
) -> None:
    escalations.source_cap = 2
    flood = [
        escalations.record(
            start_conversation(db), "urgent", ["local_infection"], "api", URGENT_TEXT, "203.0.113.5"
        )
        for _ in range(5)
    ]
    other = escalations.record(
        start_conversation(db), "urgent", ["local_infection"], "api", URGENT_TEXT, "192.0.2.8"
    )

    assert [r.status for r in flood] == ["new", "new", "aggregated", "aggregated", "aggregated"]
    assert all(r.alerted for r in flood), "each is recorded for staff and covered by an alert"
    assert other.status == "new"
    with db.session() as session:
        alerted_into = session.get(Escalation, flood[1].escalation_id)
        assert alerted_into.aggregated == 3
        alert_rows = session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "alert"))
    assert alert_rows == 3 * 3, "three staff channels for each of the three alerted escalations"
    assert count(db, Escalation) == 6, "every escalation is still on the staff list"

    make_worker().run_once()
    assert len(twilio_fake.received()) == 3
    folded = [m for m in smtp_fake.received() if f"#{flood[1].escalation_id}" in m["subject"]]
    assert "(+3 more from the same source)" in folded[0]["body"]


def test_an_emergency_is_delivered_before_a_thousand_rows_queued_ahead_of_it(
    db, escalations, outbox, make_worker, twilio_fake, smtp_fake, webhook_fake, settings, clock
) -> None:
    conversation = start_conversation(db)
    flood = escalations.record(conversation, "urgent", ["local_infection"], "api", URGENT_TEXT, "203.0.113.5")
    kinds = ["reply", "checkin", "reminder"]
    with db.session() as session:
        for number in range(1000):
            kind = kinds[number % 3]
            outbox.add(
                session,
                kind=kind if number % 4 else "alert",
                channel="webhook",
                recipient=settings.webhook_url,
                priority=PRIORITY[kind] if number % 4 else PRIORITY["urgent"],
                dedupe_key=f"flood-{number}",
                body={"event": "routine", "number": number},
                escalation_id=flood.escalation_id if number % 4 == 0 else None,
                conversation_id=conversation,
                now=clock(),
            )
    clock.advance(60)  # every one of them has waited a minute when the emergency comes in
    emergency = escalations.record(
        start_conversation(db), "emergency", ["anaphylaxis"], "api", EMERGENCY_TEXT, "192.0.2.8"
    )

    assert make_worker(batch=3).run_once() == 3
    [sms], [email], [hook] = twilio_fake.received(), smtp_fake.received(), webhook_fake.received()
    assert f"EMERGENCY escalation #{emergency.escalation_id}" in sms["body"]
    assert f"EMERGENCY escalation #{emergency.escalation_id}" in email["subject"]
    assert hook["json"]["escalation"]["id"] == emergency.escalation_id


class QueuesAnEmergencyMidway:
    """The real webhook notifier; while it sends the second routine row, a patient reports an emergency."""

    channel = "webhook"

    def __init__(self, notifier, report) -> None:
        self.notifier, self.report, self.sent = notifier, report, 0

    def send(self, notice):
        self.sent += 1
        if self.sent == 2:
            self.report()
        return self.notifier.send(notice)

    def already_delivered(self, notice):
        return self.notifier.already_delivered(notice)


def test_an_emergency_queued_during_a_batch_goes_next_not_after_the_batch(
    db, escalations, outbox, make_worker, webhook_fake, settings, clock
) -> None:
    conversation = start_conversation(db)
    with db.session() as session:
        for number in range(20):
            outbox.add(
                session,
                kind="reply",
                channel="webhook",
                recipient=settings.webhook_url,
                priority=PRIORITY["reply"],
                dedupe_key=f"routine-{number}",
                body={"event": "routine", "number": number},
                conversation_id=conversation,
                now=clock(),
            )
    emergencies = []

    def report() -> None:
        emergencies.append(
            escalations.record(start_conversation(db), "emergency", ["anaphylaxis"], "api", EMERGENCY_TEXT)
        )

    notifiers = build_notifiers(settings)
    notifiers["webhook"] = QueuesAnEmergencyMidway(notifiers["webhook"], report)
    worker = make_worker(notifiers, batch=50)
    outbox.subscribe(worker.wake)  # as the app does: a new escalation wakes the worker

    worker.run_once()
    events = [hook["json"].get("event") for hook in webhook_fake.received()]
    assert events[:3] == ["routine", "routine", "escalation.alert"], events
    assert webhook_fake.received()[2]["json"]["escalation"]["id"] == emergencies[0].escalation_id
