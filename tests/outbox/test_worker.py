"""The outbox worker: every notification delivered exactly once, through failures, restarts and races."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.models import as_utc, utcnow
from bot.outbox.models import OutboxMessage
from bot.outbox.notifiers import DeliveryRefused, build_notifiers
from bot.outbox.worker import RetryPolicy
from tests.conftest import BACKUP, ON_CALL, start_conversation

TEXT = "there is pus on my chin and it is hot"


class ProcessKilled(BaseException):
    """What the worker sees when its process dies: nothing it could catch and tidy up after."""


class DiesWhileSending:
    """Wraps a real notifier; the process dies before the provider got the message, or just after."""

    def __init__(self, notifier, after_provider_accepted: bool) -> None:
        self.notifier = notifier
        self.channel = notifier.channel
        self.after_provider_accepted = after_provider_accepted

    def send(self, notice):
        if self.after_provider_accepted:
            self.notifier.send(notice)
        raise ProcessKilled

    def already_delivered(self, notice):
        return self.notifier.already_delivered(notice)


def rows(db) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def by_channel(db, channel: str) -> OutboxMessage:
    return next(row for row in rows(db) if row.channel == channel)


def test_each_channel_gets_the_alert_once(
    escalations, conversation, make_worker, db, smtp_fake, twilio_fake, webhook_fake
) -> None:
    recorded = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker = make_worker()

    assert worker.run_once() == 3
    assert worker.run_once() == 0

    [mail], [sms], [hook] = smtp_fake.received(), twilio_fake.received(), webhook_fake.received()
    assert mail["rcpt_tos"] == ["on-call@clinic.test"] and f"#{recorded.escalation_id}" in mail["subject"]
    assert sms["to"] == ON_CALL and "URGENT" in sms["body"]
    assert hook["json"]["escalation"]["id"] == recorded.escalation_id and hook["signature_valid"]
    assert all(row.status == "delivered" and row.attempts == 1 for row in rows(db))
    assert by_channel(db, "sms").provider_ref == sms["sid"]
    assert by_channel(db, "email").provider_ref == mail["message_id"]


def test_no_notification_carries_the_patient_text(
    escalations, conversation, make_worker, smtp_fake, twilio_fake, webhook_fake
) -> None:
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    make_worker().run_once()
    sent = [
        smtp_fake.received()[0]["body"],
        twilio_fake.received()[0]["body"],
        str(webhook_fake.received()[0]),
    ]
    assert all("pus" not in text for text in sent)


def test_smtp_down_is_retried_with_backoff_then_one_email_when_it_is_up(
    escalations, conversation, make_worker, db, smtp_fake, clock
) -> None:
    smtp_fake.stop()
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker = make_worker()

    assert worker.run_once() == 2  # SMS and webhook do not wait for e-mail
    waits = []
    for attempt in (1, 2, 3):
        email = by_channel(db, "email")
        assert (email.status, email.attempts, email.last_error) == (
            "pending",
            attempt,
            "ConnectionRefusedError",
        )
        waits.append(email.next_attempt_at.replace(tzinfo=clock.now.tzinfo) - clock.now)
        clock.advance(waits[-1].total_seconds() - 1)
        assert worker.run_once() == 0, "not retried before its time"
        clock.advance(1)
        worker.run_once()
    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]

    smtp_fake.start()
    clock.advance(60)
    assert worker.run_once() == 1
    clock.advance(300)
    assert worker.run_once() == 0
    assert len(smtp_fake.received()) == 1
    assert by_channel(db, "email").status == "delivered"


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=30, max_attempts=10)
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_a_notification_that_keeps_failing_is_given_up_and_shows_as_failed(
    escalations, conversation, make_worker, db, smtp_fake, clock
) -> None:
    smtp_fake.stop()
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker = make_worker(policy=RetryPolicy(base_seconds=1, max_seconds=1, max_attempts=3))
    for _ in range(5):
        worker.run_once()
        clock.advance(5)
    email = by_channel(db, "email")
    assert (email.status, email.attempts) == ("failed", 3)
    smtp_fake.start()
    worker.run_once()
    assert smtp_fake.received() == []


def test_a_restart_after_delivery_sends_nothing_again(
    escalations, conversation, make_worker, smtp_fake, twilio_fake, webhook_fake, clock
) -> None:
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    make_worker().run_once()
    clock.advance(300)
    assert make_worker().run_once() == 0  # the app after a restart
    assert (len(smtp_fake.received()), len(twilio_fake.received()), len(webhook_fake.received())) == (1, 1, 1)


def test_a_worker_that_dies_mid_send_is_taken_over_after_its_lease_once(
    escalations, conversation, make_worker, settings, db, smtp_fake, clock
) -> None:
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    real = build_notifiers(settings)
    dying = make_worker({"email": DiesWhileSending(real["email"], after_provider_accepted=False)})
    with pytest.raises(ProcessKilled):
        dying.run_once()
    assert by_channel(db, "email").claimed_by == dying.worker_id

    restarted = make_worker()
    restarted.run_once()
    assert by_channel(db, "email").status == "pending", "the claim holds until its lease ends"
    assert smtp_fake.received() == []

    clock.advance(31)
    restarted.run_once()
    assert len(smtp_fake.received()) == 1
    assert by_channel(db, "email").status == "delivered"


def test_an_sms_accepted_just_before_the_worker_died_is_not_sent_again(
    escalations, conversation, make_worker, settings, db, twilio_fake, clock
) -> None:
    escalations.record(conversation, "emergency", ["allergic_airway"], "api", "my throat is tight")
    real = build_notifiers(settings)
    with pytest.raises(ProcessKilled):
        make_worker({"sms": DiesWhileSending(real["sms"], after_provider_accepted=True)}).run_once()
    [accepted] = twilio_fake.received()

    clock.advance(31)
    assert make_worker().run_once() >= 1
    sms = by_channel(db, "sms")
    assert (sms.status, sms.attempts, sms.provider_ref) == ("delivered", 2, accepted["sid"])
    assert len(twilio_fake.received()) == 1


def test_an_email_whose_fate_is_unknown_is_resent_with_the_same_message_id(
    escalations, conversation, make_worker, settings, smtp_fake, clock
) -> None:
    # SMTP cannot be asked whether a message arrived: the repeat carries the same Message-ID so the mail
    # system can drop it. This is the one at-least-once window; the test pins its behaviour down.
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    real = build_notifiers(settings)
    with pytest.raises(ProcessKilled):
        make_worker({"email": DiesWhileSending(real["email"], after_provider_accepted=True)}).run_once()
    clock.advance(31)
    make_worker().run_once()
    first, second = smtp_fake.received()
    assert first["message_id"] == second["message_id"]


def test_two_workers_racing_deliver_each_notification_once(
    db, escalations, make_worker, smtp_fake, twilio_fake, webhook_fake
) -> None:
    for n in range(6):
        escalations.record(start_conversation(db), "urgent", ["infection"], "api", f"pus {n}")
    workers = [make_worker() for _ in range(3)]
    barrier = threading.Barrier(len(workers))
    delivered: list[int] = []

    def run(worker) -> None:
        barrier.wait()
        delivered.append(worker.run_once())

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(delivered) == 18
    assert (len(smtp_fake.received()), len(twilio_fake.received()), len(webhook_fake.received())) == (6, 6, 6)
    assert len({m["message_id"] for m in smtp_fake.received()}) == 6


def test_an_unacknowledged_escalation_reminds_the_backup_contact_once(
    escalations, conversation, make_worker, db, twilio_fake, smtp_fake
) -> None:
    # Real time with a short delay: long enough that a slow first pass (a busy machine) is not yet due.
    escalations.clock = utcnow
    worker = make_worker(clock=utcnow, renotify_after=timedelta(seconds=1.5))
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker.run_once()
    assert [m["to"] for m in twilio_fake.received()] == [ON_CALL]

    time.sleep(1.7)
    worker.run_once()
    make_worker(clock=utcnow, renotify_after=timedelta(seconds=1.5)).run_once()  # a second instance

    texts = {m["to"]: m["body"] for m in twilio_fake.received()}
    assert [m["to"] for m in twilio_fake.received()] == [ON_CALL, BACKUP]
    assert "REMINDER" in texts[BACKUP] and "NOT acknowledged" in texts[BACKUP]
    assert sorted(m["rcpt_tos"][0] for m in smtp_fake.received()) == [
        "manager@clinic.test",
        "on-call@clinic.test",
    ]
    reminders = [row for row in rows(db) if row.kind == "reminder"]
    assert {(r.channel, r.recipient, r.status) for r in reminders} == {
        ("sms", BACKUP, "delivered"),
        ("email", "manager@clinic.test", "delivered"),
    }


def test_an_acknowledged_escalation_reminds_nobody(
    escalations, conversation, make_worker, twilio_fake, clock
):
    recorded = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker = make_worker()
    worker.run_once()
    escalations.acknowledge(recorded.escalation_id, "Dr Lee")
    clock.advance(3600)
    worker.run_once()
    assert [m["to"] for m in twilio_fake.received()] == [ON_CALL]


def test_a_reminder_queued_before_the_acknowledgement_is_cancelled(
    escalations, conversation, make_worker, db, twilio_fake, clock
) -> None:
    recorded = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    worker = make_worker()
    worker.run_once()
    clock.advance(601)
    assert worker.queue_reminders() == 1
    escalations.acknowledge(recorded.escalation_id, "Dr Lee")
    worker.run_once()
    assert [m["to"] for m in twilio_fake.received()] == [ON_CALL]
    assert {row.status for row in rows(db) if row.kind == "reminder"} == {"cancelled"}


# --- messages that are not staff alerts: patient replies, staff replies, check-ins ------------------------

PATIENT = "+15550001234"


def queue_reply(db, outbox, clock, channel: str = "sms", text: str = "Your treatment reply") -> int:
    with db.session() as session:
        row = outbox.add(
            session,
            kind="reply",
            channel=channel,
            recipient=PATIENT,
            priority=2,
            dedupe_key=f"reply-{channel}-{text}",
            body={"text": text, "subject": "from the clinic"},
            now=clock(),
        )
        session.flush()
        return row.id


def test_a_patient_reply_goes_to_its_recipient_with_its_own_text_once(
    make_worker, db, outbox, clock, twilio_fake
) -> None:
    row_id = queue_reply(db, outbox, clock)
    worker = make_worker()
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    [sms] = twilio_fake.received()
    assert (sms["to"], sms["body"]) == (PATIENT, "Your treatment reply")
    [row] = rows(db)
    assert (row.id, row.status, row.attempts, row.provider_ref) == (row_id, "delivered", 1, sms["sid"])
    assert row.delivered_at is not None and row.last_error is None and row.claimed_by is None


class Refuses:
    """A channel that must not send this message at all (the patient texted STOP)."""

    channel = "sms"

    def send(self, notice):
        raise DeliveryRefused("the patient opted out (STOP)")

    def already_delivered(self, notice):
        return None


def test_a_reply_that_must_not_be_sent_is_kept_as_refused_and_never_retried(
    make_worker, db, outbox, clock, twilio_fake
) -> None:
    queue_reply(db, outbox, clock)
    worker = make_worker({"sms": Refuses()})
    assert worker.run_once() == 0
    clock.advance(3600)
    assert worker.run_once() == 0
    [row] = rows(db)
    assert (row.status, row.attempts, row.claimed_by, row.claimed_until) == ("refused", 1, None, None)
    assert row.last_error == "the patient opted out (STOP)"
    assert twilio_fake.received() == []


def test_a_reply_for_a_channel_with_no_notifier_waits_and_is_retried_later(
    make_worker, db, outbox, clock
) -> None:
    queue_reply(db, outbox, clock, channel="whatsapp")
    worker = make_worker()
    assert worker.run_once() == 0
    [row] = rows(db)
    assert (row.status, row.attempts, row.last_error, row.claimed_by) == (
        "pending",
        1,
        "channel not configured",
        None,
    )
    assert as_utc(row.next_attempt_at) > clock()
    assert worker.run_once() == 0  # not due yet: not tried again
    assert rows(db)[0].attempts == 1
