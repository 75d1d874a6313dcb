"""Fakes of the services the app sends messages through, speaking their real protocols on 127.0.0.1.

Development and tests never message real people: the e-mail goes to an aiosmtpd server, the SMS (staff
alerts and patient replies) to an HTTP server that implements Twilio's Messages API, WhatsApp messages to a
fake of Meta's Graph API, the webhook to a receiver. Each keeps what it received in memory and can be taken
down and brought back up on the same port (failure injection).

    python -m bot.fakes --smtp-port 2525 --twilio-port 8025 --webhook-port 8026 --control-port 8027 ...

runs them plus a control endpoint (`GET /received`, `POST /<fake>/down`, `POST /<fake>/up`,
`POST /whatsapp/deliver`).
"""

from bot.fakes.meta import FakeMetaGraph
from bot.fakes.smtp import FakeSmtpServer
from bot.fakes.twilio import FakeTwilio
from bot.fakes.webhook import FakeWebhookReceiver

__all__ = ["FakeMetaGraph", "FakeSmtpServer", "FakeTwilio", "FakeWebhookReceiver"]
