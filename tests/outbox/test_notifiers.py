"""Each notifier against its fake, over the real protocol: SMTP, Twilio's REST API through `twilio`, HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.fakes import FakeSmtpServer
from bot.outbox.notice import Notice
from bot.outbox.notifiers import (
    DeliveryError,
    EmailNotifier,
    SmsNotifier,
    WebhookNotifier,
    build_notifiers,
)
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, CLINIC_NUMBER, ON_CALL, WEBHOOK_SECRET


def notice(channel: str, recipient: str, key: str = "esc7-n21-1772441999000") -> Notice:
    return Notice(
        key=key,
        channel=channel,
        recipient=recipient,
        subject="[Clinic] URGENT escalation #7",
        text=f"Clinic: URGENT escalation #7. Concerns: infection. Ref {key}",
        created_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        payload={"event": "escalation.alert", "escalation": {"id": 7, "severity": "urgent"}},
    )


def sms(twilio_fake, token: str = AUTH_TOKEN) -> SmsNotifier:
    return SmsNotifier(ACCOUNT_SID, token, CLINIC_NUMBER, base_url=twilio_fake.url, timeout=3)


def test_sms_goes_through_the_twilio_library_to_the_messages_api(twilio_fake) -> None:
    sid = sms(twilio_fake).send(notice("sms", ON_CALL))

    [message] = twilio_fake.received()
    assert sid == message["sid"] and sid.startswith("SM") and len(sid) == 34
    assert (message["to"], message["from"], message["status"]) == (ON_CALL, CLINIC_NUMBER, "queued")
    assert "Ref esc7-n21-1772441999000" in message["body"]


def test_the_twilio_fake_answers_like_twilio(twilio_fake) -> None:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = twilio_fake.url
    created = client.messages.create(to=ON_CALL, from_=CLINIC_NUMBER, body="hello")
    assert created.account_sid == ACCOUNT_SID and created.direction == "outbound-api"
    assert created.date_created.tzinfo is not None  # RFC 2822 dates parse
    assert [m.sid for m in client.messages.list(to=ON_CALL)] == [created.sid]
    assert client.messages.list(to="+15550100000") == []
    with pytest.raises(TwilioRestException) as missing_body:
        client.messages.create(to=ON_CALL, from_=CLINIC_NUMBER, body="")
    assert missing_body.value.code == 21602


def test_sms_with_a_wrong_token_is_refused_and_not_stored(twilio_fake) -> None:
    with pytest.raises(DeliveryError, match="twilio status 401 code 20003"):
        sms(twilio_fake, token="wrong").send(notice("sms", ON_CALL))
    assert twilio_fake.received() == []


def test_sms_provider_down_is_a_delivery_error(twilio_fake) -> None:
    twilio_fake.stop()
    with pytest.raises(DeliveryError, match="ConnectionError"):
        sms(twilio_fake).send(notice("sms", ON_CALL))


def test_an_earlier_sms_is_found_by_its_key_before_a_retry(twilio_fake) -> None:
    notifier = sms(twilio_fake)
    assert notifier.already_delivered(notice("sms", ON_CALL)) is None
    sid = notifier.send(notice("sms", ON_CALL))
    notifier.send(notice("sms", ON_CALL, key="esc8-n22-1772441999000"))

    assert notifier.already_delivered(notice("sms", ON_CALL)) == sid


def test_email_goes_over_smtp_with_a_stable_message_id(smtp_fake) -> None:
    notifier = EmailNotifier("127.0.0.1", smtp_fake.port, "assistant@clinic.test", starttls=False, timeout=3)
    message_id = notifier.send(notice("email", "on-call@clinic.test"))
    notifier.send(notice("email", "on-call@clinic.test"))

    first, second = smtp_fake.received()
    assert message_id == first["message_id"] == second["message_id"] == "<esc7-n21-1772441999000@clinic.test>"
    assert first["rcpt_tos"] == ["on-call@clinic.test"]
    assert first["mail_from"] == "assistant@clinic.test"
    assert first["subject"] == "[Clinic] URGENT escalation #7"
    assert first["headers"]["Auto-Submitted"] == "auto-generated"
    assert "Ref esc7-n21-1772441999000" in first["body"]


def test_email_logs_in_when_the_server_requires_it() -> None:
    fake = FakeSmtpServer(username="assistant", password="s3cret").start()
    try:
        good = EmailNotifier("127.0.0.1", fake.port, "a@clinic.test", "assistant", "s3cret", starttls=False)
        good.send(notice("email", "on-call@clinic.test"))
        with pytest.raises(DeliveryError):
            EmailNotifier("127.0.0.1", fake.port, "a@clinic.test", "assistant", "wrong", starttls=False).send(
                notice("email", "on-call@clinic.test")
            )
        without_login = EmailNotifier("127.0.0.1", fake.port, "a@clinic.test", starttls=False)
        with pytest.raises(DeliveryError):
            without_login.send(notice("email", "on-call@clinic.test"))
        assert len(fake.received()) == 1
    finally:
        fake.stop()


def test_email_server_down_is_a_delivery_error(smtp_fake) -> None:
    smtp_fake.stop()
    notifier = EmailNotifier("127.0.0.1", smtp_fake.port, "assistant@clinic.test", starttls=False, timeout=3)
    with pytest.raises(DeliveryError, match="ConnectionRefusedError"):
        notifier.send(notice("email", "on-call@clinic.test"))


def test_webhook_posts_signed_json_with_an_idempotency_key(webhook_fake) -> None:
    url = f"{webhook_fake.url}/hooks/escalations"
    WebhookNotifier(WEBHOOK_SECRET, timeout=3).send(notice("webhook", url))

    [received] = webhook_fake.received()
    assert received["path"] == "/hooks/escalations"
    assert received["json"] == notice("webhook", url).payload
    assert received["idempotency_key"] == "esc7-n21-1772441999000"
    assert received["signature_valid"]


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    seen: dict = {}

    def receiver(request: httpx.Request) -> httpx.Response:
        seen["body"], seen["signature"] = request.content, request.headers["X-Assistant-Signature"]
        return httpx.Response(204)

    notifier = WebhookNotifier("k")
    notifier.client = httpx.Client(transport=httpx.MockTransport(receiver))
    notifier.send(notice("webhook", "http://receiver.test/hook"))
    expected = hmac.new(b"k", seen["body"], hashlib.sha256).hexdigest()
    assert seen["signature"] == f"sha256={expected}"
    assert json.loads(seen["body"])["escalation"]["id"] == 7


def test_webhook_error_status_or_receiver_down_is_a_delivery_error(webhook_fake) -> None:
    url = f"{webhook_fake.url}/hooks/escalations"
    notifier = WebhookNotifier(WEBHOOK_SECRET, timeout=3)
    rejecting = WebhookNotifier(WEBHOOK_SECRET)
    rejecting.client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(503)))
    with pytest.raises(DeliveryError, match="http status 503"):
        rejecting.send(notice("webhook", url))
    webhook_fake.stop()
    with pytest.raises(DeliveryError, match="ConnectError"):
        notifier.send(notice("webhook", url))


def test_only_fully_configured_channels_get_a_notifier(settings) -> None:
    assert set(build_notifiers(settings)) == {"sms", "email", "webhook"}
    partial = settings.model_copy(update={"smtp_from": "", "webhook_url": "", "twilio_from_number": ""})
    assert build_notifiers(partial) == {}
