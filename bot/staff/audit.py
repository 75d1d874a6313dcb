"""The audit log: who changed, approved, published or rolled back what, and when.

Entries are written in the same transaction as the change they describe, so the log cannot miss a change
that happened nor record one that did not. They name articles, versions, users and conversation references;
never patient text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import Database
from bot.models import as_utc, utcnow
from bot.staff.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting: always the signed-in user or the owner of the API token, never a name in a request."""

    id: int | None
    username: str
    display_name: str
    role: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(None, name, name, "system")


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    version: int | None = None,
    **detail: Any,
) -> None:
    """Add one entry in the caller's transaction."""
    session.add(
        AuditEntry(
            at=utcnow(),
            user_id=actor.id,
            actor=actor.display_name,
            action=action,
            target_type=target_type,
            target_id=target_id,
            version=version,
            detail=detail or None,
        )
    )


def write(db: Database, actor: Actor, action: str, **fields: Any) -> None:
    """One entry in a transaction of its own (for actions that change nothing else, such as a login)."""
    with db.session() as session:
        record(session, actor, action, **fields)


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    version: int | None
    detail: dict | None


def entries(
    db: Database,
    *,
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    limit: int = 200,
) -> list[AuditLine]:
    """Newest first, optionally for one action, one actor (display name) or one target."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    with db.session() as session:
        rows = session.scalars(query).all()
    return [
        AuditLine(as_utc(r.at), r.actor, r.action, r.target_type, r.target_id, r.version, r.detail)
        for r in rows
    ]
