"""The public chat API contract (ARCHITECTURE.md, "Public chat API"): keep it stable."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

Kind = Literal["answer", "fallback", "escalation", "smalltalk", "handoff"]
TriageLevel = Literal["none", "routine", "urgent", "emergency"]
SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """Half an emoji (a client that cut a UTF-16 pair) becomes a space: UTF-8 cannot hold it, so neither can
    the database, a log line or a JSON reply. Runs before validation, which would refuse the whole text."""
    return _SURROGATES.sub(" ", value) if isinstance(value, str) else value


# Free text from a client: lone surrogates are replaced at the boundary instead of failing the request.
ClientText = Annotated[str, BeforeValidator(without_lone_surrogates)]


def not_a_boolean(value: Any) -> Any:
    """For whole numbers as JSON Schema means them: 355 or 355.0, never true/false (Python's 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


class ChatRequest(BaseModel):
    session_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=SESSION_ID_PATTERN,
        description="null starts a new session; otherwise the id the server issued, with its token in the "
        "X-Session-Token header",
    )
    text: ClientText = Field(max_length=8000, description="what the patient wrote")
    # Read by the chat route rather than refused here: a date that cannot be true must not cost a red flag in
    # the same request its reply (bot/channels/api.py).
    treatment_date: Annotated[str, WithJsonSchema({"type": "string", "format": "date"})] | None = Field(
        default=None,
        max_length=32,
        description="the day of the treatment (YYYY-MM-DD), if known; not in the future",
    )


class Source(BaseModel):
    id: str
    title: str
    version: int | None = None


class Button(BaseModel):
    title: str
    payload: str


class ChatMessage(BaseModel):
    text: str
    kind: Kind
    triage: TriageLevel = "none"
    sources: list[Source] = []
    buttons: list[Button] = []
    alerted: bool | None = Field(
        default=None,
        description="urgent and emergency messages: whether clinic staff have been durably alerted "
        "(null for every other message)",
    )


class ChatResponse(BaseModel):
    session_id: str | None = Field(description="null only when the clinic's records could not be reached")
    session_token: str | None = Field(
        default=None, description="issued with a new session: send it as X-Session-Token with later requests"
    )
    messages: list[ChatMessage]


class Problem(BaseModel):
    field: str
    problem: str


class ErrorResponse(BaseModel):
    detail: str
    problems: list[Problem] = []


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    rasa: bool
    database: bool
    index_version: str
    index_passages: int
    embedding_model: str
    learned_triage: bool
    outbox_pending: int | None
    outbox_oldest_pending_seconds: float | None
    outbox_failed: int | None


ERRORS = {
    400: {"model": ErrorResponse, "description": "malformed request"},
    401: {"model": ErrorResponse, "description": "missing, forged, expired or ended session token"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    422: {"model": ErrorResponse, "description": "invalid field"},
    429: {"model": ErrorResponse, "description": "too many requests"},
    503: {"model": ErrorResponse, "description": "the clinic's records are unavailable: call the clinic"},
}
# Every route can answer these (the body limit and the error handlers sit in front of all of them), so the
# OpenAPI document declares them everywhere, in the one error schema.
COMMON_ERRORS = {
    **{status: ERRORS[status] for status in (400, 413, 422, 429, 503)},
    500: {"model": ErrorResponse, "description": "unexpected error (logged by its class); call the clinic"},
}
