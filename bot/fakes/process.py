"""The notification fakes as a process next to the app (development and tests), and the settings that
point the app at them. The launcher starts them only when no real notifier is configured."""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

# 34 characters like a real Account SID, and obviously not one.
FAKE_ACCOUNT_SID = "AC" + "fa4e" * 8
FAKE_PHONE_NUMBER_ID = "100000000000001"  # the WhatsApp Cloud API's id of the clinic's number, in the fake
REAL_NOTIFIER_SETTINGS = ("ASSISTANT_TWILIO_ACCOUNT_SID", "ASSISTANT_SMTP_HOST", "ASSISTANT_WEBHOOK_URL")


FAKE_ENVIRONMENTS = ("development", "test")


def fakes_wanted(settings: Mapping[str, str]) -> bool:
    """In development or test only (never in production, nor any other environment), when none of the real
    notifiers is configured (environment and .env merged)."""
    if settings.get("ASSISTANT_ENVIRONMENT", "development") not in FAKE_ENVIRONMENTS:
        return False
    return not any(settings.get(name) for name in REAL_NOTIFIER_SETTINGS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class NotificationFakes:
    smtp_port: int = field(default_factory=_free_port)
    twilio_port: int = field(default_factory=_free_port)
    webhook_port: int = field(default_factory=_free_port)
    control_port: int = field(default_factory=_free_port)
    meta_port: int = field(default_factory=_free_port)
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    meta_access_token: str = field(default_factory=lambda: secrets.token_hex(16))
    meta_app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    meta_verify_token: str = field(default_factory=lambda: secrets.token_hex(16))
    meta_phone_number_id: str = FAKE_PHONE_NUMBER_ID

    @property
    def control_url(self) -> str:
        """`GET {control_url}/received` lists what each fake received."""
        return f"http://127.0.0.1:{self.control_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "bot.fakes",
            "--smtp-port", str(self.smtp_port), "--twilio-port", str(self.twilio_port),
            "--webhook-port", str(self.webhook_port), "--control-port", str(self.control_port),
            "--twilio-account-sid", FAKE_ACCOUNT_SID, "--twilio-auth-token", self.auth_token,
            "--webhook-secret", self.webhook_secret,
            "--meta-port", str(self.meta_port), "--meta-access-token", self.meta_access_token,
            "--meta-app-secret", self.meta_app_secret, "--meta-phone-number-id", self.meta_phone_number_id,
        ]  # fmt: skip

    def app_environment(self) -> dict[str, str]:
        """Settings that send every staff notification to the fakes (fictional 555-01xx numbers)."""
        return {
            "ASSISTANT_SMTP_HOST": "127.0.0.1",
            "ASSISTANT_SMTP_PORT": str(self.smtp_port),
            "ASSISTANT_SMTP_STARTTLS": "false",
            "ASSISTANT_SMTP_FROM": "assistant@clinic.test",
            "ASSISTANT_STAFF_EMAIL": "on-call@clinic.test",
            "ASSISTANT_TWILIO_ACCOUNT_SID": FAKE_ACCOUNT_SID,
            "ASSISTANT_TWILIO_AUTH_TOKEN": self.auth_token,
            "ASSISTANT_TWILIO_FROM_NUMBER": "+15550100100",
            "ASSISTANT_TWILIO_BASE_URL": f"http://127.0.0.1:{self.twilio_port}",
            "ASSISTANT_BACKUP_PHONE": "+15550100198",
            "ASSISTANT_WEBHOOK_URL": f"http://127.0.0.1:{self.webhook_port}/escalations",
            "ASSISTANT_WEBHOOK_SECRET": self.webhook_secret,
            # WhatsApp Cloud API: used once ASSISTANT_WHATSAPP_ENABLED is on.
            "ASSISTANT_WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{self.meta_port}",
            "ASSISTANT_WHATSAPP_ACCESS_TOKEN": self.meta_access_token,
            "ASSISTANT_WHATSAPP_APP_SECRET": self.meta_app_secret,
            "ASSISTANT_WHATSAPP_VERIFY_TOKEN": self.meta_verify_token,
            "ASSISTANT_WHATSAPP_PHONE_NUMBER_ID": self.meta_phone_number_id,
        }
