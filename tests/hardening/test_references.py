"""Staff notices, webhook payloads and logs name a conversation by its opaque reference: never by its session
token, the secret inside it or its hash (issue 7, "The conversation id is the only credential"). The
sessions themselves are tested in tests/channels/web/test_sessions.py."""

from __future__ import annotations

import json
import logging
import time

from itsdangerous import URLSafeTimedSerializer

from bot.conversation.sessions import SALT
from bot.models import Conversation
from tests.escalation.stubs import URGENT_TEXT
from tests.patient import Patient


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_notices_webhooks_and_logs_carry_the_reference_never_the_session_secret(
    make_client, settings, smtp_fake, twilio_fake, webhook_fake, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(settings, outbox_poll_seconds=0.1)
    patient = Patient(client)
    patient.says("hello")
    patient.says(URGENT_TEXT)
    wait_for(lambda: smtp_fake.received() and twilio_fake.received() and webhook_fake.received())

    secret = URLSafeTimedSerializer(client.services.sessions._serializer.secret_key, salt=SALT).loads(
        patient.token
    )["s"]
    with client.services.db.session() as session:
        conversation = session.get(Conversation, patient.session_id)
        reference, token_hash = conversation.reference, conversation.token_hash
    never = {"session token": patient.token, "secret": secret, "secret's hash": token_hash}

    [email], [sms], [hook] = smtp_fake.received(), twilio_fake.received(), webhook_fake.received()
    notices = {"e-mail": json.dumps(email), "sms": json.dumps(sms), "webhook": json.dumps(hook)}
    assert reference in notices["e-mail"]
    assert hook["json"]["escalation"]["conversation"] == reference
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"conversation={reference}" in logged
    for where, text in {**notices, "logs": logged}.items():
        for what, value in never.items():
            assert value not in text, f"the {what} is in the {where}"
        assert patient.session_id not in text, f"the conversation id is in the {where}"
        assert "yellow pus" not in text, f"the patient's words are in the {where}"
