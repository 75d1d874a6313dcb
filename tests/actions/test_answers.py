"""The answering actions, with the real knowledge base and no Rasa server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.answers import (
    ActionAnswerQuestion,
    ActionOutOfScope,
    ActionRememberTreatmentDate,
    ActionSmallTalk,
)
from bot.models import UnansweredQuestion

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def run(action, tracker) -> tuple[list, list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return events, [message["custom"] for message in dispatcher.messages]


async def test_question_is_answered_with_its_source(app_services, tracker_for) -> None:
    events, messages = await run(
        ActionAnswerQuestion(), tracker_for("can I put makeup on tomorrow", "ask_makeup")
    )
    assert len(messages) == 1
    assert messages[0]["kind"] == "answer"
    assert messages[0]["sources"] and all({"id", "title"} <= set(s) for s in messages[0]["sources"])
    assert "makeup" in messages[0]["text"].lower()
    # The article is remembered as the topic, for a follow-up such as "and the day after?".
    assert events == [SlotSet("topic", messages[0]["sources"][0]["id"])]


async def test_treatment_date_from_metadata_is_remembered_in_the_slot(app_services, tracker_for) -> None:
    two_days_ago = (app_services.today() - timedelta(days=2)).isoformat()
    tracker = tracker_for("why is my face red", "ask_redness", metadata={"treatment_date": two_days_ago})
    events, messages = await run(ActionAnswerQuestion(), tracker)
    assert SlotSet("treatment_date", two_days_ago) in events
    assert "sunburn" in messages[0]["text"].lower()


async def test_late_redness_is_not_called_expected(app_services, tracker_for) -> None:
    nine_days_ago = (app_services.today() - timedelta(days=9)).isoformat()
    tracker = tracker_for("why is my face red", "ask_redness", treatment_date=nine_days_ago)
    _, messages = await run(ActionAnswerQuestion(), tracker)
    text = messages[0]["text"].lower()
    assert "clinic" in text
    assert "like a moderate sunburn" not in text


async def test_unanswerable_question_falls_back_and_is_recorded(app_services, tracker_for) -> None:
    tracker = tracker_for("what's the price of lip filler", "ask_procedure")
    _, messages = await run(ActionAnswerQuestion(), tracker)
    assert messages[0]["kind"] == "fallback"
    assert app_services.clinic.phone in messages[0]["text"]
    assert not messages[0]["sources"]
    with app_services.db.session() as session:
        recorded = session.scalars(select(UnansweredQuestion)).all()
    assert any("lip filler" in row.question for row in recorded)


async def test_out_of_scope_action_points_to_the_clinic(app_services, tracker_for) -> None:
    _, messages = await run(ActionOutOfScope(), tracker_for("do you sell gift cards", "out_of_scope"))
    assert messages[0]["kind"] == "fallback"
    assert app_services.clinic.phone in messages[0]["text"]


async def test_out_of_scope_still_lets_the_answerer_decide(app_services, tracker_for) -> None:
    """NLU can be wrong about scope: a question an article clearly answers is answered from it."""
    question = "how long should i wait before wearing makeup after microneedling"
    _, messages = await run(ActionOutOfScope(), tracker_for(question, "out_of_scope"))
    expected = app_services.answerer.answer(question)
    assert (messages[0]["kind"], messages[0]["sources"]) == (expected.kind, expected.sources)
    assert messages[0]["kind"] == "answer"


async def test_remembering_the_treatment_date_confirms_the_day(app_services, tracker_for) -> None:
    three_days_ago = app_services.today() - timedelta(days=3)
    tracker = tracker_for(
        "had it 3 days ago", "tell_treatment_date", metadata={"treatment_date": three_days_ago.isoformat()}
    )
    events, messages = await run(ActionRememberTreatmentDate(), tracker)
    assert SlotSet("treatment_date", three_days_ago.isoformat()) in events
    assert "day 3" in messages[0]["text"]


async def test_remembering_without_a_date_asks_for_it(app_services, tracker_for) -> None:
    events, messages = await run(
        ActionRememberTreatmentDate(), tracker_for("I had it done", "tell_treatment_date")
    )
    assert events == []
    assert "couldn't tell" in messages[0]["text"]


async def test_remembering_without_a_date_answers_the_question_it_also_asks(
    app_services, tracker_for
) -> None:
    """NLU hears a treatment day in "2 days post", but the message is a question an article answers."""
    question = "can i lift weights 2 days post microneedling"
    _, messages = await run(ActionRememberTreatmentDate(), tracker_for(question, "tell_treatment_date"))
    assert [m["kind"] for m in messages] == ["answer"]
    assert messages[0]["sources"][0]["id"] == "exercise-after-treatment"


async def test_remembering_a_date_also_answers_the_question(app_services, tracker_for) -> None:
    yesterday = (app_services.today() - timedelta(days=1)).isoformat()
    tracker = tracker_for(
        "had it yesterday, when can I go back to the gym?",
        "tell_treatment_date",
        metadata={"treatment_date": yesterday},
    )
    events, messages = await run(ActionRememberTreatmentDate(), tracker)
    assert [m["kind"] for m in messages] == ["smalltalk", "answer"]
    assert "day 1" in messages[0]["text"]
    assert messages[1]["sources"][0]["id"] == "exercise-after-treatment"
    assert SlotSet("treatment_date", yesterday) in events


async def small_talk(text: str, intent: str, tracker_for) -> tuple[list, list[dict]]:
    dispatcher = CollectingDispatcher()
    events = await ActionSmallTalk().run(dispatcher, tracker_for(text, intent), {})
    return events, dispatcher.messages


@pytest.mark.parametrize(
    ("text", "intent", "response"),
    [
        ("hello there", "greet", "utter_greet"),
        ("thanks so much", "thank", "utter_thank"),
        ("bye", "goodbye", "utter_goodbye"),
        ("am I talking to a bot", "bot_challenge", "utter_bot_challenge"),
        ("ok", "affirm", "utter_ask_anything_else"),
        ("no", "deny", "utter_ask_anything_else"),
    ],
)
async def test_small_talk_gets_the_intents_response(
    app_services, tracker_for, text, intent, response
) -> None:
    events, messages = await small_talk(text, intent, tracker_for)
    assert events == []
    assert messages == [{"response": response, **{k: v for k, v in messages[0].items() if k != "response"}}]


async def test_small_talk_that_asks_a_question_gets_the_article(app_services, tracker_for) -> None:
    """NLU reads "how can I book a consultation?" as booking, "no picking at all, right?" as a no."""
    _, messages = await small_talk(
        "How can I book a microneedling consultation?", "book_consultation", tracker_for
    )
    assert messages[0]["custom"]["sources"][0]["id"] == "booking-a-consultation"
    events, messages = await small_talk("no picking at the flakes at all right??", "deny", tracker_for)
    assert messages[0]["custom"]["kind"] == "answer"
    assert messages[0]["custom"]["sources"][0]["id"] == "picking-and-scrubbing"
    assert SlotSet("topic", "picking-and-scrubbing") in events


async def test_small_talk_naming_a_thing_the_guidance_does_not_cover_says_so(
    app_services, tracker_for
) -> None:
    _, messages = await small_talk("ok and is my morning latte fine the day after?", "affirm", tracker_for)
    assert messages[0]["custom"]["kind"] == "fallback"
    assert "coffee" in messages[0]["custom"]["text"].lower()


async def test_a_stage_correction_answers_the_previous_question_at_that_stage(
    app_services, tracker_for
) -> None:
    tracker = tracker_for(
        "sorry I meant after", "ask_followup", previous="can I wear makeup to my appointment?"
    )
    events, messages = await run(ActionAnswerQuestion(), tracker)
    assert messages[0]["sources"][0]["id"] == "makeup-after-treatment"
    assert SlotSet("treatment_stage", "after") in events


async def test_a_stage_correction_read_as_a_no_is_answered_too(app_services, tracker_for) -> None:
    tracker = tracker_for("no wait, I meant before", "deny", previous="when can I restart my retinol?")
    dispatcher = CollectingDispatcher()
    events = await ActionSmallTalk().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["custom"]["sources"][0]["id"] == "stopping-retinoids-before"
    assert SlotSet("treatment_stage", "before") in events


async def test_a_correction_without_a_previous_question_is_read_as_it_is(app_services, tracker_for) -> None:
    _, messages = await small_talk("sorry I meant after", "deny", tracker_for)
    assert messages == [
        {"response": "utter_ask_anything_else", **{k: v for k, v in messages[0].items() if k != "response"}}
    ]


async def test_a_treatment_day_given_after_a_question_answers_it_again_for_that_day(
    app_services, tracker_for
) -> None:
    nine_days_ago = (app_services.today() - timedelta(days=9)).isoformat()
    tracker = tracker_for(
        "sorry I got the date wrong, it was 9 days ago",
        "tell_treatment_date",
        metadata={"treatment_date": nine_days_ago},
        previous="why is my face still red?",
    )
    events, messages = await run(ActionRememberTreatmentDate(), tracker)
    assert [m["kind"] for m in messages] == ["smalltalk", "answer"]
    assert "day 9" in messages[0]["text"]
    assert messages[1]["sources"][0]["id"] == "redness-that-lasts"
    assert SlotSet("treatment_date", nine_days_ago) in events


async def test_an_appointment_still_to_come_answers_the_question_before_it_for_before(
    app_services, tracker_for
) -> None:
    tracker = tracker_for(
        "no wait, my appointment isn't until next week",
        "tell_treatment_date",
        previous="can I go on a sunbed?",
    )
    events, messages = await run(ActionRememberTreatmentDate(), tracker)
    assert messages[-1]["sources"][0]["id"] == "sun-and-tanning-before"
    assert SlotSet("treatment_stage", "before") in events
