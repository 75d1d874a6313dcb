"""Replies as text messages: GSM-7 and UCS-2 segments, shortening, numbered choices, the instruction first."""

from __future__ import annotations

import pytest

from bot.channels.render import (
    SmsStyle,
    WhatsAppStyle,
    Wording,
    plain_text,
    render,
    render_staff_reply,
    sms_segments,
)
from bot.channels.texting import conversation_id_for, keyword_of, normalised_number
from bot.schemas import Button, ChatMessage, Source
from knowledge.clinic import load_clinic_profile
from knowledge.replies import load_replies

REPLIES = load_replies(load_clinic_profile())
WORDING = Wording.from_replies(REPLIES)
SENTENCE = "Keep your skin clean and use a gentle moisturiser twice a day."  # 62 GSM-7 characters
INSTRUCTION = (
    "Pus or redness spreading beyond the treated area can be signs of infection and need checking today. "
    "Please call (555) 010-0142. The clinic team has been alerted."
)


def answer(sentences: int, title: str = "Aftercare essentials") -> ChatMessage:
    text = " ".join([SENTENCE] * sentences)
    return ChatMessage(
        text=f"{text}\n\nSource: {title}", kind="answer", sources=[Source(id="aftercare", title=title)]
    )


def escalation(buttons: list[Button] | None = None) -> ChatMessage:
    return ChatMessage(text=INSTRUCTION, kind="escalation", triage="urgent", buttons=buttons or [])


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),  # 2 x 153
        ("a" * 307, "GSM-7", 3),
        ("é£¥Ñü@" * 26, "GSM-7", 1),  # accented letters of the GSM-7 alphabet: 156 septets
        ("€" * 80, "GSM-7", 1),  # an extension character costs two septets: 160
        ("€" * 81, "GSM-7", 2),
        ("a" * 69 + "ç", "UCS-2", 1),  # ç is not GSM-7 (only Ç is)
        ("a" * 68 + "😀", "UCS-2", 1),  # an emoji is two UTF-16 units: 70
        ("a" * 69 + "😀", "UCS-2", 2),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 3),  # the emoji is not split: 66 | 2 + 65 | 1
        ("ж" * 134, "UCS-2", 2),  # Cyrillic: 2 x 67
        ("ж" * 135, "UCS-2", 3),
    ],
)
def test_segments_are_counted_the_way_carriers_count_them(text, encoding, count) -> None:
    segments = sms_segments(text)
    assert (segments.encoding, segments.count) == (encoding, count)


def test_a_gsm_escape_is_never_split_between_parts() -> None:
    # 152 septets, then a two-septet "€": it does not fit in the first part's 153 and starts the second.
    assert sms_segments("a" * 152 + "€" + "a" * 152).count == 3
    assert sms_segments("a" * 151 + "€" + "a" * 153).count == 2


def test_a_short_answer_is_one_gsm_segment_with_its_source() -> None:
    rendered = render([answer(1)], SmsStyle(4), WORDING)

    assert rendered.text == f"{SENTENCE}\nSource: Aftercare essentials"
    assert (rendered.segments.encoding, rendered.segments.count, rendered.shortened) == ("GSM-7", 1, False)


def test_a_long_answer_is_shortened_at_a_sentence_not_split_into_many_parts() -> None:
    rendered = render([answer(20)], SmsStyle(3), WORDING)

    assert rendered.shortened
    assert rendered.segments.count <= 3
    assert rendered.text.startswith(SENTENCE)
    assert "Source: Aftercare essentials" in rendered.text, "the source survives the shortening"
    assert REPLIES.text("texting_shortened") in rendered.text
    kept = rendered.text.split("\n")[0]
    assert kept.endswith("."), "cut at a sentence boundary"


def test_one_emoji_makes_the_message_ucs2_and_halves_what_fits() -> None:
    plain = render([answer(6)], SmsStyle(4), WORDING)
    smiling = answer(6).model_copy(update={"text": "You're glowing 😊 " + answer(6).text})
    with_emoji = render([smiling], SmsStyle(4), WORDING)

    assert (plain.segments.encoding, plain.shortened) == ("GSM-7", False)
    assert with_emoji.segments.encoding == "UCS-2"
    assert with_emoji.shortened, "six sentences fit 4 GSM-7 segments but not 4 UCS-2 ones"
    assert with_emoji.segments.count <= 4
    assert with_emoji.text.count(SENTENCE) < plain.text.count(SENTENCE)


def test_typographic_punctuation_in_the_clinics_text_does_not_force_ucs2() -> None:
    typeset = ChatMessage(text="Don’t pick — it’s healing… “gently”.", kind="answer")
    rendered = render([typeset], SmsStyle(1), WORDING)

    assert rendered.text == "Don't pick - it's healing... \"gently\"."
    assert rendered.segments.encoding == "GSM-7"


