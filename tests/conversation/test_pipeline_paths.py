"""The pipeline's own decisions, message by message: the treatment day it triages with and remembers, what
Rasa is asked and told, the order of the messages the patient gets, clarifying questions, unsure reports,
rate-limited messages, other languages, and what happens when Rasa or the database is gone.

`ChatPipeline.handle` is called as the channels call it, with the real triage engine, a real (SQLite)
database and the real escalation service; Rasa is the in-process stand-in of tests/escalation/stubs.py
extended to record what it is sent (what the real Rasa answers is tested end to end in tests/e2e).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.conversation.pipeline import (
    RED_FLAG_INTENT,
    STAGE_QUESTION,
    STOP_CLARIFYING_INTENT,
    TEXT_GUARD,
    UNSURE_INTENT,
    ChatPipeline,
    IncomingMessage,
    PipelineResult,
)
from bot.db import Database
from bot.models import Conversation, Message, TriageReview
from bot.rasa_client import RasaUnavailable
from bot.services import Services
from knowledge.clinic import load_clinic_profile
from tests.escalation.stubs import EMERGENCY_TEXT, ROUTINE_TEXT, URGENT_TEXT, stub_services, triage_engine
from tests.safety.handmade import HandMadeEmbedder, learned_layer

CLINIC = load_clinic_profile()
SPANISH_URGENT = "me sale pus de la barbilla desde ayer"
LATE_REDNESS = "my face is a bit red"  # expected up to day 4, a red flag after


def answer(text: str = "Here is what the clinic says.", kind: str = "answer", **extra: Any) -> dict:
    """One message as Rasa's REST channel returns it from a custom action."""
    return {"recipient_id": "x", "custom": {"text": text, "kind": kind, **extra}}


class RecordingRasa:
    """Stands in for the Rasa server: records every call with its metadata; answers each patient text with
    one article answer, intents with nothing, unless `replies` says otherwise."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.replies: dict[str, list[dict]] = {}

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        if self.down:
            raise RasaUnavailable("ConnectError")
        self.calls.append((text, metadata))
        if text in self.replies:
            return self.replies[text]
        return [] if text.startswith("/") else [answer()]

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.calls]

    async def is_alive(self) -> bool:
        return not self.down

    async def close(self) -> None:
        """Nothing to release."""


def build(settings, db: Database, verdicts: dict | None = None, **setting_overrides) -> Services:
    services = stub_services(settings.model_copy(update=setting_overrides), db)
    services.rasa = RecordingRasa()  # type: ignore[assignment]
    if verdicts is not None:
        engine = copy.copy(triage_engine())
        engine.learned = learned_layer(HandMadeEmbedder(verdicts))
        services.triage = engine
    return services


@pytest.fixture
def services(settings, db) -> Services:
    return build(settings, db)


@pytest.fixture
def pipeline(services: Services) -> ChatPipeline:
    return ChatPipeline(services)


class Chat:
    """One patient's conversation through the pipeline, as a channel adapter drives it."""

    def __init__(self, pipeline: ChatPipeline) -> None:
        self.pipeline = pipeline
        self.conversation_id: str | None = None

    def says(self, text: str, **fields: Any) -> PipelineResult:
        incoming = IncomingMessage(text=text, conversation_id=self.conversation_id, **fields)
        result = asyncio.run(self.pipeline.handle(incoming))
        self.conversation_id = result.conversation_id
        return result

    def conversation(self) -> Conversation:
        with self.pipeline.services.db.session() as session:
            row = session.get(Conversation, self.conversation_id)
            session.expunge(row)
            return row

    def set(self, **values: Any) -> None:
        with self.pipeline.services.db.session() as session:
            row = session.get(Conversation, self.conversation_id)
            for name, value in values.items():
                setattr(row, name, value)


def kinds(result: PipelineResult) -> list[str]:
    return [message.kind for message in result.messages]


def rasa(pipeline: ChatPipeline) -> RecordingRasa:
    return pipeline.services.rasa  # type: ignore[return-value]


# --- the treatment day ----------------------------------------------------------------------------------


def test_the_treatment_date_the_channel_gives_is_the_day_triage_reads_with(pipeline, services) -> None:
    today = services.today()
    late = Chat(pipeline).says(LATE_REDNESS, treatment_date=today - timedelta(days=6))
    early = Chat(pipeline).says(LATE_REDNESS, treatment_date=today - timedelta(days=2))
    unknown = Chat(pipeline).says(LATE_REDNESS)

    assert (late.triage.level, late.triage.signs) == ("urgent", ("prolonged_effects",))
    assert early.triage.level == unknown.triage.level == "routine"


