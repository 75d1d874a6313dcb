"""Recording escalations: atomic with their notifications, idempotent, safe under concurrent duplicates."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from bot.escalation.models import Escalation
from bot.outbox.models import OutboxMessage
from tests.conftest import ON_CALL, start_conversation

TEXT = "my chin has yellow pus and I feel feverish"


def count(db, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_escalation_is_stored_with_one_notification_per_staff_channel(
    db, escalations, conversation
) -> None:
    recorded = escalations.record(conversation, "urgent", ["infection", "fever"], "api", TEXT)

    assert recorded.created
    with db.session() as session:
        escalation = session.get(Escalation, recorded.escalation_id)
        notifications = session.scalars(select(OutboxMessage)).all()
    assert (escalation.conversation_id, escalation.severity, escalation.channel) == (
        conversation,
        "urgent",
        "api",
    )
    assert escalation.concepts == ["infection", "fever"]
    assert escalation.patient_text == TEXT
    assert escalation.acknowledged_at is None
    assert sorted((n.channel, n.kind, n.status) for n in notifications) == [
        ("email", "alert", "pending"),
        ("sms", "alert", "pending"),
        ("webhook", "alert", "pending"),
    ]
    assert {n.recipient for n in notifications if n.channel == "sms"} == {ON_CALL}


def test_the_same_red_flag_again_within_the_window_is_the_same_escalation(
    db, escalations, conversation, clock
):
    first = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    clock.advance(60)
    again = escalations.record(
        conversation, "urgent", ["infection"], "api", "  My chin has YELLOW pus and I feel  feverish "
    )

    assert again.escalation_id == first.escalation_id
    assert not again.created
    assert count(db, Escalation) == 1
    assert count(db, OutboxMessage) == 3


def test_after_the_window_the_same_red_flag_is_news(db, escalations, conversation, clock) -> None:
    first = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    clock.advance(25 * 3600)
    later = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    clock.advance(60)
    repeat_of_later = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)

    assert later.created and later.escalation_id != first.escalation_id
    assert repeat_of_later.escalation_id == later.escalation_id and not repeat_of_later.created
    assert count(db, Escalation) == 2
    assert count(db, OutboxMessage) == 6


def test_other_text_or_other_conversation_is_another_escalation(db, escalations, conversation) -> None:
    other_conversation = start_conversation(db)
    ids = {
        escalations.record(conversation, "urgent", ["infection"], "api", TEXT).escalation_id,
        escalations.record(conversation, "urgent", ["bleeding"], "api", "it keeps bleeding").escalation_id,
        escalations.record(other_conversation, "urgent", ["infection"], "api", TEXT).escalation_id,
    }
    assert len(ids) == 3


def test_concurrent_duplicates_make_one_escalation(db, escalations, conversation) -> None:
    barrier = threading.Barrier(8)

    def send_duplicate(_: int):
        barrier.wait()  # all threads hit the database at the same moment
        return escalations.record(
            conversation, "emergency", ["allergic_airway"], "api", "my throat feels tight"
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send_duplicate, range(8)))

    assert len({r.escalation_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count(db, Escalation) == 1
    assert count(db, OutboxMessage) == 3


def test_only_urgent_and_emergency_are_escalated(escalations, conversation) -> None:
    with pytest.raises(ValueError):
        escalations.record(conversation, "routine", ["redness"], "api", "my face is red")


def test_listeners_hear_of_new_escalations_only(escalations, outbox, conversation) -> None:
    heard: list[int] = []
    unsubscribe = outbox.subscribe(lambda: heard.append(1))
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    unsubscribe()
    escalations.record(conversation, "urgent", ["bleeding"], "api", "bleeding will not stop")
    assert heard == [1]


def test_acknowledging_is_recorded_once(escalations, conversation, clock) -> None:
    recorded = escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    first = escalations.acknowledge(recorded.escalation_id, "Dr Lee")
    clock.advance(30)
    second = escalations.acknowledge(recorded.escalation_id, "Someone else")

    assert first.acknowledged_by == second.acknowledged_by == "Dr Lee"
    assert escalations.acknowledge(999, "Dr Lee") is None
    assert [e.id for e in escalations.recent("acknowledged")] == [recorded.escalation_id]
    assert escalations.recent("open") == []


def test_the_patient_text_is_never_logged(escalations, conversation, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
        escalations.record(conversation, "urgent", ["infection"], "api", TEXT)
    assert caplog.records, "recording an escalation leaves an audit line"
    assert all("pus" not in record.getMessage() for record in caplog.records)
