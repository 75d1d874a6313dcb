"""HTTP-level protections for every endpoint: a body size limit before anything parses, security headers,
and a last line that turns anything unexpected into a 500 in the declared error schema.

All are plain ASGI middleware, so they run before FastAPI reads or validates a byte of the request.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.errors import where

log = logging.getLogger(__name__)

PATIENT_DATA_PREFIXES = ("/api", "/admin", "/webhook", "/channels")


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "problems": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class OneValuePerQueryParameter:
    """422 for a query parameter given more than once (`?limit=1&limit=5`): no parameter of this API takes a
    list, and taking one of the values silently would answer a request that does not say what it means."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            names = Counter(
                name for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            )
            repeated = sorted(name for name, count in names.items() if count > 1)
            if repeated:
                await _refuse(send, 422, f"query parameter given more than once: {', '.join(repeated)[:100]}")
                return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """413 for a request whose body is larger than `max_bytes`: by its Content-Length before reading, or
    while it streams in (a chunked body that keeps going). The body is read here, up to the limit, before
    the app sees a byte of it, so nothing downstream can be made to parse or buffer more."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max = max_bytes
        self.larger = larger or {}  # path prefix -> its own limit (Rasa's action calls carry the tracker)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        max_bytes = next(
            (limit for prefix, limit in self.larger.items() if path.startswith(prefix)), self.default_max
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "bad content-length")
                return
            if int(declared) > max_bytes:
                await _refuse(send, 413, f"the request body is larger than {max_bytes} bytes")
                return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            received += len(message.get("body", b""))
            if received > max_bytes:
                await _refuse(send, 413, f"the request body is larger than {max_bytes} bytes")
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, already read, handed to the app as one message; then whatever the client does next."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class UnexpectedErrors:
    """Whatever escapes the app becomes a 500 in the declared error schema, logged by its class and the line
    it came from: never a traceback (in the reply or the log), which can quote a patient's words."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:  # noqa: BLE001 - this is the last place that can still answer
            route = getattr(scope.get("route"), "path", "unmatched route")
            log.error("unexpected error on %s: %s at %s", route, type(error).__name__, where(error))
            if not started:
                await _refuse(send, 500, "internal error; please call the clinic")


def ancestors_of(frame_ancestors: str) -> str:
    """The CSP `frame-ancestors` sources from the comma-separated setting; nobody when it is empty."""
    ancestors = " ".join(origin.strip() for origin in frame_ancestors.split(",") if origin.strip())
    return ancestors or "'none'"


def content_security_policy(frame_ancestors: str = "") -> str:
    """The policy on everything the app serves: only its own scripts, styles and connections."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {ancestors_of(frame_ancestors)}"
    )


class SecurityHeaders:
    """Headers on every response: no sniffing, no framing except by the clinic's site, a strict CSP, and no
    caching of anything that can hold patient data."""

    def __init__(self, app: ASGIApp, frame_ancestors: str = "") -> None:
        self.app = app
        self.frame_ancestors = ancestors_of(frame_ancestors)
        self.csp = content_security_policy(frame_ancestors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                if path.startswith("/docs"):
                    # Swagger UI needs its own inline bootstrap script; only when /docs is enabled at all.
                    headers.setdefault(
                        "Content-Security-Policy",
                        self.csp.replace(
                            "script-src 'self'", "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net"
                        ).replace("style-src 'self'", "style-src 'self' https://cdn.jsdelivr.net"),
                    )
                else:
                    headers.setdefault("Content-Security-Policy", self.csp)
                if self.frame_ancestors == "'none'":
                    headers.setdefault("X-Frame-Options", "DENY")
                if path.startswith(PATIENT_DATA_PREFIXES):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
