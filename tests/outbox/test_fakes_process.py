"""The fakes as the launcher runs them: a process that receives over the real protocols and reports it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.fakes.process import FAKE_ACCOUNT_SID, NotificationFakes, fakes_wanted
from bot.launcher import ROOT
from bot.outbox.notice import Notice
from bot.outbox.notifiers import DeliveryError, EmailNotifier, SmsNotifier, WebhookNotifier


@pytest.fixture(scope="module")
def fakes() -> Iterator[NotificationFakes]:
    fakes = NotificationFakes()
    process = subprocess.Popen(fakes.command(), cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(fakes.control_url, timeout=1)
            break
        except httpx.HTTPError:
            assert process.poll() is None and time.monotonic() < deadline, "fakes did not start"
            time.sleep(0.1)
    yield fakes
    process.terminate()
    process.wait(timeout=10)


def notice(channel: str, recipient: str) -> Notice:
    return Notice(
        "esc1-n1-1", channel, recipient, "[Clinic] URGENT", "Ref esc1-n1-1", datetime.now(UTC), {"a": 1}
    )


def test_the_app_settings_reach_every_fake_and_control_reports_it(fakes: NotificationFakes) -> None:
    env = fakes.app_environment()
    SmsNotifier(
        FAKE_ACCOUNT_SID,
        env["ASSISTANT_TWILIO_AUTH_TOKEN"],
        env["ASSISTANT_TWILIO_FROM_NUMBER"],
        env["ASSISTANT_TWILIO_BASE_URL"],
    ).send(notice("sms", "+15550100199"))
    EmailNotifier("127.0.0.1", fakes.smtp_port, env["ASSISTANT_SMTP_FROM"], starttls=False).send(
        notice("email", env["ASSISTANT_STAFF_EMAIL"])
    )
    WebhookNotifier(env["ASSISTANT_WEBHOOK_SECRET"]).send(notice("webhook", env["ASSISTANT_WEBHOOK_URL"]))

    received = httpx.get(f"{fakes.control_url}/received").json()
    assert [m["to"] for m in received["sms"]] == ["+15550100199"]
    assert [m["rcpt_tos"] for m in received["email"]] == [["on-call@clinic.test"]]
    assert [(h["path"], h["signature_valid"]) for h in received["webhook"]] == [("/escalations", True)]


def test_a_fake_can_be_taken_down_and_brought_back(fakes: NotificationFakes) -> None:
    email = EmailNotifier("127.0.0.1", fakes.smtp_port, "assistant@clinic.test", starttls=False, timeout=2)
    assert httpx.post(f"{fakes.control_url}/email/down").json() == {"email": False}
    with pytest.raises(DeliveryError):
        email.send(notice("email", "on-call@clinic.test"))
    assert httpx.post(f"{fakes.control_url}/email/up").json() == {"email": True}
    email.send(notice("email", "on-call@clinic.test"))


@pytest.mark.parametrize(
    ("settings", "wanted"),
    [
        ({}, True),
        ({"ASSISTANT_ENVIRONMENT": "test"}, True),
        ({"ASSISTANT_ENVIRONMENT": "production"}, False),
        ({"ASSISTANT_SMTP_HOST": "smtp.clinic.example"}, False),
        ({"ASSISTANT_TWILIO_ACCOUNT_SID": "AC123"}, False),
        ({"ASSISTANT_WEBHOOK_URL": "https://hooks.clinic.example"}, False),
    ],
)
def test_fakes_stand_in_only_when_nothing_real_is_configured(settings, wanted) -> None:
    assert fakes_wanted(settings) is wanted
