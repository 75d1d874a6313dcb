"""A fake SMTP server (aiosmtpd): accepts mail over the real protocol and keeps it in memory."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.fakes.inbox import Inbox

# aiosmtpd logs senders and recipients at INFO; the fake must not put addresses in logs either.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _StoreMail:
    """aiosmtpd handler: parse each accepted message and store it."""

    def __init__(self, fake: FakeSmtpServer) -> None:
        self.fake = fake

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook
        self, _server: Any, session: Any, envelope: Any, address: str, _options: list[str]
    ) -> str:
        if self.fake.username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        self.fake.store(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message_id": message["Message-ID"],
                "subject": message["Subject"],
                "headers": dict(message.items()),
                "body": body.get_content() if body else "",
            }
        )
        return "250 Message accepted for delivery"


class FakeSmtpServer(Inbox):
    """An SMTP server on 127.0.0.1; requires AUTH when credentials are given."""

    def __init__(
        self, port: int = 0, host: str = "127.0.0.1", username: str = "", password: str = ""
    ) -> None:
        self.host = host
        self.port = port or _free_port(host)  # fixed up front so a restart comes back on the same port
        self.username = username
        self.password = password
        self._controller: Controller | None = None
        Inbox.__init__(self)

    @property
    def is_up(self) -> bool:
        return self._controller is not None

    def start(self) -> FakeSmtpServer:
        if self._controller is None:
            # A new controller each time: a stopped one has closed its event loop.
            handler = _StoreMail(self)
            self._controller = Controller(handler, hostname=self.host, port=self.port, **self._auth())
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _auth(self) -> dict[str, Any]:
        if not self.username:
            return {}
        # Offered without TLS (loopback only, no certificate to manage); handle_RCPT insists on it.
        return {"authenticator": self._authenticate, "auth_require_tls": False}

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data == (self.username.encode(), self.password.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself
