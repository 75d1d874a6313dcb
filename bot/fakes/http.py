"""A small threaded HTTP server for the fakes: JSON in and out, stoppable and restartable on one port."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.fakes.inbox import Inbox

Reply = tuple[int, Any]


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The body as an HTML form (what Twilio's API takes)."""
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class HttpFake(Inbox):
    """Subclasses implement `respond`; `start`/`stop` bring the server up and down, keeping its port."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        Inbox.__init__(self)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def start(self) -> HttpFake:
        if self._server is None:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
            self.port = self._server.server_address[1]  # a restart comes back on the same port
            # A short poll interval makes `stop` quick (tests take fakes down and up often).
            quick_stop = {"poll_interval": 0.05}
            threading.Thread(target=self._server.serve_forever, kwargs=quick_stop, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, request: FakeRequest) -> Reply:
        raise NotImplementedError


def _handler_for(fake: HttpFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = FakeRequest(
                method=self.command,
                path=parts.path,
                query={key: values[-1] for key, values in parse_qs(parts.query).items()},
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            status, payload = fake.respond(request)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

        def log_message(self, *_args: object) -> None:
            """Silent: requests carry phone numbers."""

    return Handler
