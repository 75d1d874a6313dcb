"""One settings object for the clinic app, read from the environment (prefix `ASSISTANT_`) or `.env`.

Development and tests start with no configuration at all. `production` refuses to start unless every
secret is real (not empty, not a placeholder) and at least one real staff alert channel with a real
recipient is configured: otherwise a red flag would be "escalated" to nobody.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDERS = {"", "change-me", "changeme", "secret", "placeholder", "todo"}
DEMO_RECIPIENTS = ("+1555010", "@clinic.test", "@example.", "555-01", "5550100")
SECRETS = ("action_token", "secret_key")


class Settings(BaseSettings):
    """Everything that differs between a laptop, CI and a clinic's server."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=ROOT / ".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # the address patients and providers use (e.g. https://chat.clinic.example)
    var_dir: Path = ROOT / "var"
    database_url: str = ""  # empty: SQLite file var/app.db

    # Rasa server (loopback only) and the shared secret it presents when calling our action endpoint.
    rasa_port: int = 5005
    rasa_url: str = ""  # empty: http://127.0.0.1:<rasa_port>
    rasa_timeout_seconds: float = 5.0
    action_token: str = ""
    rasa_session_turns: int = 20  # a new Rasa session (slots carried over) every N turns keeps turns fast
    tracker_dialect: str = "sqlite"
    tracker_url: str = ""
    tracker_db: str = ""  # empty: var/rasa-tracker.db

    # Signs session tokens; required in production (development keeps one in var/secret_key).
    secret_key: str = ""
    session_max_age_seconds: int = 30 * 24 * 3600

    # Knowledge base.
    articles_dir: Path = ROOT / "knowledge" / "articles"
    clinic_profile: Path = ROOT / "knowledge" / "clinic.yml"
    index_dir: Path = Path()  # empty: var/index
    learned_dir: Path = Path()  # empty: var/learned (the learned triage layer)
    embedding_model: str = ""  # empty: the bundled all-MiniLM-L6-v2 weights
    # One thread per query embedding: on a small server the app shares its cores with Rasa, and torch's
    # default (all cores) made queries 10-20x slower whenever Rasa was busy.
    torch_threads: int = 1

    # Input limits for every channel.
    max_message_chars: int = 2000
    max_body_bytes: int = 16_384  # request bodies larger than this are refused before they are read
    docs_enabled: bool | None = None  # /docs and /openapi.json; default: on except in production
    cors_origins: str = ""  # comma-separated origins (the clinic's website) allowed to call the chat API
    frame_ancestors: str = ""  # origins allowed to frame the app's pages (CSP frame-ancestors)

    # Rate limits ("N/second|minute|hour"); storage memory:// or redis://host:port for several instances.
    rate_limit_storage: str = "memory://"
    rate_limit_per_client: str = "30/minute"
    rate_limit_per_conversation: str = "15/minute"
    rate_limit_global: str = "3000/minute"
    rate_limit_new_sessions: str = "60/hour"

    # --- Staff accounts, admin UI and publishing (issue 12) ---------------------------------------------
    # Staff sign in with their own accounts (`python -m bot.staff create-admin` makes the first one); the
    # staff API takes personal tokens. Cookies are Secure outside development.
    staff_session_hours: int = 12
    staff_cookie_secure: bool | None = None  # default: on except in development
    staff_login_rate: str = "10/minute"  # sign-in attempts per client address
    staff_max_failed_logins: int = 5  # wrong passwords in a row that lock an account ...
    staff_lockout_minutes: int = 15  # ... for this long
    staff_review_months: int = 12  # a clinician's sign-off is due for review after this long by default
    knowledge_poll_seconds: float = 2.0  # how often an app instance looks for newly published content
    max_upload_bytes: int = 10_000_000  # guidance documents and article archives imported in the admin UI

    # --- web chat widget (bot/channels/web, docs/widget.md) ---
    # Reads (the widget's script, styles and texts, and its polling for staff replies) have their own
    # per-client limit, so a widget waiting for staff never uses up the patient's message allowance.
    rate_limit_reads_per_client: str = "240/minute"
    widget_poll_seconds: float = 3.0  # how often the open widget asks for staff replies during a handoff
    widget_idle_poll_seconds: float = 20.0  # ... and otherwise (staff may take a conversation over)

    # Escalation notifications to staff. A channel is used only when it is configured; secrets come from
    # the environment only. Development points these at the fakes (python -m bot.fakes).
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
    escalation_dedupe_seconds: float = 24 * 3600.0  # the same red flag in one conversation: one escalation
    escalation_renotify_seconds: float = 900.0  # unacknowledged escalation -> backup contact
    escalations_per_source: int = 5  # alerts per source and window; more are folded into the last one
    escalation_source_window_seconds: float = 3600.0
    outbox_poll_seconds: float = 2.0
    outbox_lease_seconds: float = 60.0  # a claimed message is retried by others only after this
    outbox_retry_base_seconds: float = 2.0
    outbox_retry_max_seconds: float = 300.0
    outbox_max_attempts: int = 15

    # --- Texting channels (issue 11): SMS and WhatsApp through Twilio, WhatsApp Cloud API direct ----------
    # Twilio's Messaging webhook (POST /channels/twilio/messages, SMS and whatsapp: senders) and its status
    # callbacks (POST /channels/twilio/status), signed with twilio_auth_token over public_url + path.
    twilio_messaging_enabled: bool = False
    twilio_webhook_shared_key: SecretStr = SecretStr("")  # a Twilio Webhooks SharedKey secret, if one signs
    twilio_keyword_replies: bool = False  # on: the app answers SMS STOP/START/HELP (Twilio's own replies off)
    twilio_whatsapp_content_sid: str = ""  # approved template (one variable) for WhatsApp outside 24 hours
    # WhatsApp Cloud API (Meta) direct: GET/POST /channels/whatsapp/webhook, replies via the Graph API.
    whatsapp_enabled: bool = False
    whatsapp_verify_token: SecretStr = SecretStr("")
    whatsapp_app_secret: SecretStr = SecretStr("")  # signs the webhook bodies (X-Hub-Signature-256)
    whatsapp_access_token: SecretStr = SecretStr("")
    whatsapp_phone_number_id: str = ""
    whatsapp_graph_url: str = "https://graph.facebook.com"
    whatsapp_graph_version: str = "v21.0"
    whatsapp_template_name: str = ""  # approved template with one body variable, for outside the window
    whatsapp_template_language: str = "en"
    # Both channels.
    sms_max_segments: int = 4  # a longer answer is shortened at a sentence, never split into more parts
    texting_rate_limit_per_sender: str = "10/minute"
    texting_slow_down_notices: str = "1/10 minutes"  # "slow down" replies per sender; more are not sent
    texting_max_body_bytes: int = 65_536  # webhook bodies (Meta batches events); larger ones get 413
    texting_lease_seconds: float = 120.0  # an inbound message being handled is retried after this
    texting_dedupe_days: int = 7  # handled message ids are kept this long (Meta redelivers for days)

    @model_validator(mode="after")
    def _texting_channels_have_secrets(self) -> Settings:
        """An enabled texting channel without its secrets could not tell a provider from a forger."""
        problems = []
        if self.twilio_messaging_enabled:
            if _placeholder(self.twilio_auth_token.get_secret_value()):
                problems.append("ASSISTANT_TWILIO_AUTH_TOKEN")
            if not self.twilio_account_sid:
                problems.append("ASSISTANT_TWILIO_ACCOUNT_SID")
            if not self.public_url.startswith(("https://", "http://")):
                problems.append(
                    "ASSISTANT_PUBLIC_URL (the address Twilio calls, e.g. https://chat.clinic.example)"
                )
        if self.whatsapp_enabled:
            secrets_needed = {
                "ASSISTANT_WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
                "ASSISTANT_WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
                "ASSISTANT_WHATSAPP_ACCESS_TOKEN": self.whatsapp_access_token,
            }
            problems += [
                name for name, value in secrets_needed.items() if _placeholder(value.get_secret_value())
            ]
            if not self.whatsapp_phone_number_id:
                problems.append("ASSISTANT_WHATSAPP_PHONE_NUMBER_ID")
        if problems:
            raise ValueError(f"an enabled texting channel needs: {', '.join(problems)}")
        return self

    # --- hardening (issue 7, docs/security.md) ---
    # SQLite "database is locked": how long a statement waits and retries for another connection's lock.
    database_busy_timeout_seconds: float = 10.0

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'app.db'}"
        if not self.rasa_url:
            self.rasa_url = f"http://127.0.0.1:{self.rasa_port}"
        if not self.tracker_db:
            self.tracker_db = str(self.var_dir / "rasa-tracker.db")
        if self.index_dir == Path():
            self.index_dir = self.var_dir / "index"
        if self.learned_dir == Path():
            self.learned_dir = self.var_dir / "learned"
        if self.docs_enabled is None:
            self.docs_enabled = self.environment != "production"
        if self.staff_cookie_secure is None:
            self.staff_cookie_secure = self.environment != "development"
        if self.environment != "production":
            # Development and tests: a random secret per process is safe and needs no set-up (the launcher
            # gives Rasa and the app the same one).
            self.action_token = self.action_token or secrets.token_urlsafe(24)
        return self

    @model_validator(mode="after")
    def _production_is_real(self) -> Settings:
        if self.environment != "production":
            return self
        problems = [f"ASSISTANT_{name.upper()}" for name in SECRETS if _placeholder(getattr(self, name))]
        needed = {"twilio_auth_token": self.twilio_account_sid, "webhook_secret": self.webhook_url}
        problems += [
            f"ASSISTANT_{name.upper()}"
            for name, channel_setting in needed.items()
            if channel_setting and _placeholder(getattr(self, name).get_secret_value())
        ]
        if problems:
            raise ValueError(f"production needs real secrets: set {', '.join(problems)}")
        if not self.real_alert_channels():
            raise ValueError(
                "production needs at least one staff alert channel with a real recipient: configure SMS "
                "(ASSISTANT_TWILIO_* and ASSISTANT_ON_CALL_PHONE), e-mail (ASSISTANT_SMTP_*, "
                "ASSISTANT_STAFF_EMAIL) or a webhook (ASSISTANT_WEBHOOK_URL, ASSISTANT_WEBHOOK_SECRET)"
            )
        return self

    def real_alert_channels(self) -> list[str]:
        """The staff alert channels that are configured and point at a non-demo recipient."""
        channels = []
        if self.twilio_account_sid and self.twilio_from_number and _real(self.on_call_phone):
            channels.append("sms")
        if self.smtp_host and self.smtp_from and _real(self.staff_email):
            channels.append("email")
        if self.webhook_url and "127.0.0.1" not in self.webhook_url and "localhost" not in self.webhook_url:
            channels.append("webhook")
        return channels

    def session_secret_key(self) -> str:
        """The key that signs session tokens. Development keeps a random one in var/ across restarts."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
        key = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(key)
        return key


def _placeholder(value: str) -> bool:
    return value.strip().lower() in PLACEHOLDERS


def _real(recipient: str) -> bool:
    return bool(recipient) and not any(marker in recipient for marker in DEMO_RECIPIENTS)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests pass their own to `create_app(settings)`)."""
    return Settings()
