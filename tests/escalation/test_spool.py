"""The escalation spool (issue 7, "the clinic team has been alerted" must be true; issue 8, mutation of the
escalation service): what a spooled escalation keeps, how it is drained into the database, what a damaged
entry does, and the per-source cap's window. The database failing for real is in
`tests/hardening/test_promises.py`; here `write_attempts=0` goes straight to the spool, as the pipeline does
when it has just seen the database fail."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

from sqlalchemy import select

from bot.escalation.models import Escalation
from bot.escalation.service import source_key
from bot.models import Conversation
from bot.outbox.models import PRIORITY, OutboxMessage
from tests.conftest import start_conversation

TEXT = "my chin has yellow pus and I feel feverish"
SOURCE = "203.0.113.5"


def spool_files(escalations) -> list[str]:
    return sorted(path.name for path in escalations.spool_dir.iterdir())


def rows(db, model) -> list:
    with db.session() as session:
        found = list(session.scalars(select(model).order_by(model.id)))
        session.expunge_all()
    return found


def spool(escalations, conversation: str, severity: str = "urgent", signs=("local_infection",), **kw):
    return escalations.record(conversation, severity, list(signs), "sms", TEXT, write_attempts=0, **kw)


def test_a_spooled_escalation_keeps_everything_and_is_drained_with_its_own_time(
    db, escalations, conversation, clock
) -> None:
    spooled_at = clock()
    recorded = spool(escalations, conversation, "emergency", ["airway", "anaphylaxis"], source=SOURCE)

    assert (recorded.escalation_id, recorded.status, recorded.alerted) == (None, "spooled", True)
    [name] = spool_files(escalations)
    assert name.endswith(".json"), "written to a temporary file, then renamed: nothing half-written is left"
    entry = json.loads((escalations.spool_dir / name).read_text())
    assert entry == {
        "conversation_id": conversation,
        "severity": "emergency",
        "signs": ["airway", "anaphylaxis"],
        "channel": "sms",
        "text": TEXT,
        "source": source_key(SOURCE),
        "at": spooled_at.isoformat(),
    }
    assert rows(db, Escalation) == []

    clock.advance(300)
    assert escalations.drain_spool() == 1

    [escalation] = rows(db, Escalation)
    assert (escalation.conversation_id, escalation.severity) == (conversation, "emergency")
    assert escalation.channel == "sms"
    assert (escalation.concepts, escalation.patient_text, escalation.aggregated) == (
        ["airway", "anaphylaxis"],
        TEXT,
        0,
    )
    assert escalation.created_at.replace(tzinfo=spooled_at.tzinfo) == spooled_at, "when the patient said it"
    assert escalation.dedupe_key == f"spool-{name.removesuffix('.json')}"
    assert escalation.source == source_key(SOURCE)
    alerts = rows(db, OutboxMessage)
    assert sorted(alert.channel for alert in alerts) == ["email", "sms", "webhook"]
    assert {(a.kind, a.priority, a.escalation_id) for a in alerts} == {
        ("alert", PRIORITY["emergency"], escalation.id)
    }
    assert spool_files(escalations) == []
    assert escalations.drain_spool() == 0, "drained once"


def test_draining_creates_the_conversation_the_database_never_got(db, escalations) -> None:
    conversation = uuid.uuid4().hex  # the database failed before the conversation was stored
    spool(escalations, conversation)

    assert escalations.drain_spool() == 1
    [stored] = rows(db, Conversation)
    assert (stored.id, stored.channel) == (conversation, "sms")
    assert [e.conversation_id for e in rows(db, Escalation)] == [conversation]


def test_a_spooled_escalation_staff_were_told_of_meanwhile_is_not_alerted_again(
    db, escalations, conversation
) -> None:
    first = escalations.record(conversation, "urgent", ["local_infection"], "sms", TEXT)
    spool(escalations, conversation)

    assert escalations.drain_spool() == 1, "counted as drained: the file is gone"
    assert [e.id for e in rows(db, Escalation)] == [first.escalation_id]
    assert len(rows(db, OutboxMessage)) == 3, "the first escalation's alerts only"
    assert spool_files(escalations) == []


def test_every_spooled_escalation_is_drained_in_one_pass(db, escalations) -> None:
    conversations = [start_conversation(db) for _ in range(3)]
    for conversation in conversations:
        spool(escalations, conversation)

    assert escalations.drain_spool() == 3
    assert sorted(e.conversation_id for e in rows(db, Escalation)) == sorted(conversations)
    assert len(rows(db, OutboxMessage)) == 9


def test_a_damaged_entry_is_set_aside_and_holds_back_nothing(db, escalations, conversation, caplog) -> None:
    spool(escalations, conversation)
    escalations.spool_dir.joinpath("0-truncated.json").write_text('{"conversation_id": "abc", "sev')
    escalations.spool_dir.joinpath("1-wrong-level.json").write_text(
        json.dumps({"conversation_id": "abc", "severity": "routine", "signs": [], "channel": "sms",
                    "text": "x", "source": None, "at": "2026-03-02T09:00:00+00:00"})
    )  # fmt: skip
    escalations.spool_dir.joinpath("2-no-time.json").write_text(
        json.dumps({"conversation_id": "abc", "severity": "urgent", "signs": ["x"], "channel": "sms",
                    "text": "x"})
    )  # fmt: skip
    caplog.set_level(logging.ERROR, logger="bot.escalation.service")

    assert escalations.drain_spool() == 1, "the good entry, although it sorts after the damaged ones"
    assert [e.conversation_id for e in rows(db, Escalation)] == [conversation]
    assert spool_files(escalations) == [
        "0-truncated.unreadable",
        "1-wrong-level.unreadable",
        "2-no-time.unreadable",
    ]
    assert caplog.text.count("unreadable, set aside") == 3
    assert escalations.drain_spool() == 0, "set aside once, not re-read every pass"


def test_with_no_spool_folder_a_refused_escalation_is_failed_and_not_promised(db, escalations, conversation):
    escalations.spool_dir = None
    recorded = spool(escalations, conversation)

    assert (recorded.escalation_id, recorded.status, recorded.alerted) == (None, "failed", False)
    assert escalations.drain_spool() == 0


def test_a_spool_folder_not_made_yet_drains_nothing(escalations) -> None:
    assert not escalations.spool_dir.exists()
    assert escalations.drain_spool() == 0


# --- the per-source cap ---------------------------------------------------------------------------------


def test_escalations_without_a_source_are_never_capped(db, escalations) -> None:
    escalations.source_cap = 1
    recorded = [escalations.record(start_conversation(db), "urgent", ["x"], "api", TEXT) for _ in range(3)]
    assert [r.status for r in recorded] == ["new", "new", "new"]


def test_the_cap_counts_only_the_sources_alerts_within_its_window(db, escalations, clock) -> None:
    escalations.source_cap = 1
    escalations.source_window = timedelta(hours=1)

    def record():
        return escalations.record(start_conversation(db), "urgent", ["x"], "api", TEXT, SOURCE).status

    assert record() == "new"
    clock.advance(59 * 60)
    assert record() == "aggregated", "the first alert is 59 minutes old"
    clock.advance(2 * 60)
    assert record() == "new", "61 minutes: the first alert is out of the window; the folded one never alerted"
    assert record() == "aggregated"
    [first, folded, second, folded_again] = rows(db, Escalation)
    assert (first.aggregated, second.aggregated) == (1, 1), "each folded into the source's latest alert"
    assert (folded.aggregated, folded_again.aggregated) == (0, 0)
