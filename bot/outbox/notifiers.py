"""Delivery channels of the outbox: SMS through Twilio's REST API, e-mail through SMTP, a signed JSON webhook.

Each notifier is synchronous (the outbox runs it in a thread), raises `DeliveryError` with a reason that is
safe to store and log (an error class or code, never an address or message text), and uses the notice's
stable key as the provider's idempotency handle where the protocol has one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import httpx
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.outbox.notice import Notice
from bot.settings import Settings

# The twilio library logs request URLs and response headers at INFO; keep our logs to ids and counts.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class DeliveryError(Exception):
    """The notice was not delivered this time; `str(error)` is safe to log."""


class DeliveryRefused(DeliveryError):
    """The notice must not or cannot be sent at all (the patient opted out, WhatsApp's 24-hour window has
    closed and no template is approved, the provider refuses the number): no retry."""


class Notifier(Protocol):
    channel: str

    def send(self, notice: Notice) -> str:
        """Deliver the notice; return the provider's reference (message sid, Message-ID, key)."""

    def already_delivered(self, notice: Notice) -> str | None:
        """Before a retry: the reference of an earlier attempt that got through, if the provider can tell."""


class SmsNotifier:
    """SMS through the Twilio REST API (`base_url` points the library at another host, e.g. the fake)."""

    channel = "sms"

    def __init__(
        self, account_sid: str, auth_token: str, from_number: str, base_url: str = "", timeout: float = 10.0
    ) -> None:
        self.from_number = from_number
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")

    def send(self, notice: Notice) -> str:
        try:
            message = self.client.messages.create(
                to=notice.recipient, from_=self.from_number, body=notice.text
            )
        except (TwilioException, requests.RequestException) as error:
            raise DeliveryError(_twilio_reason(error)) from error
        return str(message.sid)

    def already_delivered(self, notice: Notice) -> str | None:
        # Twilio's Messages API takes no idempotency key, so a retry first looks for an earlier attempt:
        # every SMS carries its key ("Ref <key>") and the list can be filtered by recipient and date.
        try:
            sent = self.client.messages.list(
                to=notice.recipient, from_=self.from_number, date_sent_after=notice.created_at, limit=100
            )
        except (TwilioException, requests.RequestException) as error:
            raise DeliveryError(_twilio_reason(error)) from error
        marker = f"Ref {notice.key}"
        return next((str(message.sid) for message in sent if marker in (message.body or "")), None)


def _twilio_reason(error: Exception) -> str:
    if isinstance(error, TwilioRestException):
        return f"twilio status {error.status} code {error.code}"
    return type(error).__name__


class EmailNotifier:
    """E-mail through an SMTP server (STARTTLS and login when configured)."""

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout

    def send(self, notice: Notice) -> str:
        message = self.message(notice)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(type(error).__name__) from error
        return str(message["Message-ID"])

    def already_delivered(self, notice: Notice) -> str | None:
        # SMTP cannot be asked. The Message-ID is the same on every attempt: mail systems can drop a repeat.
        return None

    def message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notice.recipient
        message["Subject"] = notice.subject
        message["Date"] = format_datetime(notice.created_at)
        message["Message-ID"] = f"<{notice.key}@{self.sender.rpartition('@')[2] or 'localhost'}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to the assistant
        message.set_content(notice.text)
        return message


class WebhookNotifier:
    """A JSON POST, signed with HMAC-SHA256 of the body, carrying the key in `Idempotency-Key`."""

    channel = "webhook"

    def __init__(self, secret: str = "", timeout: float = 10.0) -> None:
        self.secret = secret
        self.client = httpx.Client(timeout=timeout)

    def send(self, notice: Notice) -> str:
        body = json.dumps(notice.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": notice.key}
        if self.secret:
            headers["X-Assistant-Signature"] = sign(self.secret, body)
        try:
            self.client.post(notice.recipient, content=body, headers=headers).raise_for_status()
        except httpx.HTTPStatusError as error:
            raise DeliveryError(f"http status {error.response.status_code}") from error
        except httpx.HTTPError as error:
            raise DeliveryError(type(error).__name__) from error
        return notice.key

    def already_delivered(self, notice: Notice) -> str | None:
        return None  # receivers drop repeats by Idempotency-Key


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def configured_channels(settings: Settings) -> set[str]:
    """The channels whose settings are complete (the others are off)."""
    channels = set()
    token = settings.twilio_auth_token.get_secret_value()
    if settings.twilio_account_sid and token and settings.twilio_from_number:
        channels.add("sms")
    if settings.smtp_host and settings.smtp_from:
        channels.add("email")
    if settings.webhook_url:
        channels.add("webhook")
    return channels


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    """A notifier for each configured channel."""
    channels = configured_channels(settings)
    timeout = settings.notify_timeout_seconds
    notifiers: dict[str, Notifier] = {}
    if "sms" in channels:
        notifiers["sms"] = SmsNotifier(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from_number,
            settings.twilio_base_url,
            timeout,
        )
    if "email" in channels:
        notifiers["email"] = EmailNotifier(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_username,
            settings.smtp_password.get_secret_value(),
            settings.smtp_starttls,
            timeout,
        )
    if "webhook" in channels:
        notifiers["webhook"] = WebhookNotifier(settings.webhook_secret.get_secret_value(), timeout)
    return notifiers
