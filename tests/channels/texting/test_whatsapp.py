"""WhatsApp Cloud API direct: the verification handshake, X-Hub-Signature-256 over the raw body, message ids
once, text and reply buttons, replies through the Graph API with retries, statuses, the 24-hour window."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.channels.models import ChannelContact, InboundMessage
from bot.escalation.handoff import post_staff_reply
from bot.models import utcnow
from bot.outbox.models import OutboxMessage
from tests.channels.texting.conftest import META_SECRET, META_VERIFY, WHATSAPP_PATH, WhatsAppUser, wait_for
from tests.escalation.stubs import URGENT_TEXT, running_app, stub_services


def conversation_of(services, user: WhatsAppUser) -> str:
    with services.db.session() as session:
        return session.scalars(
            select(ChannelContact.conversation_id).where(ChannelContact.address == user.wa_id)
        ).one()


def rows(services, conversation_id: str) -> list[OutboxMessage]:
    with services.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id)
        return list(session.scalars(query.order_by(OutboxMessage.id)))


def inbound_count(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count(InboundMessage.id)))


def verification(client, token: str, mode: str = "subscribe", challenge: str = "1158201444"):
    params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
    return client.get(WHATSAPP_PATH, params=params)


def test_the_verification_handshake_echoes_the_challenge_for_the_right_token(client) -> None:
    response = verification(client, META_VERIFY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "1158201444"


@pytest.mark.parametrize(
    ("token", "mode"), [("wrong", "subscribe"), ("", "subscribe"), (META_VERIFY, "unsubscribe")]
)
def test_the_verification_handshake_refuses_anything_else(client, token, mode) -> None:
    assert verification(client, token, mode).status_code == 403


def test_a_challenge_is_echoed_only_when_it_is_plain(client) -> None:
    assert verification(client, META_VERIFY, challenge="<script>alert(1)</script>").status_code == 400


def test_a_signed_text_message_is_answered_through_the_graph_api(client, meta_fake, services) -> None:
    user = WhatsAppUser(client, meta_fake)
    response = user.sends("can I wear makeup tomorrow?")

    assert response.status_code == 200
    [reply] = user.wait_replies(1)
    assert reply["type"] == "text" and reply["text"]["body"] == "Here is what the clinic says."
    assert conversation_of(services, user).startswith("wa-")
    [row] = rows(services, conversation_of(services, user))
    assert (row.status, row.provider_ref) == ("delivered", reply["id"])


@pytest.mark.parametrize("forgery", ["re-serialised body", "tampered body", "missing header", "wrong secret"])
def test_the_signature_covers_the_raw_body_and_is_checked_before_parsing(
    forgery, client, meta_fake, services
) -> None:
    user = WhatsAppUser(client, meta_fake)
    body, headers = meta_fake.signed(meta_fake.message_event(user.wa_id, "hello"))
    if forgery == "re-serialised body":
        body = json.dumps(json.loads(body), indent=1).encode()  # the same JSON, other bytes
    elif forgery == "tampered body":
        body = body.replace(b"hello", b"HELLO")
    elif forgery == "missing header":
        headers.pop("X-Hub-Signature-256")
    elif forgery == "wrong secret":
        body, headers = type(meta_fake)("t", "not-the-app-secret", meta_fake.phone_number_id).signed(
            json.loads(body)
        )

    response = client.post(WHATSAPP_PATH, content=body, headers=headers)

    assert response.status_code == 403
    assert inbound_count(services) == 0
    assert services.rasa.received == []


def test_a_signed_body_that_is_not_json_gets_a_clear_400(client, meta_fake) -> None:
    import hashlib
    import hmac

    body = b"{not json"
    signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(WHATSAPP_PATH, content=body, headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 400
    assert response.json()["detail"] == "the body is not JSON"


def test_a_message_id_delivered_again_and_concurrently_is_handled_once(client, meta_fake, services) -> None:
    user = WhatsAppUser(client, meta_fake)
    body, headers = meta_fake.signed(meta_fake.message_event(user.wa_id, URGENT_TEXT))

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(
            pool.map(lambda _: client.post(WHATSAPP_PATH, content=body, headers=headers), range(6))
        )
    user.wait_replies(1)
    assert client.post(WHATSAPP_PATH, content=body, headers=headers).status_code == 200  # days later
    time.sleep(0.5)

    assert [s.status_code for s in statuses] == [200] * 6
    assert len(user.replies()) == 1
    assert inbound_count(services) == 1
    assert len(services.escalations.recent()) == 1


def test_a_red_flag_gets_reply_buttons_and_a_pressed_button_sends_its_payload(client, meta_fake, services):
    user = WhatsAppUser(client, meta_fake)
    user.sends(URGENT_TEXT)
    [alert] = user.wait_replies(1)

    assert alert["type"] == "interactive"
    assert alert["interactive"]["body"]["text"].startswith("Please call (555) 010-0142 today.")
    assert alert["interactive"]["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "1", "title": "Talk to a person"}}
    ]
    user.sends(button=("1", "Talk to a person"))
    user.wait_replies(2)
    assert services.rasa.received[-1] == "Talk to a person"


def test_media_gets_a_polite_reply_and_a_reaction_gets_none(client, meta_fake, services) -> None:
    user = WhatsAppUser(client, meta_fake)
    user.sends(media="image")
    [reply] = user.wait_replies(1)
    assert reply["text"]["body"] == services.replies.text("media_only")

    event = meta_fake.message_event(user.wa_id, "x")
    message = event["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update(type="reaction", reaction={"message_id": reply["id"], "emoji": "👍"})
    body, headers = meta_fake.signed(event)
    assert client.post(WHATSAPP_PATH, content=body, headers=headers).status_code == 200
    time.sleep(0.5)
    assert len(user.replies()) == 1


def test_status_events_are_recorded(client, meta_fake, services) -> None:
    user = WhatsAppUser(client, meta_fake)
    user.sends("hello")
    [reply] = user.wait_replies(1)
    conversation_id = conversation_of(services, user)
    wait_for(lambda: rows(services, conversation_id)[0].status == "delivered")

    for status in ("sent", "read", "delivered"):  # Meta's order is not guaranteed
        body, headers = meta_fake.signed(meta_fake.status_event(reply["id"], status, user.wa_id))
        assert client.post(WHATSAPP_PATH, content=body, headers=headers).status_code == 200

    assert rows(services, conversation_id)[0].provider_status == "read"


def test_events_for_another_phone_number_are_ignored(client, meta_fake, services) -> None:
    event = meta_fake.message_event("15550100777", "hello")
    event["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    body, headers = meta_fake.signed(event)
    assert client.post(WHATSAPP_PATH, content=body, headers=headers).status_code == 200
    assert inbound_count(services) == 0


def test_the_graph_api_down_is_retried_until_the_reply_goes_out(client, meta_fake, services) -> None:
    meta_fake.stop()
    user = WhatsAppUser(client, meta_fake)
    user.sends("hello")
    conversation_id = conversation_of(services, user)
    wait_for(lambda: rows(services, conversation_id) and rows(services, conversation_id)[0].attempts >= 2)
    assert rows(services, conversation_id)[0].status == "pending"

    meta_fake.start()
    user.wait_replies(1)
    wait_for(lambda: rows(services, conversation_id)[0].status == "delivered")


def age_contact(services, conversation_id: str, hours: float) -> None:
    with services.db.session() as session:
        contact = session.get_one(ChannelContact, conversation_id)
        contact.last_inbound_at = utcnow() - timedelta(hours=hours)


def test_outside_the_24_hour_window_a_message_is_refused_with_its_reason(client, meta_fake, services) -> None:
    user = WhatsAppUser(client, meta_fake)
    user.sends("hello")
    user.wait_replies(1)
    conversation_id = conversation_of(services, user)
    age_contact(services, conversation_id, 25)

    post_staff_reply(services.db, conversation_id, "Hi, how is your skin?", "Dana", services.outbox)
    wait_for(lambda: rows(services, conversation_id)[-1].status == "refused")

    assert rows(services, conversation_id)[-1].last_error == (
        "outside the WhatsApp 24-hour window and no approved template configured"
    )
    assert len(user.replies()) == 1


def test_outside_the_window_the_approved_template_is_sent(db, texting_settings, meta_fake) -> None:
    with_template = texting_settings.model_copy(update={"whatsapp_template_name": "clinic_message"})
    services = stub_services(with_template, db)
    with running_app(services) as client:
        user = WhatsAppUser(client, meta_fake)
        user.sends("hello")
        user.wait_replies(1)
        conversation_id = conversation_of(services, user)
        age_contact(services, conversation_id, 30)
        post_staff_reply(services.db, conversation_id, "Hi,\nhow is\tyour skin?", "Dana", services.outbox)
        template = user.wait_replies(2)[1]
    assert template["type"] == "template"
    assert template["template"]["name"] == "clinic_message"
    parameters = template["template"]["components"][0]["parameters"]
    assert parameters == [{"type": "text", "text": "Hi, how is your skin?"}], "one line: Meta's rule"


@pytest.mark.parametrize("template_name", ["", "clinic_message"])
def test_when_meta_says_the_window_closed_the_template_follows(
    template_name, db, texting_settings, meta_fake
):
    settings = texting_settings.model_copy(update={"whatsapp_template_name": template_name})
    services = stub_services(settings, db)
    with running_app(services) as client:
        user = WhatsAppUser(client, meta_fake)
        user.sends("hello")
        user.wait_replies(1)
        meta_fake.age(user.wa_id, 25 * 3600)  # Meta's clock, not ours, is past the window
        conversation_id = conversation_of(services, user)
        post_staff_reply(services.db, conversation_id, "Any news?", "Dana", services.outbox)
        wait_for(lambda: rows(services, conversation_id)[-1].status in ("refused", "delivered"))
    row = rows(services, conversation_id)[-1]
    if template_name:
        assert row.status == "delivered"
        assert user.replies()[-1]["type"] == "template"
    else:
        assert (row.status, row.last_error) == ("refused", "graph api status 400 code 131047")


def test_a_webhook_body_over_the_limit_is_refused_before_it_is_read(client, meta_fake, services) -> None:
    limit = services.settings.texting_max_body_bytes
    user = WhatsAppUser(client, meta_fake)
    body, headers = meta_fake.signed(meta_fake.message_event(user.wa_id, "a" * limit))
    assert client.post(WHATSAPP_PATH, content=body, headers=headers).status_code == 413
    assert inbound_count(services) == 0
