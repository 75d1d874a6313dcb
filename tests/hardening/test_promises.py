"""Never promise what did not happen (issue 7, '"The clinic team has been alerted" can be untrue'): an
escalation the database refuses is retried, then spooled to disk and drained by the outbox worker; if even
the spool fails the patient is told to call; production refuses to start without real secrets and a real
alert channel; fakes stand in only in development and test; the outbox backlog is visible."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot.escalation.models import Escalation
from bot.fakes.process import fakes_wanted
from bot.launcher import Product
from bot.models import utcnow
from bot.outbox.models import PRIORITY, OutboxMessage
from bot.settings import Settings, get_settings
from knowledge.clinic import load_clinic_profile
from tests.conftest import ROOT, start_conversation
from tests.escalation.stubs import URGENT_TEXT
from tests.hardening.conftest import write_lock
from tests.staff_users import api_token

CLINIC = load_clinic_profile()
ALERTED = "The clinic team has been alerted."
CALL_YOURSELF = "We could not alert the clinic team automatically"


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def spooled(spool_dir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(spool_dir.glob("*.json"))]


def escalation_rows(db) -> list[Escalation]:
    with db.session() as session:
        return list(session.scalars(select(Escalation)))


# --- the write is retried, then spooled, then drained ----------------------------------------------------


def test_an_escalation_write_that_meets_a_locked_database_is_retried(
    db, db_path, escalations, caplog
) -> None:
    conversation = start_conversation(db)
    caplog.set_level(logging.WARNING, logger="bot.escalation.service")
    with write_lock(db_path, seconds=0.8):  # longer than one busy wait (0.3 s), shorter than three
        recorded = escalations.record(conversation, "urgent", ["local_infection"], "api", URGENT_TEXT)

    assert (recorded.status, recorded.alerted) == ("new", True)
    assert "escalation write attempt 1 failed: OperationalError" in caplog.text
    assert [row.id for row in escalation_rows(db)] == [recorded.escalation_id]
    assert spooled(escalations.spool_dir) == []


def test_an_escalation_the_database_keeps_refusing_is_spooled_then_drained_and_delivered(
    db, db_path, escalations, make_worker, twilio_fake, smtp_fake, webhook_fake
) -> None:
    conversation = start_conversation(db)
    with write_lock(db_path):
        recorded = escalations.record(conversation, "urgent", ["local_infection"], "api", URGENT_TEXT)
        assert (recorded.status, recorded.alerted) == ("spooled", True)
        [entry] = spooled(escalations.spool_dir)
        assert (entry["conversation_id"], entry["severity"], entry["text"]) == (
            conversation,
            "urgent",
            URGENT_TEXT,
        )
        with contextlib.suppress(OperationalError):  # the app's loop logs it and polls again
            make_worker().run_once()  # the database is still locked: the entry waits on disk
        assert len(spooled(escalations.spool_dir)) == 1

    assert make_worker().run_once() == 3, "drained, then delivered by SMS, e-mail and webhook"
    assert spooled(escalations.spool_dir) == []
    [escalation] = escalation_rows(db)
    assert (escalation.conversation_id, escalation.patient_text) == (conversation, URGENT_TEXT)
    assert len(twilio_fake.received()) == len(smtp_fake.received()) == len(webhook_fake.received()) == 1


def test_when_the_spool_fails_too_the_escalation_is_failed_and_not_alerted(
    db, db_path, escalations, tmp_path
) -> None:
    conversation = start_conversation(db)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    escalations.spool_dir = blocker / "escalations"
    with write_lock(db_path):
        recorded = escalations.record(conversation, "emergency", ["anaphylaxis"], "api", "throat closing")
    assert (recorded.status, recorded.alerted) == ("failed", False)


def test_the_patient_is_told_staff_know_only_once_the_spool_has_it(make_client, settings, db_path) -> None:
    client = make_client(settings, outbox_poll_seconds=0.1)
    services = client.services
    with write_lock(db_path):
        reply = client.post("/api/chat", json={"text": URGENT_TEXT}).json()
        first = reply["messages"][0]
        assert (first["kind"], first["alerted"]) == ("escalation", True)
        assert first["text"].endswith(ALERTED)
        assert len(spooled(services.escalations.spool_dir)) == 1

    wait_for(lambda: escalation_rows(services.db))  # the app's own worker drained the spool
    [escalation] = escalation_rows(services.db)
    assert escalation.severity == "urgent" and escalation.patient_text == URGENT_TEXT


def test_with_database_and_spool_both_down_the_patient_is_told_to_call_now(
    make_client, settings, db_path, tmp_path
) -> None:
    client = make_client(settings)
    blocker = tmp_path / "spool-blocker"
    blocker.write_text("")
    client.services.escalations.spool_dir = blocker / "escalations"
    with write_lock(db_path):
        response = client.post("/api/chat", json={"text": URGENT_TEXT})

    assert response.status_code == 200
    first = response.json()["messages"][0]
    assert (first["kind"], first["triage"], first["alerted"]) == ("escalation", "urgent", False)
    assert CALL_YOURSELF in first["text"] and CLINIC.phone in first["text"]
    assert ALERTED not in first["text"]


# --- production refuses to start unless an alert can reach a real person ----------------------------------

REAL_SECRETS = {
    "action_token": "rasa-and-app-share-this-one-7f3a9c",
    "secret_key": "signs-session-tokens-2b8e41d0c6",
}
REAL_SMS = {
    "twilio_account_sid": "AC" + "3" * 32,
    "twilio_auth_token": "real-twilio-auth-token-9c2e",
    "twilio_from_number": "+16175550987",
    "on_call_phone": "+16175551234",
}


def production(**values) -> Settings:
    return Settings(_env_file=None, environment="production", **values)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({}, "ASSISTANT_ACTION_TOKEN, ASSISTANT_SECRET_KEY"),
        ({**REAL_SECRETS, "secret_key": "change-me", **REAL_SMS}, "ASSISTANT_SECRET_KEY"),
        ({**REAL_SECRETS, **REAL_SMS, "twilio_auth_token": ""}, "ASSISTANT_TWILIO_AUTH_TOKEN"),
        (REAL_SECRETS, "at least one staff alert channel"),
        ({**REAL_SECRETS, **REAL_SMS, "on_call_phone": "+15550100199"}, "at least one staff alert channel"),
        ({**REAL_SECRETS, **REAL_SMS, "on_call_phone": ""}, "at least one staff alert channel"),
        (
            {
                **REAL_SECRETS,
                "smtp_host": "127.0.0.1",
                "smtp_from": "a@clinic.test",
                "staff_email": "x@clinic.test",
            },
            "at least one staff alert channel",
        ),
        (
            {
                **REAL_SECRETS,
                "webhook_url": "http://127.0.0.1:9/escalations",
                "webhook_secret": "s3cr3t-hook",
            },
            "at least one staff alert channel",
        ),
        (
            {**REAL_SECRETS, "webhook_url": "https://hooks.clinic-real.com/escalations"},
            "ASSISTANT_WEBHOOK_SECRET",
        ),
    ],
)
def test_production_refuses_settings_that_would_alert_nobody_real(values, complaint) -> None:
    with pytest.raises(ValidationError) as refused:
        production(**values)
    assert complaint in str(refused.value)


def test_production_accepts_real_secrets_and_one_real_channel() -> None:
    settings = production(**REAL_SECRETS, **REAL_SMS)
    assert settings.real_alert_channels() == ["sms"]
    assert settings.docs_enabled is False


def test_the_launcher_in_production_starts_no_fakes_and_invents_no_secrets(tmp_path) -> None:
    settings = production(**REAL_SECRETS, **REAL_SMS, var_dir=tmp_path)
    product = Product(model=tmp_path / "model.tar.gz", settings=settings)

    env = product.environment()
    assert product.fakes is None
    assert env["ASSISTANT_ACTION_TOKEN"] == REAL_SECRETS["action_token"]
    assert "ASSISTANT_TWILIO_BASE_URL" not in env or "127.0.0.1" not in env["ASSISTANT_TWILIO_BASE_URL"]


@pytest.mark.parametrize(
    ("environment", "wanted"),
    [("development", True), ("test", True), ("production", False), ("staging", False), ("", False)],
)
def test_fakes_stand_in_only_in_an_explicit_development_or_test_environment(environment, wanted) -> None:
    assert fakes_wanted({"ASSISTANT_ENVIRONMENT": environment}) is wanted


def launch(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    """`make run`'s last step (python -m bot.launcher), with only the given ASSISTANT_ settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_VAR_DIR": str(tmp_path), **environment})
    return subprocess.run(
        [sys.executable, "-m", "bot.launcher", "--model", str(tmp_path / "model.tar.gz")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("environment", "complaint"),
    [
        ({"ASSISTANT_ENVIRONMENT": "production"}, "production needs real secrets"),
        (
            {
                "ASSISTANT_ENVIRONMENT": "production",
                **{f"ASSISTANT_{k.upper()}": v for k, v in REAL_SECRETS.items()},
            },
            "at least one staff alert channel",
        ),
        ({"ASSISTANT_ENVIRONMENT": "prod"}, "ASSISTANT_ENVIRONMENT"),  # a typo is not development
    ],
)
def test_make_run_refuses_to_start_production_without_what_it_needs(tmp_path, environment, complaint) -> None:
    started = launch(tmp_path, **environment)

    assert started.returncode == 2, started.stdout + started.stderr
    assert "Could not start" in started.stderr and complaint in started.stderr
    assert "ready" not in started.stdout and not list(tmp_path.glob("*.log")), "nothing was started"


def test_the_app_process_itself_refuses_production_without_secrets(monkeypatch) -> None:
    from bot.main import create_app

    for name in [key for key in os.environ if key.startswith("ASSISTANT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ASSISTANT_ENVIRONMENT", "production")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="production needs real secrets"):
            create_app()
    finally:
        get_settings.cache_clear()


# --- the backlog is visible -------------------------------------------------------------------------------


def test_the_outbox_backlog_and_its_oldest_age_show_in_health_and_the_staff_console(client, services) -> None:
    conversation = start_conversation(services.db)
    now = utcnow()
    with services.db.session() as session:
        for number, minutes in enumerate((5, 2, 1)):
            session.add(
                OutboxMessage(
                    kind="reply",
                    priority=PRIORITY["reply"],
                    channel="sms",
                    recipient="+16175550100",
                    conversation_id=conversation,
                    body={"text": "waiting"},
                    dedupe_key=f"backlog-{number}",
                    status="pending",
                    attempts=1,
                    created_at=now - timedelta(minutes=minutes),
                    next_attempt_at=now + timedelta(hours=1),  # backing off: the worker leaves it
                )
            )

    health = client.get("/api/health").json()
    staff = client.get("/admin/outbox", headers={"Authorization": f"Bearer {api_token(services.db)}"}).json()
    for seen in (
        {"pending": health["outbox_pending"], "oldest": health["outbox_oldest_pending_seconds"]},
        {"pending": staff["pending"], "oldest": staff["oldest_pending_seconds"]},
    ):
        assert seen["pending"] == 3
        assert 300 <= seen["oldest"] < 360
