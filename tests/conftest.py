"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.db import Database, migrate
from bot.escalation.service import EscalationService, StaffContacts
from bot.fakes import FakeSmtpServer, FakeTwilio, FakeWebhookReceiver
from bot.models import Conversation
from bot.outbox.notifiers import Notifier, build_notifiers
from bot.outbox.queue import Outbox
from bot.outbox.worker import OutboxWorker, RetryPolicy
from bot.settings import Settings
from knowledge.clinic import load_clinic_profile

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rasa_model() -> Path:
    """The trained Rasa model `make test` prepared (trained once per change of the training data)."""
    model = Path(os.environ.get("ASSISTANT_RASA_MODEL", ""))
    if not model.is_file():
        pytest.fail("no trained Rasa model: run the tests with `make test` (it trains the model once)")
    return model


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrations run once; each test gets a copy of the result."""
    path = tmp_path_factory.mktemp("template") / "app.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(tmp_path: Path, migrated_template: Path) -> Database:
    path = tmp_path / "app.db"
    shutil.copyfile(migrated_template, path)
    return Database(f"sqlite:///{path}")


def learned_cache() -> Path:
    """Where test runs keep the trained learned triage layer: beside the Rasa model, so CI caches it too."""
    return rasa_model().parent / "learned"


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The real product: Rasa server and clinic app as two processes on free loopback ports."""
    from bot.launcher import Product

    var_dir = tmp_path_factory.mktemp("var")
    # A new Rasa session every 3 turns, so multi-turn tests cross a session boundary. Every test patient
    # comes from 127.0.0.1, so the per-client limits are lifted (tests/conversation cover them).
    extra = {
        "ASSISTANT_ENVIRONMENT": "test",
        "ASSISTANT_RASA_SESSION_TURNS": "3",
        "ASSISTANT_LEARNED_DIR": str(learned_cache()),
        "ASSISTANT_RATE_LIMIT_PER_CLIENT": "100000/minute",
        "ASSISTANT_RATE_LIMIT_NEW_SESSIONS": "100000/hour",
        "ASSISTANT_RATE_LIMIT_READS_PER_CLIENT": "100000/minute",  # pages, widget files, polling
        "ASSISTANT_ESCALATIONS_PER_SOURCE": "1000",
        "ASSISTANT_RASA_TIMEOUT_SECONDS": "3",
    }
    settings = Settings(
        _env_file=None, environment="test", port=free_port(), rasa_port=free_port(), var_dir=var_dir
    )
    # Texting channels (tests/channels/texting): Twilio and Meta are the fakes, which sign what they send.
    extra |= {
        "ASSISTANT_TWILIO_MESSAGING_ENABLED": "true",
        "ASSISTANT_WHATSAPP_ENABLED": "true",
        "ASSISTANT_PUBLIC_URL": f"http://127.0.0.1:{settings.port}",
    }
    running = Product(model=rasa_model(), settings=settings, extra_env=extra)
    try:
        running.start(log_dir=var_dir)
    except Exception:
        running.stop()
        for log in sorted(var_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    yield running
    running.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, like the app."""
    return "asyncio"


# --- notification fakes, settings pointing at them, a manual clock ---------------------------------

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
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def escalations(
    db: Database, contacts: StaffContacts, outbox: Outbox, clock: Clock, tmp_path: Path
) -> EscalationService:
    return EscalationService(db, contacts, outbox, spool_dir=tmp_path / "spool", clock=clock)


@pytest.fixture
def make_worker(
    db: Database, settings: Settings, escalations: EscalationService, clock: Clock
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
            db, build_notifiers(settings) if notifiers is None else notifiers, escalations, **options
        )

    return make
