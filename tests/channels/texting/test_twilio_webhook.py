"""Who may call the Twilio webhooks: signatures computed with the `twilio` library itself, checked against the
configured public URL; refused requests leave nothing behind; size limits before parsing; the status
callback; the app refuses to start with the channel on and its token missing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

import pytest
import yaml
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.channels.models import DeliveryEvent, InboundMessage
from bot.models import Conversation
from bot.outbox.models import OutboxMessage
from bot.settings import Settings
from tests.channels.texting.conftest import PUBLIC_URL, SMS_PATH, STATUS_PATH, Phone, wait_for
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, ROOT
from tests.escalation.stubs import running_app, stub_services

SHARED_KEY = "webhooks-shared-key-secret"


def stored(services) -> tuple[int, int]:
    """(inbound messages, conversations) in the database."""
    with services.db.session() as session:
        return (
            session.scalar(select(func.count(InboundMessage.id))),
            session.scalar(select(func.count(Conversation.id))),
        )


def resign(params: dict[str, str], url: str, token: str = AUTH_TOKEN) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
    }


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def test_a_validly_signed_message_is_acknowledged_with_empty_twiml_and_answered(
    client, twilio_fake, services
) -> None:
    phone = Phone(client, twilio_fake)
    response = phone.texts("can I wear makeup tomorrow?")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    [reply] = phone.wait_replies(1)
    assert reply["body"] == "Here is what the clinic says."
    assert reply["from"] == "+15550100100", "the reply comes from the number the patient texted"


@pytest.mark.parametrize(
    "forgery",
    ["tampered body", "missing header", "wrong host", "extra parameter", "wrong token", "wrong path"],
)
def test_a_request_twilio_did_not_sign_is_refused_and_leaves_nothing(
    forgery, client, twilio_fake, services
) -> None:
    phone = Phone(client, twilio_fake)
    body, headers = phone.request("can I wear makeup tomorrow?")
    params = form(body)
    if forgery == "tampered body":
        body = urlencode({**params, "Body": "can I wear makeup today?"}).encode()
    elif forgery == "missing header":
        headers.pop("X-Twilio-Signature")
    elif forgery == "wrong host":
        # Signed for another site: the request's own Host header naming it changes nothing.
        headers = resign(params, f"https://evil.example{SMS_PATH}") | {"Host": "evil.example"}
    elif forgery == "extra parameter":
        body = urlencode({**params, "NumMedia": "0", "Extra": "1"}).encode()
    elif forgery == "wrong token":
        headers = resign(params, f"{PUBLIC_URL}{SMS_PATH}", token="someone-elses-token")
    elif forgery == "wrong path":
        headers = resign(params, f"{PUBLIC_URL}/channels/twilio/other")

    response = client.post(SMS_PATH, content=body, headers=headers)

    assert response.status_code == 403
    assert "signature" in response.json()["detail"].lower()
    assert stored(services) == (0, 0), "nothing processed or stored"
    assert services.rasa.received == []


@pytest.mark.parametrize("signed_url", [f"{PUBLIC_URL}{SMS_PATH}", f"{PUBLIC_URL}:443{SMS_PATH}"])
def test_the_signature_holds_with_and_without_the_default_port(signed_url, client, twilio_fake) -> None:
    phone = Phone(client, twilio_fake)
    body, _headers = phone.request("hello")

    response = client.post(SMS_PATH, content=body, headers=resign(form(body), signed_url))

    assert response.status_code == 200
    phone.wait_replies(1)


def test_a_query_string_is_part_of_what_twilio_signs(client, twilio_fake) -> None:
    phone = Phone(client, twilio_fake)
    body, _headers = phone.request("hello")
    params = form(body)

    signed = client.post(
        f"{SMS_PATH}?clinic=main", content=body, headers=resign(params, f"{PUBLIC_URL}{SMS_PATH}?clinic=main")
    )
    unsigned = client.post(
        f"{SMS_PATH}?clinic=other",
        content=body,
        headers=resign(params, f"{PUBLIC_URL}{SMS_PATH}?clinic=main"),
    )

    assert (signed.status_code, unsigned.status_code) == (200, 403)


def shared_key_headers(params: dict[str, str], url: str, key: str) -> dict[str, str]:
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": base64.b64encode(digest).decode(),
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256",
    }


def test_a_shared_key_signature_is_checked_with_the_shared_key(db, texting_settings, twilio_fake) -> None:
    keyed = texting_settings.model_copy(update={"twilio_webhook_shared_key": SecretStr(SHARED_KEY)})
    with running_app(stub_services(keyed, db)) as client:
        phone = Phone(client, twilio_fake)
        body, _headers = phone.request("hello")
        url = f"{PUBLIC_URL}{SMS_PATH}"
        good = client.post(SMS_PATH, content=body, headers=shared_key_headers(form(body), url, SHARED_KEY))
        bad = client.post(SMS_PATH, content=body, headers=shared_key_headers(form(body), url, "guess"))
    assert (good.status_code, bad.status_code) == (200, 403)


def test_a_shared_key_signature_is_refused_when_no_shared_key_is_configured(client, twilio_fake) -> None:
    body, _headers = Phone(client, twilio_fake).request("hello")
    headers = shared_key_headers(form(body), f"{PUBLIC_URL}{SMS_PATH}", SHARED_KEY)
    assert client.post(SMS_PATH, content=body, headers=headers).status_code == 403


def test_a_message_for_another_twilio_account_is_refused(client, twilio_fake, services) -> None:
    body, _headers = Phone(client, twilio_fake).request("hello")
    params = {**form(body), "AccountSid": "AC" + "9" * 32}
    response = client.post(
        SMS_PATH, content=urlencode(params).encode(), headers=resign(params, f"{PUBLIC_URL}{SMS_PATH}")
    )
    assert response.status_code == 403
    assert stored(services) == (0, 0)


def test_a_signed_but_malformed_message_gets_a_clear_400(client, twilio_fake, services) -> None:
    body, _headers = Phone(client, twilio_fake).request("hello")
    params = {**form(body), "MessageSid": "not-a-sid"}
    response = client.post(
        SMS_PATH, content=urlencode(params).encode(), headers=resign(params, f"{PUBLIC_URL}{SMS_PATH}")
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "MessageSid is missing or malformed"
    assert stored(services) == (0, 0)


def test_other_content_types_and_methods_are_refused(client) -> None:
    assert client.post(SMS_PATH, json={"Body": "hello"}).status_code == 415
    assert client.get(SMS_PATH).status_code == 405


def test_a_body_over_the_limit_is_refused_before_it_is_read(client, twilio_fake, services) -> None:
    limit = services.settings.texting_max_body_bytes
    phone = Phone(client, twilio_fake)
    body, headers = phone.request("a" * (limit + 1))

    response = client.post(SMS_PATH, content=body, headers=headers)

    assert response.status_code == 413
    assert stored(services) == (0, 0)


def test_the_channel_does_not_exist_when_it_is_not_enabled(db, settings) -> None:
    with running_app(stub_services(settings, db)) as client:
        assert client.post(SMS_PATH, content=b"Body=hi").status_code == 404


def test_the_app_refuses_to_start_with_the_channel_enabled_and_no_token() -> None:
    with pytest.raises(ValidationError, match="ASSISTANT_TWILIO_AUTH_TOKEN"):
        Settings(
            _env_file=None,
            twilio_messaging_enabled=True,
            twilio_account_sid=ACCOUNT_SID,
            public_url=PUBLIC_URL,
        )
    with pytest.raises(ValidationError, match="ASSISTANT_PUBLIC_URL"):
        Settings(
            _env_file=None,
            twilio_messaging_enabled=True,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
        )
    with pytest.raises(ValidationError, match="ASSISTANT_WHATSAPP_APP_SECRET"):
        Settings(_env_file=None, whatsapp_enabled=True, whatsapp_verify_token="v", whatsapp_access_token="t")


def test_settings_copied_without_validation_are_checked_at_start_up(db, texting_settings) -> None:
    broken = texting_settings.model_copy(update={"twilio_auth_token": SecretStr("")})
    with (
        pytest.raises(RuntimeError, match="ASSISTANT_TWILIO_AUTH_TOKEN"),
        running_app(stub_services(broken, db)),
    ):
        pass


def test_signed_status_callbacks_are_recorded_and_keep_the_furthest_status(
    client, twilio_fake, services
) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("hello")
    [reply] = phone.replies()
    url = f"{PUBLIC_URL}{STATUS_PATH}"

    def callback(status: str, **extra: str) -> int:
        params = {"AccountSid": ACCOUNT_SID, "MessageSid": reply["sid"], "MessageStatus": status, **extra}
        return client.post(
            STATUS_PATH, content=urlencode(params).encode(), headers=resign(params, url)
        ).status_code

    def outbox_row() -> OutboxMessage:
        with services.db.session() as session:
            return session.scalars(
                select(OutboxMessage).where(OutboxMessage.provider_ref == reply["sid"])
            ).one()

    wait_for(lambda: outbox_row().status == "delivered")
    assert [callback("sent"), callback("delivered"), callback("sent")] == [204, 204, 204]
    assert outbox_row().provider_status == "delivered", "a late 'sent' does not undo 'delivered'"
    with services.db.session() as session:
        events = session.scalars(select(DeliveryEvent.status).order_by(DeliveryEvent.id)).all()
    assert events == ["sent", "delivered"], "a repeated callback is recorded once"

    params = {"AccountSid": ACCOUNT_SID, "MessageSid": reply["sid"], "MessageStatus": "failed"}
    forged = client.post(
        STATUS_PATH,
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "forged"},
    )
    assert forged.status_code == 403
    assert outbox_row().provider_status == "delivered"


def test_an_undelivered_reply_keeps_the_carriers_error_code(client, twilio_fake, services) -> None:
    phone = Phone(client, twilio_fake)
    phone.says("hello")
    [reply] = phone.replies()
    params = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": reply["sid"],
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    url = f"{PUBLIC_URL}{STATUS_PATH}"
    assert (
        client.post(STATUS_PATH, content=urlencode(params).encode(), headers=resign(params, url)).status_code
        == 204
    )
    with services.db.session() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.provider_ref == reply["sid"])).one()
    assert (row.provider_status, row.last_error) == ("undelivered", "twilio delivery undelivered code 30003")


def test_rasas_own_twilio_and_whatsapp_connectors_are_never_enabled() -> None:
    """Rasa 3.6's Twilio channel checks no signature and does not deduplicate: the app is the only door."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text()) or {}
    assert set(credentials) == {"rest"}