def test_the_treatment_date_is_remembered_for_the_next_messages(pipeline, services) -> None:
    chat = Chat(pipeline)
    treated = services.today() - timedelta(days=6)
    chat.says("hello", treatment_date=treated)
    later = chat.says(LATE_REDNESS)

    assert later.triage.level == "urgent" and later.triage.signs[0] == "prolonged_effects"
    assert chat.conversation().treatment_date == treated
    assert rasa(pipeline).calls[-1][1]["treatment_date"] == treated.isoformat()


def test_a_treatment_day_the_message_states_is_remembered(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says("I had my treatment 6 days ago")
    later = chat.says(LATE_REDNESS)

    assert later.triage.level == "urgent"


def test_a_message_that_does_not_name_the_treatment_keeps_the_known_date(pipeline, services) -> None:
    chat = Chat(pipeline)
    treated = services.today() - timedelta(days=3)
    chat.says("hello", treatment_date=treated)
    chat.says("can I wear makeup tonight?")
    assert chat.conversation().treatment_date == treated

    chat.says("sorry, my treatment was 5 days ago actually")
    assert chat.conversation().treatment_date == services.today() - timedelta(days=5)


def test_a_treatment_today_is_remembered_and_one_in_the_future_is_not(pipeline, services) -> None:
    today = services.today()
    treated_today = Chat(pipeline)
    treated_today.says("hello", treatment_date=today)
    booked = Chat(pipeline)
    booked.says("hello", treatment_date=today + timedelta(days=3))

    assert treated_today.conversation().treatment_date == today
    assert booked.conversation().treatment_date is None


# --- what Rasa is asked and told --------------------------------------------------------------------------


def test_rasa_is_told_the_conversations_facts_and_the_triage_with_each_message(pipeline, services) -> None:
    treated = services.today() - timedelta(days=1)
    chat = Chat(pipeline)
    result = chat.says(URGENT_TEXT, treatment_date=treated, channel="sms")

    assert rasa(pipeline).texts == [RED_FLAG_INTENT, URGENT_TEXT]
    _, metadata = rasa(pipeline).calls[0]
    assert metadata == {
        "treatment_date": treated.isoformat(),
        "stage": "after",  # a known treatment date: the treatment has happened
        "channel": "sms",
        "triage": {
            "level": "urgent",
            "concepts": list(result.triage.signs),
            "unsure": False,
            "language": "en",
            "escalation": "new",
            "alerted": True,
        },
    }
    assert result.triage.signs[0] == "local_infection"


def test_a_calm_message_is_passed_to_rasa_as_it_is_and_without_a_date(pipeline) -> None:
    result = Chat(pipeline).says("can I wear makeup tomorrow?")

    [(text, metadata)] = rasa(pipeline).calls
    assert text == "can I wear makeup tomorrow?"
    assert metadata["treatment_date"] is None and metadata["channel"] == "api"
    assert metadata["triage"]["escalation"] == "none" and metadata["triage"]["alerted"] is False
    assert kinds(result) == ["answer"]


def test_patient_text_that_looks_like_a_rasa_command_is_sent_as_text(pipeline) -> None:
    Chat(pipeline).says("/restart")

    assert rasa(pipeline).texts == [TEXT_GUARD + "/restart"]


def test_a_new_rasa_session_is_started_every_few_turns(settings, db) -> None:
    pipeline = ChatPipeline(build(settings, db, rasa_session_turns=2))
    chat = Chat(pipeline)
    for text in ("hello", "can I wear makeup?", "can I go running?"):
        chat.says(text)

    assert rasa(pipeline).texts == ["hello", "can I wear makeup?", "/session_start", "can I go running?"]


def test_no_new_rasa_session_while_a_clarifying_question_waits_for_its_answer(settings, db) -> None:
    pipeline = ChatPipeline(build(settings, db, rasa_session_turns=2))
    chat = Chat(pipeline)
    chat.says("hello")
    chat.set(pending_question="fever")
    chat.says("no")  # turn 2 answers the question
    chat.set(pending_question="spreading")
    chat.says("no")  # turn 3 would open a session: it answers a question, so Rasa's form goes on

    assert "/session_start" not in rasa(pipeline).texts
    assert rasa(pipeline).texts == ["hello", "no", "no"]


def test_an_emergency_asks_rasa_for_the_red_flag_only_and_gets_one_instruction(pipeline) -> None:
    result = Chat(pipeline).says(EMERGENCY_TEXT + ". Can I wear makeup tomorrow?")

    assert rasa(pipeline).texts == [RED_FLAG_INTENT]
    assert kinds(result) == ["escalation"]
    assert result.messages[0].text.startswith(f"Call {CLINIC.emergency_number} now")
    assert result.messages[0].alerted is True


def test_the_pipelines_red_flag_message_comes_first_and_replaces_rasas(pipeline) -> None:
    rasa(pipeline).replies[RED_FLAG_INTENT] = [answer("Rasa's own copy of the advice", kind="escalation")]
    result = Chat(pipeline).says(URGENT_TEXT)

    assert kinds(result) == ["escalation", "answer"]
    escalation = result.messages[0]
    assert "Rasa's own copy" not in escalation.text
    assert escalation.text.endswith("The clinic team has been alerted.")
    assert [b.title for b in escalation.buttons] == ["Talk to a person"]


def test_an_expected_effect_with_an_article_answer_gets_the_article(pipeline) -> None:
    rasa(pipeline).replies[ROUTINE_TEXT] = [answer("Redness settles in a few days.", sources=[])]
    result = Chat(pipeline).says(ROUTINE_TEXT)

    assert [(m.kind, m.text, m.triage) for m in result.messages] == [
        ("answer", "Redness settles in a few days.", "routine")
    ]


def test_an_expected_effect_gets_the_protocols_reassurance_instead_of_i_dont_know(pipeline) -> None:
    rasa(pipeline).replies[ROUTINE_TEXT] = [
        answer("I don't know, please call the clinic.", kind="fallback"),
        {"recipient_id": "x", "text": "Anything else?"},
    ]
    result = Chat(pipeline).says(ROUTINE_TEXT)

    assert kinds(result) == ["answer", "smalltalk"]
    assert result.messages[0].text == pipeline.wording.for_routine(result.triage).text
    assert {m.triage for m in result.messages} == {"routine"}


def test_a_reply_with_nothing_in_it_is_the_call_the_clinic_message(pipeline) -> None:
    rasa(pipeline).replies["hello"] = []
    result = Chat(pipeline).says("hello")

    assert kinds(result) == ["fallback"]
    assert CLINIC.phone in result.messages[0].text


def test_rasa_down_an_expected_effect_still_gets_its_reassurance_and_the_clinics_phone(pipeline) -> None:
    rasa(pipeline).down = True
    result = Chat(pipeline).says(ROUTINE_TEXT)

    assert kinds(result) == ["answer", "fallback"]
    assert result.messages[0].text == pipeline.wording.for_routine(result.triage).text
    assert CLINIC.phone in result.messages[1].text


def test_a_message_in_another_language_gets_its_triage_and_a_notice_in_that_language(pipeline) -> None:
    result = Chat(pipeline).says(SPANISH_URGENT)

    assert result.triage.language == "es"
    assert kinds(result) == ["escalation", "fallback"]
    assert result.messages[1].text == pipeline.services.replies.text("other_language", "es")
    assert rasa(pipeline).calls == [], "Rasa and the articles are English"


# --- after the red flag -------------------------------------------------------------------------------------


def test_after_staff_were_alerted_the_next_message_gets_its_own_answer_at_the_same_level(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says(URGENT_TEXT)
    later = chat.says("thanks, can I wash my face tonight?")

    assert kinds(later) == ["answer"], "no second red-flag instruction: staff already know"
    assert {m.triage for m in later.messages} == {"urgent"}
    assert later.triage.level == "urgent"
    assert rasa(pipeline).texts[-1] == "thanks, can I wash my face tonight?"
    assert len(pipeline.services.escalations.recent()) == 1


def test_the_same_red_flag_said_again_gets_the_instruction_and_already_alerted(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says(URGENT_TEXT)
    again = chat.says("still yellow pus coming out of my chin")

    assert kinds(again)[0] == "escalation"
    assert again.messages[0].text.endswith("The clinic team already knows about this conversation.")


# --- rate-limited messages --------------------------------------------------------------------------------


def test_a_rate_limited_red_flag_is_triaged_and_escalated_but_not_answered(pipeline) -> None:
    result = Chat(pipeline).says(URGENT_TEXT, answer=False)

    assert rasa(pipeline).texts == [RED_FLAG_INTENT]
    assert kinds(result) == ["escalation", "fallback"]
    assert result.messages[-1].text == pipeline.services.replies.text("slow_down")
    assert len(pipeline.services.escalations.recent()) == 1


def test_a_rate_limited_question_gets_only_the_slow_down(pipeline) -> None:
    result = Chat(pipeline).says("can I wear makeup?", answer=False)

    assert rasa(pipeline).texts == []
    assert [(m.kind, m.text) for m in result.messages] == [
        ("fallback", pipeline.services.replies.text("slow_down"))
    ]


# --- clarifying questions -----------------------------------------------------------------------------------


def asked(pipeline: ChatPipeline, question: str) -> Chat:
    """A conversation in which the assistant has just asked a clarifying question."""
    chat = Chat(pipeline)
    chat.says("hello")
    chat.set(pending_question=question)
    rasa(pipeline).calls.clear()
    return chat


def test_yes_to_a_clarifying_question_raises_its_red_flag(pipeline) -> None:
    result = asked(pipeline, "spreading").says("yes")

    assert (result.triage.level, result.triage.signs) == ("urgent", ("local_infection",))
    assert result.triage.reply == pipeline.services.triage.reply_for("local_infection")
    assert rasa(pipeline).texts == [RED_FLAG_INTENT], "a yes that raised a red flag has nothing to answer"
    assert kinds(result) == ["escalation"]
    [escalation] = pipeline.services.escalations.recent()
    assert escalation.concepts == ["local_infection"]


def test_yes_to_the_breathing_question_is_an_emergency(pipeline) -> None:
    result = asked(pipeline, "breathing").says("yes")

    assert (result.triage.level, result.triage.signs) == ("emergency", ("airway_breathing",))
    assert result.triage.layers.get("clarifying") == "emergency"


def test_no_to_a_clarifying_question_raises_nothing_and_is_passed_on(pipeline) -> None:
    result = asked(pipeline, "breathing").says("no")

    assert result.triage.level == "none"
    assert rasa(pipeline).texts == ["no"]


def test_moving_on_from_a_clarifying_question_tells_rasa_to_stop_asking(pipeline) -> None:
    asked(pipeline, "fever").says("can I wear makeup?")

    assert rasa(pipeline).texts == [STOP_CLARIFYING_INTENT, "can I wear makeup?"]


def test_a_question_the_protocol_no_longer_has_raises_nothing(pipeline) -> None:
    result = asked(pipeline, "retired-question").says("yes")

    assert result.triage.level == "none"


# --- the treatment stage -----------------------------------------------------------------------------------


def test_a_coming_appointment_sets_the_stage_and_rasa_is_told(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says("hello")
    assert chat.conversation().stage is None
    chat.says("my microneedling appointment is next Friday")

    assert chat.conversation().stage == "before"
    assert rasa(pipeline).calls[-1][1]["stage"] == "before"


def test_a_time_word_is_no_treatment_date_once_the_treatment_is_known_to_be_coming(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says("I'm seeing you for microneedling tomorrow morning")
    chat.says("should I use my exfoliating toner tonight?")

    assert (chat.conversation().stage, chat.conversation().treatment_date) == ("before", None)
    chat.says("sorry, I actually had the treatment yesterday")
    assert chat.conversation().treatment_date == pipeline.services.today() - timedelta(days=1)
    assert chat.conversation().stage == "after"


def test_a_known_treatment_date_means_the_treatment_has_happened(pipeline) -> None:
    chat = Chat(pipeline)
    chat.says("my appointment is next Friday")
    chat.says("hello", treatment_date=pipeline.services.today() - timedelta(days=2))

    assert chat.conversation().stage == "after"


@pytest.mark.parametrize("reply", ["It's coming up", "I've already had it"])
def test_an_answer_to_the_stage_question_goes_to_rasa_as_an_answer(pipeline, reply) -> None:
    asked(pipeline, STAGE_QUESTION).says(reply)

    assert rasa(pipeline).texts == [reply], "an answer is not a patient moving on"


def test_moving_on_from_the_stage_question_tells_rasa_to_stop_asking(pipeline) -> None:
    asked(pipeline, STAGE_QUESTION).says("how many sessions will I need?")

    assert rasa(pipeline).texts == [STOP_CLARIFYING_INTENT, "how many sessions will I need?"]


# --- unsure reports --------------------------------------------------------------------------------------


@pytest.fixture
def unsure_pipeline(settings, db) -> ChatPipeline:
    """The learned layer cannot place "weird": a grey-zone report."""
    return ChatPipeline(build(settings, db, verdicts={"weird": (0.4, 0.05, 0.1)}))


def test_an_unsure_report_gets_safety_netting_first_and_goes_on_the_review_list(unsure_pipeline) -> None:
    chat = Chat(unsure_pipeline)
    result = chat.says("my face feels weird")

    assert result.triage.unsure and result.triage.level == "none"
    assert rasa(unsure_pipeline).texts == ["my face feels weird", UNSURE_INTENT]
    assert kinds(result) == ["escalation", "answer"]
    assert result.messages[0].text == unsure_pipeline.wording.safety_net(result.triage).text
    with unsure_pipeline.services.db.session() as session:
        reviews = session.scalars(select(TriageReview)).all()
        assert [(r.conversation_id, r.text, r.reason, r.level) for r in reviews] == [
            (chat.conversation_id, "my face feels weird", "unsure", "none")
        ]


def test_an_unsure_report_whose_rasa_reply_already_nets_it_gets_no_second_net(unsure_pipeline) -> None:
    rasa(unsure_pipeline).replies[UNSURE_INTENT] = [answer("Rasa's safety net", kind="escalation")]
    result = Chat(unsure_pipeline).says("my face feels weird")

    assert kinds(result) == ["answer", "escalation"]
    assert result.messages[1].text == "Rasa's safety net"


def test_an_unsure_report_while_a_question_is_pending_asks_no_new_question(unsure_pipeline) -> None:
    asked(unsure_pipeline, "fever").says("my face feels weird")

    assert UNSURE_INTENT not in rasa(unsure_pipeline).texts


def test_an_unsure_rate_limited_report_is_netted_but_asks_nothing(unsure_pipeline) -> None:
    result = Chat(unsure_pipeline).says("my face feels weird", answer=False)

    assert rasa(unsure_pipeline).texts == []
    assert kinds(result) == ["escalation", "fallback"]


def test_when_triage_itself_fails_the_patient_gets_safety_netting(settings, db, caplog) -> None:
    services = build(settings, db)
    broken = copy.copy(triage_engine())
    broken.rules = None  # the engine breaks on every message
    services.triage = broken
    pipeline = ChatPipeline(services)
    with caplog.at_level(logging.ERROR):
        result = Chat(pipeline).says("my face feels weird")

    assert (result.triage.level, result.triage.unsure) == ("none", True)
    assert kinds(result)[0] == "escalation"
    assert "triage failed: AttributeError" in [r.getMessage() for r in caplog.records]
    assert all("weird" not in r.getMessage() for r in caplog.records)


# --- what is kept ---------------------------------------------------------------------------------------


def test_every_reply_is_kept_with_its_kind_level_sources_and_alert(pipeline) -> None:
    source = {"id": "infection", "title": "Infection", "version": 3}
    rasa(pipeline).replies[URGENT_TEXT] = [answer(sources=[source])]
    chat = Chat(pipeline)
    chat.says(URGENT_TEXT)

    with pipeline.services.db.session() as session:
        kept = session.scalars(
            select(Message).where(Message.conversation_id == chat.conversation_id).order_by(Message.id)
        ).all()
        rows = [(m.sender, m.kind, m.triage, m.sources, m.alerted) for m in kept]
    assert rows == [
        ("patient", None, None, None, None),
        ("assistant", "escalation", "urgent", None, True),
        ("assistant", "answer", "urgent", [source], None),
    ]


def test_each_message_leaves_one_log_line_with_its_reference_and_level_but_no_text(pipeline, caplog) -> None:
    chat = Chat(pipeline)
    with caplog.at_level(logging.INFO, logger="bot.conversation.pipeline"):
        chat.says(URGENT_TEXT, channel="sms")

    reference = chat.conversation().reference
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.conversation.pipeline"]
    assert line == f"message conversation={reference} channel=sms triage=urgent escalation=new"


# --- the database gone --------------------------------------------------------------------------------------


@pytest.fixture
def no_database(settings, tmp_path) -> ChatPipeline:
    """The database file cannot be opened (its folder is gone); the escalation spool still works."""
    gone = Database(f"sqlite:///{tmp_path / 'missing' / 'app.db'}")
    return ChatPipeline(build(settings, gone))


def test_with_the_database_gone_a_red_flag_is_spooled_and_the_patient_told_to_call(no_database) -> None:
    result = Chat(no_database).says(URGENT_TEXT)

    assert result.conversation_id is None
    assert kinds(result) == ["escalation", "fallback"]
    assert result.messages[0].alerted is True, "the spool is durable: staff will be told"
    assert CLINIC.phone in result.messages[1].text
    spool = no_database.services.escalations.spool_dir
    assert len(list(spool.glob("*.json"))) == 1
    assert rasa(no_database).calls == []


def test_with_the_database_gone_a_question_gets_the_call_the_clinic_message(no_database) -> None:
    result = Chat(no_database).says("can I wear makeup?")

    assert kinds(result) == ["fallback"]
    assert result.triage.level == "none"
    assert not no_database.services.escalations.spool_dir.exists()
