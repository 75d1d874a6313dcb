"""HTTP-level protections for every endpoint: a body size limit before anything parses, security headers.

Both are plain ASGI middleware, so they run before FastAPI reads or validates a byte of the request.
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PATIENT_DATA_PREFIXES = ("/api", "/admin", "/webhook", "/channels")


class BodyTooLarge(Exception):
    pass


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


class BodySizeLimit:
    """413 for a request whose body is larger than `max_bytes`: by its Content-Length before reading, or
    while it streams in (a chunked body that keeps going)."""

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
        await self._limited(scope, receive, send, max_bytes)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > max_bytes
            except ValueError:
                await _refuse(send, 400, "bad content-length")
                return
            if too_big:
                await _refuse(send, 413, f"the request body is larger than {max_bytes} bytes")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, f"the request body is larger than {max_bytes} bytes")


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
