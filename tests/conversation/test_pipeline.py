"""Pure parts of the chat pipeline."""

import pytest

from bot.conversation.pipeline import (
    TEXT_GUARD,
    BadMessage,
    TurnCounter,
    clean_text,
    for_rasa,
    shape_rasa_message,
    starts_rasa_session,
)


@pytest.mark.parametrize(("turn", "starts"), [(1, False), (2, False), (20, False), (21, True), (41, True)])
def test_a_new_rasa_session_starts_every_n_turns(turn: int, starts: bool) -> None:
    assert starts_rasa_session(turn, 20) is starts


@pytest.mark.parametrize(("text", "reply"), [("", "empty_message"), ("   ", "empty_message"),
                                             ("\x00\x07", "empty_message"), ("x" * 2001, "too_long"),
                                             ("x" * 5000, "too_long")])  # fmt: skip
def test_empty_or_overlong_messages_are_refused_with_the_reply_that_says_why(text: str, reply: str) -> None:
    with pytest.raises(BadMessage) as refused:
        clean_text(text, 2000)
    assert refused.value.reply == reply


def test_control_characters_and_lone_surrogates_are_removed() -> None:
    assert clean_text(" can I\x00 run?\x1b ", 2000) == "can I  run?"
    assert clean_text("my throat \ud83d is closing", 2000) == "my throat   is closing"


def test_the_length_limit_is_checked_again_after_normalising() -> None:
    # NFC composition can only shrink here, but a text right at the limit must pass.
    assert len(clean_text("e\u0301" * 1000, 1000)) == 1000


def test_patient_text_is_never_a_rasa_command() -> None:
    assert for_rasa("/restart") == TEXT_GUARD + "/restart"
    assert for_rasa("  /ask_makeup@0.9") == TEXT_GUARD + "  /ask_makeup@0.9"
    assert for_rasa("can I run?") == "can I run?"


def test_action_messages_keep_their_kind_and_sources() -> None:
    custom = {"text": "Wait 3 days.", "kind": "answer", "sources": [{"id": "a", "title": "A"}], "buttons": []}
    message = shape_rasa_message({"recipient_id": "x", "custom": custom}, "routine")
    assert (message.kind, message.triage, message.sources[0].id) == ("answer", "routine", "a")


def test_plain_responses_are_small_talk_with_their_buttons() -> None:
    raw = {"text": "Hello!", "buttons": [{"title": "Yes", "payload": "yes"}]}
    message = shape_rasa_message(raw, "none")
    assert (message.kind, message.buttons[0].payload) == ("smalltalk", "yes")
    assert shape_rasa_message({"image": "x.png"}, "none") is None


def test_turns_are_counted_per_conversation_and_old_ones_forgotten() -> None:
    counter = TurnCounter(capacity=2)
    assert [counter.count("a"), counter.count("a"), counter.count("b"), counter.count("a")] == [1, 2, 1, 3]
    counter.count("c")  # "b" is now the least recent and is forgotten
    assert counter.count("b") == 1
