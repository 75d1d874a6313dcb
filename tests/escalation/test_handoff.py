"""Human handoff: the action the patient triggers, and the handoff records staff work with."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoff
from bot import services as services_module
from bot.conversation import store
from bot.escalation import handoff
from bot.models import Conversation
from bot.services import Services
from tests.escalation.stubs import stub_services

pytestmark = pytest.mark.anyio


@pytest.fixture
def installed(settings, db) -> Iterator[Services]:
    """The services the actions use, as the app installs them; the previous ones come back afterwards."""
    try:
        previous = services_module.current()
    except RuntimeError:
        previous = None
    ready = stub_services(settings, db)
    services_module.install(ready)
    yield ready
    if previous is not None:
        services_module.install(previous)


def tracker(sender_id: str, text: str = "can I talk to a person please") -> Tracker:
    return Tracker.from_dict(
        {"sender_id": sender_id, "latest_message": {"text": text, "intent": {"name": "request_human"}}}
    )


async def test_asking_for_a_person_hands_off_and_says_how_staff_will_answer(installed, conversation) -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker(conversation), {})

    [message] = [m["custom"] for m in dispatcher.messages]
    assert message["kind"] == "handoff"
    assert installed.clinic.phone in message["text"] and "staff" in message["text"]
    assert events == []
    with installed.db.session() as session:
        assert session.get(Conversation, conversation).handed_off
    [(handed, started)] = handoff.handed_off(installed.db)
    assert (handed.id, started.reason) == (conversation, "patient_request")


async def test_asking_twice_keeps_one_handoff(installed, conversation) -> None:
    for _ in range(2):
        await ActionHandoff().run(CollectingDispatcher(), tracker(conversation), {})
    assert len(handoff.handed_off(installed.db)) == 1


async def test_a_conversation_that_began_on_rasa_is_started_and_handed_off(installed) -> None:
    await ActionHandoff().run(CollectingDispatcher(), tracker("rasa-only-sender"), {})
    [(handed, _)] = handoff.handed_off(installed.db)
    assert (handed.id, handed.channel) == ("rasa-only-sender", "rasa")


def test_hand_back_ends_the_handoff(db, conversation) -> None:
    assert handoff.hand_off(db, conversation, "patient_request") is True
    assert handoff.hand_off(db, conversation, "patient_request") is False
    assert handoff.hand_back(db, conversation, "Dana") is True
    assert handoff.hand_back(db, conversation, "Dana") is False
    assert handoff.hand_back(db, "unknown", "Dana") is None
    assert handoff.handed_off(db) == []


def test_a_staff_reply_takes_the_conversation_over_and_is_kept_in_order(db, conversation) -> None:
    store.add_message(db, conversation, "patient", "is anyone there?", for_staff=True)
    reply = handoff.post_staff_reply(db, conversation, "Yes, Dana here.", "Dana")

    assert [(h.id, s.reason) for h, s in handoff.handed_off(db)] == [(conversation, "staff_reply")]
    assert [(m.sender, m.text) for m in store.messages(db, conversation)] == [
        ("patient", "is anyone there?"),
        ("staff", "Yes, Dana here."),
    ]
    assert store.messages(db, conversation, after_id=reply.id) == []
    assert [m.text for m in store.messages(db, conversation, senders=("staff",))] == ["Yes, Dana here."]
    assert handoff.post_staff_reply(db, "unknown", "hello", None) is None