def test_the_red_flag_instruction_comes_first_and_is_never_cut() -> None:
    rendered = render([answer(10), escalation()], SmsStyle(2), WORDING)

    assert rendered.text.startswith(INSTRUCTION)
    first_segment = rendered.text[:153]
    assert "call (555) 010-0142" in first_segment
    # Over budget with the instruction alone: it is sent whole, the answer is what gives way.
    assert SENTENCE not in rendered.text


def test_an_instruction_named_late_in_the_protocols_reply_gets_a_lead_in_the_first_segment() -> None:
    late = (
        "Pus, yellow or green fluid, honey-coloured crusts, red streaks, redness spreading beyond the "
        "treated area, skin that is hot and hard, or swelling much worse on one side can be signs of "
        "infection and need checking today. Please call (555) 010-0142."
    )
    rendered = render([ChatMessage(text=late, kind="escalation", triage="urgent")], SmsStyle(4), WORDING)
    on_time = render([escalation()], SmsStyle(4), WORDING)

    assert rendered.text == "Please call (555) 010-0142 today. " + late
    assert on_time.text == INSTRUCTION, "an instruction already in the first segment is left alone"


def test_buttons_become_numbered_choices_and_never_show_a_payload() -> None:
    buttons = [Button(title="Yes", payload="/affirm"), Button(title="No", payload="/deny")]
    message = ChatMessage(text="Is the redness spreading?", kind="smalltalk", buttons=buttons)
    rendered = render([message], SmsStyle(4), WORDING)

    assert rendered.text == "Is the redness spreading?\n\n1: Yes\n2: No\nReply 1 or 2."
    assert "/affirm" not in rendered.text
    assert [b.payload for b in rendered.buttons] == ["/affirm", "/deny"]


def test_three_choices_read_naturally() -> None:
    buttons = [Button(title=t, payload=t) for t in ("Today", "Yesterday", "Last week")]
    rendered = render([ChatMessage(text="When?", kind="smalltalk", buttons=buttons)], SmsStyle(4), WORDING)
    assert rendered.text.endswith("Reply 1, 2 or 3.")


def test_whatsapp_gets_reply_buttons_when_they_fit_and_numbers_when_not() -> None:
    talk = Button(title="Talk to a person", payload="Talk to a person")
    buttoned = render([escalation([talk])], WhatsAppStyle(), WORDING)
    long_title = Button(title="Talk to a member of staff please", payload="x")
    numbered = render([escalation([long_title])], WhatsAppStyle(), WORDING)
    twilio = render([escalation([talk])], WhatsAppStyle(interactive=False), WORDING)

    assert buttoned.interactive and buttoned.text == INSTRUCTION
    assert not numbered.interactive and numbered.text.endswith(
        "1: Talk to a member of staff please\nReply 1."
    )
    assert not twilio.interactive and twilio.text.endswith("Reply 1.")


def test_whatsapp_stays_within_4096_characters() -> None:
    rendered = render([answer(120)], WhatsAppStyle(), WORDING)

    assert len(rendered.text) <= 4096
    assert rendered.shortened and "Source: Aftercare essentials" in rendered.text
    assert len(render([answer(30)], WhatsAppStyle(), WORDING).text) > 1600, "no SMS budget on WhatsApp"


def test_no_markdown_reaches_a_phone() -> None:
    text = "## Aftercare\n**Do not** pick. See [our guide](https://clinic.example/guide).\n* gentle cleanser"
    assert plain_text(text) == (
        "Aftercare\nDo not pick. See our guide (https://clinic.example/guide).\n- gentle cleanser"
    )


def test_a_staff_reply_keeps_its_words_up_to_the_providers_limit() -> None:
    words = "Hi, this is Dana from the clinic. " * 80
    sms = render_staff_reply(words, SmsStyle(1))
    assert len(sms) <= 1600 and sms.endswith("...")
    assert render_staff_reply("See you at 3 😊", SmsStyle(1)) == "See you at 3 😊", "emoji kept"


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", "STOP"),
        (" stop. ", "STOP"),
        ("Unsubscribe", "STOP"),
        ("start", "START"),
        ("UNSTOP", "START"),
        ("help", "HELP"),
        ("how do I stop the redness?", None),
        ("stop please", None),
        ("helpful", None),
    ],
)
def test_keywords_are_whole_messages(text, keyword) -> None:
    assert keyword_of(text) == keyword


def test_conversation_ids_are_namespaced_keyed_hashes_of_the_number() -> None:
    sms = conversation_id_for("key", "sms", "+15550100123")
    twilio_wa = conversation_id_for("key", "whatsapp", "whatsapp:+15550100123")
    meta_wa = conversation_id_for("key", "whatsapp", "15550100123")

    assert sms.startswith("sms-") and twilio_wa.startswith("wa-")
    assert twilio_wa == meta_wa, "one patient on WhatsApp, whichever provider carries it"
    assert "5550100123" not in sms + twilio_wa
    assert conversation_id_for("other key", "sms", "+15550100123") != sms, "not computable without the key"
    assert normalised_number("whatsapp:+1 555-010-0123") == "+15550100123"
