"""Tables of the staff side: accounts, sessions, API tokens, the article store, sign-offs, releases, audit.

Change them only together with a migration (bot/migrations/versions/0006_staff.py).

The article store keeps every version of every article. `kb_articles` says which version staff are working
on (`head_version`) and which one patients are told (`published_version`); a sign-off names the exact
version (and its content hash) a clinician approved. Each publish, rollback or retirement adds a release:
the app instances compare its content hash with the index they serve and swap when it differs.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base, utcnow

ROLES = ("admin", "editor", "clinician")
ARTICLE_STATUSES = ("draft", "in_review", "published", "retired")


class StaffUser(Base):
    """A member of the clinic's staff who signs in to the admin UI or calls the staff API."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))  # admin | editor | clinician
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # consecutive, reset on success
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its SHA-256 is kept here."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie secret
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiToken(Base):
    """A personal token for the staff JSON API; shown once, kept only as a SHA-256 hash."""

    __tablename__ = "staff_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, so staff can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ArticleRecord(Base):
    """One article of the knowledge base: which version staff work on, which one patients get."""

    __tablename__ = "kb_articles"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # the article id (kebab-case)
    head_version: Mapped[int] = mapped_column(Integer)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # draft | in_review | published | retired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ArticleVersion(Base):
    """One saved version of an article's content; never changed once written."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_kb_article_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    days_first: Mapped[int | None] = mapped_column(Integer, nullable=True)
    days_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_section: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # JSON {"questions", "covers", "counterparts"}: what the article answers (None: saved before 0007)
    answering: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the content fields
    origin: Mapped[str] = mapped_column(String(16))  # seed | edit | import | document | rollback
    note: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))  # display name at the time
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignOff(Base):
    """A clinician's approval of one exact version (by number and content hash), valid until `review_by`."""

    __tablename__ = "kb_signoffs"
    __table_args__ = (Index("ix_kb_signoffs_article_version", "article_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[str] = mapped_column(ForeignKey("kb_articles.id"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    clinician: Mapped[str] = mapped_column(String(80))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    review_by: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(300), nullable=True)


class KnowledgeRelease(Base):
    """A change of what patients are told; app instances swap to its content when theirs differs."""

    __tablename__ = "kb_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # knowledge.index.content_hash of the published set
    reason: Mapped[str] = mapped_column(String(16))  # seed | publish | rollback | retire | import
    article_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """Who changed, approved, published or rolled back what, and when. Never holds patient text."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # display name at the time (or "system")
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str | None] = mapped_column(String(24), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class UnansweredGroup(Base):
    """Unanswered questions that say the same thing, so staff deal with them once."""

    __tablename__ = "unanswered_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    representative: Mapped[str] = mapped_column(Text)  # the first question of the group, redacted
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32 embedding of the representative
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)  # linked | drafted
    article_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
