"""Fixtures for escalation tests: the notification fakes and a manual clock (`db` is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.db import Database
from bot.escalation.notifiers import Notifier, build_notifiers
from bot.escalation.outbox import OutboxWorker, RetryPolicy
from bot.escalation.service import EscalationService, StaffContacts
from bot.fakes import FakeSmtpServer, FakeTwilio, FakeWebhookReceiver
from bot.models import Conversation
from bot.settings import Settings
from knowledge.clinic import load_clinic_profile

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token"
WEBHOOK_SECRET = "test-webhook-secret"
ON_CALL = "+15550100199"
BACKUP = "+15550100198"
CLINIC_NUMBER = "+15550100100"


class Clock:
    """A clock the test moves by hand, so backoff and leases need no sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def conversation(db: Database) -> str:
    return start_conversation(db)


def start_conversation(db: Database) -> str:
    conversation_id = uuid.uuid4().hex
    with db.session() as session:
        session.add(Conversation(id=conversation_id, channel="api", handed_off=False))
    return conversation_id


@pytest.fixture
def smtp_fake() -> Iterator[FakeSmtpServer]:
    fake = FakeSmtpServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def webhook_fake() -> Iterator[FakeWebhookReceiver]:
    fake = FakeWebhookReceiver(WEBHOOK_SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, smtp_fake, twilio_fake, webhook_fake) -> Settings:
    """Every channel configured, pointing at the fakes."""
    return Settings(
        environment="test",
        var_dir=tmp_path,
        on_call_phone=ON_CALL,
        backup_phone=BACKUP,
        staff_email="on-call@clinic.test",
        backup_email="manager@clinic.test",
        smtp_host="127.0.0.1",
        smtp_port=smtp_fake.port,
        smtp_from="assistant@clinic.test",
        smtp_starttls=False,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=CLINIC_NUMBER,
        twilio_base_url=twilio_fake.url,
        webhook_url=f"{webhook_fake.url}/hooks/escalations",
        webhook_secret=WEBHOOK_SECRET,
        notify_timeout_seconds=3.0,
        outbox_retry_base_seconds=10.0,
        outbox_retry_max_seconds=60.0,
        outbox_max_attempts=5,
        outbox_lease_seconds=30.0,
        escalation_renotify_seconds=600.0,
    )


@pytest.fixture
def contacts(settings: Settings) -> StaffContacts:
    return StaffContacts.from_settings(settings, load_clinic_profile())


@pytest.fixture
def escalations(db: Database, contacts: StaffContacts, clock: Clock) -> EscalationService:
    return EscalationService(db, contacts, dedupe_window=timedelta(minutes=10), clock=clock)


@pytest.fixture
def make_worker(
    db: Database, settings: Settings, contacts: StaffContacts, clock: Clock
) -> Callable[..., OutboxWorker]:
    """A new worker each call: a second app instance, or the same app after a restart."""

    def make(notifiers: dict[str, Notifier] | None = None, **overrides) -> OutboxWorker:
        options = {
            "clinic_name": "Birchwood Skin Studio (demo)",
            "policy": RetryPolicy(
                settings.outbox_retry_base_seconds,
                settings.outbox_retry_max_seconds,
                settings.outbox_max_attempts,
            ),
            "lease": timedelta(seconds=settings.outbox_lease_seconds),
            "renotify_after": timedelta(seconds=settings.escalation_renotify_seconds),
            "clock": clock,
        }
        options.update(overrides)
        return OutboxWorker(
            db, build_notifiers(settings) if notifiers is None else notifiers, contacts, **options
        )

    return make
