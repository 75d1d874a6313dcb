"""One settings object for the clinic app, read from the environment (prefix `ASSISTANT_`) or `.env`."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "change-me"


class Settings(BaseSettings):
    """Everything that differs between a laptop, CI and a clinic's server."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = ROOT / "var"
    database_url: str = ""  # empty: SQLite file var/app.db

    # Rasa server (loopback only) and the shared secret it presents when calling our action endpoint.
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 5.0
    action_token: str = ""
    rasa_session_turns: int = 20  # a new Rasa session (slots carried over) every N turns keeps turns fast

    # Knowledge base.
    articles_dir: Path = ROOT / "knowledge" / "articles"
    clinic_profile: Path = ROOT / "knowledge" / "clinic.yml"
    index_dir: Path = Path()  # empty: var/index
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2 weights
    # One thread per query embedding: on a small server the app shares its cores with Rasa, and torch's
    # default (all cores) made queries 10-20x slower whenever Rasa was busy.
    torch_threads: int = 1

    # Input limits for every channel.
    max_message_chars: int = 2000

    # Staff API (admin) bearer token.
    staff_token: str = ""

    # Escalation notifications to staff (bot/escalation). A channel is used only when it is configured;
    # secrets come from the environment only. Development points these at the fakes (python -m bot.fakes).
    on_call_phone: str = ""  # empty: the clinic profile's on_call_phone
    backup_phone: str = ""  # re-notified when an urgent escalation is not acknowledged in time
    staff_email: str = ""
    backup_email: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""
    smtp_starttls: bool = True
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    twilio_base_url: str = ""  # empty: Twilio's real API
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")  # signs the JSON body (X-Assistant-Signature: sha256=...)
    notify_timeout_seconds: float = 10.0
    escalation_dedupe_seconds: float = 600.0  # the same text in the same conversation: one escalation
    escalation_renotify_seconds: float = 900.0  # unacknowledged urgent escalation -> backup contact
    outbox_poll_seconds: float = 2.0
    outbox_lease_seconds: float = 60.0  # a claimed notification is retried by others only after this
    outbox_retry_base_seconds: float = 2.0
    outbox_retry_max_seconds: float = 300.0
    outbox_max_attempts: int = 15

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'app.db'}"
        if self.index_dir == Path():
            self.index_dir = self.var_dir / "index"
        for name in ("action_token", "staff_token"):
            value = getattr(self, name)
            if self.environment == "production" and value in ("", PLACEHOLDER):
                raise ValueError(f"ASSISTANT_{name.upper()} must be set to a real secret in production")
            if not value:
                # Development and tests: a random secret per process is safe and needs no set-up.
                setattr(self, name, secrets.token_urlsafe(24))
        return self

    @model_validator(mode="after")
    def _notifier_secrets(self) -> Settings:
        # A configured channel with a missing or placeholder secret would fail at the worst moment: refuse
        # to start instead (production only; development uses the fakes).
        if self.environment != "production":
            return self
        needed = {"twilio_auth_token": self.twilio_account_sid, "webhook_secret": self.webhook_url}
        for name, channel_setting in needed.items():
            if channel_setting and getattr(self, name).get_secret_value() in ("", PLACEHOLDER):
                raise ValueError(f"ASSISTANT_{name.upper()} must be set to a real secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests pass their own to `create_app(settings)`)."""
    return Settings()
