"""Patients texting through Twilio (SMS, and WhatsApp through Twilio): the same pipeline as every channel,
acknowledged at once and answered through the outbox, once per message, within an SMS budget; opt-out,
media, empty messages, rate limits, staff replies, Rasa going away."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.models import ChannelContact, InboundMessage
from bot.channels.texting import Envelope
from bot.escalation.handoff import post_staff_reply
from bot.models import Conversation, Message, utcnow
from bot.outbox.models import OutboxMessage
from knowledge.clinic import load_clinic_profile
from tests.channels.texting.conftest import SMS_PATH, Phone, contact_of, new_number, wait_for
from tests.escalation.stubs import EMERGENCY_TEXT, URGENT_TEXT, StubRasa, running_app, stub_services
from tests.staff_users import api_token

CLINIC = load_clinic_profile()


def conversation_of(services, phone: Phone) -> str:
    with services.db.session() as session:
        contacts = session.scalars(select(ChannelContact).where(ChannelContact.address == phone.number)).all()
    [contact] = contacts
    return contact.conversation_id


def patient_texts(services, conversation_id: str) -> list[str]:
    with services.db.session() as session:
        query = select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "patient"
        )
        return list(session.scalars(query.order_by(Message.id)))


def outbox_rows(services, conversation_id: str) -> list[OutboxMessage]:
    with services.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


class SlowRasa(StubRasa):
    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        await asyncio.sleep(2.0)
        return await super().send(sender, text, metadata)


class ButtonRasa(StubRasa):
    """Asks a question with buttons whose payloads are Rasa commands."""

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.received.append(text)
        if text.startswith("/EXTERNAL") or "/" in text:
            return []
        buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
        return [{"recipient_id": sender, "text": "Has your treatment already happened?", "buttons": buttons}]


def test_the_webhook_answers_at_once_while_a_slow_rasa_produces_the_reply(db, texting_settings, twilio_fake):
    services = stub_services(texting_settings, db)
    services.rasa = SlowRasa()
    with running_app(services) as client:
        phone = Phone(client, twilio_fake)
        started = time.perf_counter()
        response = phone.texts("can I wear makeup tomorrow?")
        acknowledged = time.perf_counter() - started
        assert response.status_code == 200
        assert acknowledged < 1.0, f"acknowledged after {acknowledged:.2f}s"
        assert phone.replies() == [], "the reply is not part of the acknowledgement"
        [reply] = phone.wait_replies(1)
    assert reply["body"] == "Here is what the clinic says."


def test_every_message_goes_through_the_pipeline_and_is_kept_with_its_conversation(
    client, twilio_fake, services
) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("hi 👋 can I wear makeup tomorrow? ça va")
    conversation_id = conversation_of(services, phone)

    assert conversation_id.startswith("sms-")
    assert phone.number.lstrip("+") not in conversation_id
    assert patient_texts(services, conversation_id) == ["hi 👋 can I wear makeup tomorrow? ça va"], (
        "Unicode and emoji kept"
    )
    assert services.rasa.received == ["hi 👋 can I wear makeup tomorrow? ça va"]
    with services.db.session() as session:
        assert session.get_one(Conversation, conversation_id).channel == "sms"
        inbound = session.scalars(select(InboundMessage)).one()
    wait_for(lambda: outbox_rows(services, conversation_id)[0].status == "delivered")
    with services.db.session() as session:
        inbound = session.get_one(InboundMessage, inbound.id)
    assert (inbound.status, inbound.envelope) == ("done", None), "the number is kept in one place only"


def test_the_same_message_sid_twice_is_handled_once(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    body, headers = phone.request("can I wear makeup tomorrow?")
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200
    phone.wait_replies(1)
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 200, "acknowledged again"

    time.sleep(0.5)  # several outbox polls: a second reply would be here now
    assert len(phone.replies()) == 1
    assert services.rasa.received == ["can I wear makeup tomorrow?"]


def test_the_same_message_sid_delivered_concurrently_is_handled_once(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    body, headers = phone.request(URGENT_TEXT)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(lambda _: client.post(SMS_PATH, content=body, headers=headers).status_code, range(8))
        )

    assert statuses == [200] * 8
    phone.wait_replies(1)
    time.sleep(0.5)
    assert len(phone.replies()) == 1
    with services.db.session() as session:
        assert session.scalar(select(func.count(InboundMessage.id))) == 1
    assert len(services.escalations.recent()) == 1


def test_one_patients_messages_are_answered_in_order(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    for text in ("first question", "second question", "third question"):
        assert phone.texts(text).status_code == 200
    phone.wait_replies(3)
    assert services.rasa.received == ["first question", "second question", "third question"]


def test_a_red_flag_sms_carries_the_instruction_in_its_first_segment(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    body = phone.says(URGENT_TEXT + ". Also can I wear makeup tomorrow?")

    first_segment = body[:153]
    assert first_segment.startswith(f"Please call {CLINIC.phone} today. Pus, yellow or green fluid")
    assert body.rstrip().endswith("1: Talk to a person\nReply 1.")
    assert int(phone.replies()[0]["num_segments"]) <= services.settings.sms_max_segments
    [row] = outbox_rows(services, conversation_of(services, phone))
    assert row.priority == 1, "an urgent instruction is sent before routine replies"


def test_an_emergency_sms_starts_with_the_emergency_number(client, twilio_fake) -> None:
    body = Phone(client, twilio_fake).says(EMERGENCY_TEXT)
    assert body.startswith(f"Call {CLINIC.emergency_number} now.")


def test_a_number_typed_back_chooses_that_button(db, texting_settings, twilio_fake) -> None:
    services = stub_services(texting_settings, db)
    services.rasa = ButtonRasa()
    with running_app(services) as client:
        phone = Phone(client, twilio_fake)
        question = phone.says("hello")
        phone.says("2")
    assert question.endswith("1: Yes\n2: No\nReply 1 or 2.")
    assert "/affirm" not in question and "/deny" not in question
    assert services.rasa.received[-1] == "\u200b/deny", "the payload, as text (never a Rasa command)"


def test_text_starting_with_a_slash_is_text(client, twilio_fake, services) -> None:
    Phone(client, twilio_fake).says("/restart")
    assert services.rasa.received == ["\u200b/restart"]


def test_media_only_gets_a_polite_text_reply(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    assert phone.texts("", media=1).status_code == 200
    assert phone.wait_replies(1)[0]["body"] == services.replies.text("media_only")
    assert services.rasa.received == []


def test_media_with_words_answers_the_words_and_says_pictures_are_not_seen(client, twilio_fake, services):
    phone = Phone(client, twilio_fake)
    assert phone.texts("is this normal on day 2?", media=2).status_code == 200
    body = phone.wait_replies(1)[0]["body"]
    assert body.startswith("Here is what the clinic says.")
    assert body.endswith(services.replies.text("texting_media_ignored"))


def test_stop_then_a_message_gets_no_sms_but_is_still_triaged_and_escalated(
    client, twilio_fake, services
) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("hello")
    assert phone.texts("STOP").status_code == 200  # Twilio itself confirms STOP on SMS
    conversation_id = conversation_of(services, phone)
    wait_for(lambda: contact_of(services, conversation_id).opted_out_at is not None)

    assert phone.texts("can I wear makeup tomorrow?").status_code == 200
    assert phone.texts(URGENT_TEXT).status_code == 200
    wait_for(lambda: len(patient_texts(services, conversation_id)) == 4)
    wait_for(lambda: services.escalations.recent())
    time.sleep(0.5)

    assert len(phone.replies()) == 1, "nothing after STOP"
    [escalation] = services.escalations.recent()
    assert escalation.conversation_id == conversation_id, "staff are still told, and can call"

    assert phone.texts("START").status_code == 200
    wait_for(lambda: contact_of(services, conversation_id).opted_out_at is None)
    assert phone.says("thanks") == "Here is what the clinic says."


def test_with_twilios_own_replies_off_the_app_confirms_stop_start_and_help(db, texting_settings, twilio_fake):
    own = texting_settings.model_copy(update={"twilio_keyword_replies": True})
    services = stub_services(own, db)
    with running_app(services) as client:
        phone = Phone(client, twilio_fake)
        stopped, helped, started = phone.says("Stop"), phone.says("HELP"), phone.says("start")
        conversation_id = conversation_of(services, phone)
        # Anything queued for a patient who has opted out is refused when it is due, not sent.
        phone.says("STOP")
        post_staff_reply(services.db, conversation_id, "Are you ok?", "Dana", services.outbox)
        wait_for(lambda: outbox_rows(services, conversation_id)[-1].status == "refused")
    assert stopped == services.replies.text("texting_stopped")
    assert helped == services.replies.text("texting_help"), "HELP is answered even after STOP"
    assert started == services.replies.text("texting_started")
    assert outbox_rows(services, conversation_id)[-1].last_error == "the patient opted out (STOP)"
    assert services.rasa.received == [], "keywords are not questions"


def test_an_empty_message_is_answered_politely(client, twilio_fake, services) -> None:
    assert Phone(client, twilio_fake).says("   ") == services.replies.text("empty_message")


def test_a_sender_over_the_rate_limit_gets_one_slow_down_and_red_flags_still_get_through(
    db, texting_settings, twilio_fake
) -> None:
    limited = texting_settings.model_copy(update={"texting_rate_limit_per_sender": "3/minute"})
    services = stub_services(limited, db)
    with running_app(services) as client:
        phone = Phone(client, twilio_fake)
        other = Phone(client, twilio_fake)
        for n in range(6):
            assert phone.texts(f"question {n}").status_code == 200
        wait_for(lambda: len(services.rasa.received) >= 3)
        time.sleep(1.0)
        after_flood = [m["body"] for m in phone.replies()]
        phone.texts(URGENT_TEXT)
        urgent = phone.wait_replies(len(after_flood) + 1)[-1]["body"]
        assert other.says("hello") == "Here is what the clinic says.", "the limit is per sender"
    slow_down = services.replies.text("slow_down")
    assert after_flood == ["Here is what the clinic says."] * 3 + [slow_down]
    assert "Pus, yellow or green fluid" in urgent, "over the limit, the red flag still gets its reply"
    assert len(services.escalations.recent()) == 1


def test_a_staff_reply_reaches_an_sms_patient(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("can I talk to someone?")
    conversation_id = conversation_of(services, phone)

    post_staff_reply(
        services.db, conversation_id, "Hi, this is Dana from the clinic 😊", "Dana", services.outbox
    )
    [_, staff] = phone.wait_replies(2)

    assert staff["body"] == "Hi, this is Dana from the clinic 😊"
    assert staff["from"] == "+15550100100"
    [_, row] = outbox_rows(services, conversation_id)
    assert (row.kind, row.recipient) == ("staff_reply", conversation_id), "the number is stored once"


def test_a_staff_reply_through_the_staff_api_reaches_the_patient_without_waking(
    client, twilio_fake, services
):
    phone = Phone(client, twilio_fake)
    phone.says("hello")
    conversation_id = conversation_of(services, phone)
    token = api_token(services.db)

    response = client.post(
        f"/admin/conversations/{conversation_id}/messages",
        json={"text": "Dana here: how is your skin today?", "staff_name": "Dana"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 201
    assert phone.wait_replies(2)[1]["body"] == "Dana here: how is your skin today?"
    # While staff have it, the patient's texts are for them and get the "staff will answer" line.
    assert phone.says("much better thanks") == services.replies.text("handoff_waiting")


def test_rasa_stopped_mid_conversation_still_gets_a_clear_reply(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    assert phone.says("can I wear makeup tomorrow?") == "Here is what the clinic says."
    services.rasa.down = True

    body = phone.says("and can I exercise?")

    assert body == services.replies.text("unavailable")
    assert CLINIC.phone in body


def test_whatsapp_through_twilio_is_answered_on_whatsapp(client, twilio_fake, services) -> None:
    patient = Phone(client, twilio_fake, whatsapp=True)
    body = patient.says(URGENT_TEXT)

    [reply] = patient.replies()
    assert (reply["to"], reply["from"]) == (patient.number, "whatsapp:+15550100100")
    assert body.endswith("1: Talk to a person\nReply 1."), "Twilio's WhatsApp: numbered choices"
    assert conversation_of(services, patient).startswith("wa-")


@pytest.mark.parametrize("content_sid", ["", "HX" + "1" * 32])
def test_whatsapp_through_twilio_outside_the_24_hour_window(content_sid, db, texting_settings, twilio_fake):
    settings = texting_settings.model_copy(update={"twilio_whatsapp_content_sid": content_sid})
    services = stub_services(settings, db)
    with running_app(services) as client:
        patient = Phone(client, twilio_fake, whatsapp=True)
        patient.says("hello")
        conversation_id = conversation_of(services, patient)
        with services.db.session() as session:
            session.get_one(ChannelContact, conversation_id).last_inbound_at = utcnow() - timedelta(hours=25)
        post_staff_reply(services.db, conversation_id, "Hi, any news?", "Dana", services.outbox)
        wait_for(lambda: outbox_rows(services, conversation_id)[-1].status in ("refused", "delivered"))
    row = outbox_rows(services, conversation_id)[-1]
    if not content_sid:
        assert row.status == "refused"
        assert row.last_error == "outside the WhatsApp 24-hour window and no approved template configured"
        assert len(patient.replies()) == 1
    else:
        assert row.status == "delivered"
        assert patient.replies()[-1]["body"] == f'{content_sid} {{"1": "Hi, any news?"}}'


def test_the_chat_api_can_never_open_a_texting_conversation(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("hello")
    conversation_id = conversation_of(services, phone)

    chat = client.post("/api/chat", json={"session_id": conversation_id, "text": "hi"})
    forged = client.post(
        "/api/chat", json={"session_id": conversation_id, "text": "hi"}, headers={"X-Session-Token": "x.y.z"}
    )
    read = client.get(f"/api/conversations/{conversation_id}/messages")

    assert (chat.status_code, forged.status_code, read.status_code) == (401, 401, 401)


def test_no_phone_number_and_no_patient_text_reach_the_logs(client, twilio_fake, services, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    phone = Phone(client, twilio_fake, number=new_number())
    phone.says(URGENT_TEXT)
    phone.texts("STOP")  # no reply (Twilio confirms it), but logged
    conversation_id = conversation_of(services, phone)
    wait_for(lambda: contact_of(services, conversation_id).opted_out_at is not None)
    time.sleep(0.3)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "texting" in logged, "the flow was logged"
    assert phone.number not in logged and phone.number[2:] not in logged
    assert "yellow pus" not in logged


def test_a_message_acknowledged_but_never_handled_is_handled_after_a_restart(
    db, texting_settings, twilio_fake, monkeypatch
) -> None:
    number = new_number()
    envelope = Envelope("twilio", "SM" + "a" * 32, "sms", number, "+15550100100", text="hello")
    services = stub_services(texting_settings, db)
    with running_app(services) as client:
        # The app stored and acknowledged it, then died before handling it.
        client.app.state.texting.accept(envelope)
    monkeypatch.setattr("bot.channels.texting.SWEEP_SECONDS", 0.1)
    monkeypatch.setattr("bot.channels.texting.UNCLAIMED_GRACE", timedelta(0))
    restarted = stub_services(texting_settings, db)
    with running_app(restarted) as client:
        wait_for(lambda: [m for m in twilio_fake.received() if m["to"] == number])
    assert restarted.rasa.received == ["hello"]
