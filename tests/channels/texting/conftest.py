"""The texting channels in-process: the real app (stub Rasa, real triage, real SQLite, the app's own outbox
worker) with Twilio's and Meta's fakes on 127.0.0.1; patients text through signed webhook requests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.channels.models import ChannelContact
from bot.fakes import FakeMetaGraph, FakeTwilio
from bot.services import Services
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, CLINIC_NUMBER
from tests.escalation.stubs import running_app, stub_services

PUBLIC_URL = "https://chat.clinic.example"
SMS_PATH = "/channels/twilio/messages"
STATUS_PATH = "/channels/twilio/status"
WHATSAPP_PATH = "/channels/whatsapp/webhook"
META_TOKEN = "meta-access-token"
META_SECRET = "meta-app-secret"
META_VERIFY = "meta-verify-token"
PHONE_NUMBER_ID = "100000000000042"


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def new_number() -> str:
    """A fictional North American number (555-01xx), different in every test."""
    return f"+1555010{uuid.uuid4().int % 10_000:04d}"


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    fake.status_callbacks = False  # the public URL is not this machine: tests post callbacks themselves
    yield fake
    fake.stop()


@pytest.fixture
def meta_fake() -> Iterator[FakeMetaGraph]:
    fake = FakeMetaGraph(META_TOKEN, META_SECRET, PHONE_NUMBER_ID).start()
    yield fake
    fake.stop()


@pytest.fixture
def texting_settings(settings, meta_fake):
    return settings.model_copy(
        update={
            "public_url": PUBLIC_URL,
            "twilio_messaging_enabled": True,
            "whatsapp_enabled": True,
            "whatsapp_verify_token": SecretStr(META_VERIFY),
            "whatsapp_app_secret": SecretStr(META_SECRET),
            "whatsapp_access_token": SecretStr(META_TOKEN),
            "whatsapp_phone_number_id": PHONE_NUMBER_ID,
            "whatsapp_graph_url": meta_fake.url,
            "outbox_poll_seconds": 0.1,
            "outbox_retry_base_seconds": 0.2,
            "outbox_retry_max_seconds": 0.5,
        }
    )


@pytest.fixture
def services(texting_settings, db) -> Services:
    return stub_services(texting_settings, db)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with running_app(services) as client:
        yield client


class Phone:
    """A patient's phone texting the clinic's Twilio number (SMS, or WhatsApp with `whatsapp:`)."""

    def __init__(self, client: TestClient, twilio: FakeTwilio, number: str | None = None, whatsapp=False):
        prefix = "whatsapp:" if whatsapp else ""
        self.client, self.twilio = client, twilio
        self.number = prefix + (number or new_number())
        self.clinic = prefix + CLINIC_NUMBER

    def request(self, body: str = "", **options) -> tuple[bytes, dict[str, str]]:
        return self.twilio.incoming(f"{PUBLIC_URL}{SMS_PATH}", self.number, self.clinic, body, **options)

    def texts(self, body: str = "", **options):
        content, headers = self.request(body, **options)
        return self.client.post(SMS_PATH, content=content, headers=headers)

    def replies(self) -> list[dict]:
        return [m for m in self.twilio.received() if m["to"] == self.number]

    def wait_replies(self, count: int, timeout: float = 10.0) -> list[dict]:
        wait_for(lambda: len(self.replies()) >= count, timeout)
        return self.replies()

    def says(self, body: str) -> str:
        """Text the clinic and wait for the one reply."""
        before = len(self.replies())
        assert self.texts(body).status_code == 200
        return self.wait_replies(before + 1)[before]["body"]


class WhatsAppUser:
    """A patient on WhatsApp writing to the clinic's Cloud API number."""

    def __init__(self, client: TestClient, meta: FakeMetaGraph, wa_id: str | None = None) -> None:
        self.client, self.meta = client, meta
        self.wa_id = wa_id or new_number().lstrip("+")

    def sends(self, text: str | None = None, **options):
        body, headers = self.meta.signed(self.meta.message_event(self.wa_id, text, **options))
        return self.client.post(WHATSAPP_PATH, content=body, headers=headers)

    def replies(self) -> list[dict]:
        return [m for m in self.meta.received() if m["to"] == self.wa_id]

    def wait_replies(self, count: int, timeout: float = 10.0) -> list[dict]:
        wait_for(lambda: len(self.replies()) >= count, timeout)
        return self.replies()


def contact_of(services: Services, conversation_id: str) -> ChannelContact:
    with services.db.session() as session:
        return session.get_one(ChannelContact, conversation_id)
