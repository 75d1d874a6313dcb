"""Pure parts of the chat pipeline."""

import pytest

from bot.pipeline import BadMessage, TurnCounter, clean_text, shape_rasa_message, starts_rasa_session


@pytest.mark.parametrize(("turn", "starts"), [(1, False), (2, False), (20, False), (21, True), (41, True)])
def test_a_new_rasa_session_starts_every_n_turns(turn: int, starts: bool) -> None:
    assert starts_rasa_session(turn, 20) is starts


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07", "x" * 2001])
def test_empty_or_overlong_messages_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(BadMessage, match="empty|too long"):
        clean_text(text, 2000)


def test_control_characters_are_removed() -> None:
    assert clean_text(" can I\x00 run?\x1b ", 2000) == "can I  run?"


def test_action_messages_keep_their_kind_and_sources() -> None:
    custom = {"text": "Wait 3 days.", "kind": "answer", "sources": [{"id": "a", "title": "A"}], "buttons": []}
    message = shape_rasa_message({"recipient_id": "x", "custom": custom}, "routine")
    assert (message.kind, message.triage, message.sources[0].id) == ("answer", "routine", "a")


def test_plain_responses_are_small_talk_with_their_buttons() -> None:
    raw = {"text": "Hello!", "buttons": [{"title": "Yes", "payload": "/affirm"}]}
    message = shape_rasa_message(raw, "none")
    assert (message.kind, message.buttons[0].payload) == ("smalltalk", "/affirm")
    assert shape_rasa_message({"image": "x.png"}, "none") is None


def test_turns_are_counted_per_conversation_and_old_ones_forgotten() -> None:
    counter = TurnCounter(capacity=2)
    assert [counter.count("a"), counter.count("a"), counter.count("b"), counter.count("a")] == [1, 2, 1, 3]
    counter.count("c")  # "b" is now the least recent and is forgotten
    assert counter.count("b") == 1
