"""The public chat API contract (ARCHITECTURE.md, "Public chat API"): keep it stable."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["answer", "fallback", "escalation", "smalltalk", "handoff"]
TriageLevel = Literal["none", "routine", "urgent", "emergency"]


class ChatRequest(BaseModel):
    session_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="null starts a new session"
    )
    text: str = Field(description="what the patient wrote")
    treatment_date: date | None = Field(default=None, description="the day of the treatment, if known")


class Source(BaseModel):
    id: str
    title: str


class Button(BaseModel):
    title: str
    payload: str


class ChatMessage(BaseModel):
    text: str
    kind: Kind
    triage: TriageLevel = "none"
    sources: list[Source] = []
    buttons: list[Button] = []


class ChatResponse(BaseModel):
    session_id: str
    messages: list[ChatMessage]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    rasa: bool
    index_version: str
    index_passages: int
    embedding_model: str
