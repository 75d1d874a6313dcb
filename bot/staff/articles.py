"""The article store: where staff edit the knowledge base, with every version kept.

The database is the source of truth for articles once the app has started: the Markdown files in
knowledge/articles/ are the seed (imported, as published, into an empty store) and the export format.

Workflow: a save makes a new version (`head_version`) with status `draft`; an editor submits it
(`in_review`); a clinician publishes exactly that version, signing it off with a review-by date (see
bot/staff/publishing.py, which runs the safety gate first). The published version stays live while a newer
draft is worked on. A rollback copies an old version into a new one. Nothing is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.models import utcnow
from bot.staff import audit
from bot.staff.audit import Actor
from bot.staff.models import ArticleRecord, ArticleVersion, KnowledgeRelease, SignOff
from knowledge.articles import (
    ID_PATTERN,
    Article,
    ArticleError,
    article_from_text,
    article_to_text,
    load_articles,
)
from knowledge.index import content_hash

ANSWERING_FIELDS = ("questions", "covers", "counterparts")
UNREVIEWED = "unreviewed"  # the `reviewer` front-matter field of an article no clinician signed off yet
SEED_ACTOR = Actor.system("seed import")


class StoreError(ValueError):
    """A change the store refuses; the message says why in words staff can act on."""


class ConflictError(StoreError):
    """The article changed since the user opened it (another save, a publish)."""


@dataclass(frozen=True)
class Content:
    """The fields staff edit: an article without its review fields."""

    id: str
    title: str
    topic: str
    stage: str
    days: tuple[int, int] | None
    source_section: str
    body: str
    # What the article answers (front matter, see knowledge/articles.py); the staff forms do not edit these,
    # so a save without them keeps the previous version's while the title and topic stay the same.
    questions: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()
    counterparts: tuple[str, ...] = ()

    @classmethod
    def from_article(cls, article: Article) -> Content:
        return cls(
            article.id,
            article.title,
            article.topic,
            article.stage,
            article.days,
            article.source_section,
            article.body,
            article.questions,
            article.covers,
            article.counterparts,
        )

    @classmethod
    def from_row(cls, row: ArticleVersion) -> Content:
        days = None if row.days_first is None else (row.days_first, row.days_last or row.days_first)
        answering = json.loads(row.answering) if row.answering else {}
        return cls(
            row.article_id,
            row.title,
            row.topic,
            row.stage,
            days,
            row.source_section,
            row.body,
            *(tuple(answering.get(name) or ()) for name in ANSWERING_FIELDS),
        )

    @property
    def answering(self) -> dict[str, list[str]]:
        return {name: list(getattr(self, name)) for name in ANSWERING_FIELDS}

    def with_answering_of(self, other: Content) -> Content:
        """This content with `other`'s questions, covers and counterparts when it has none of its own and
        is still about the same thing (same title and topic). A retitled article does not inherit them: a
        stale question list would keep routing patients to text that no longer answers them."""
        if any(self.answering.values()) or (self.title, self.topic) != (other.title, other.topic):
            return self
        return replace(self, **{name: getattr(other, name) for name in ANSWERING_FIELDS})

    def article(self, version: int, review_status: str = "draft", reviewer: str = UNREVIEWED) -> Article:
        return Article(
            id=self.id,
            title=self.title,
            topic=self.topic,
            stage=self.stage,
            days=self.days,
            source_section=self.source_section,
            review_status=review_status,
            reviewer=reviewer,
            version=version,
            body=self.body,
            questions=self.questions,
            covers=self.covers,
            counterparts=self.counterparts,
        )

    def normalised(self) -> Content:
        """Line endings and surrounding blanks as the Markdown files have them."""
        body = "\n".join(line.rstrip() for line in self.body.replace("\r\n", "\n").split("\n")).strip()
        return replace(
            self,
            id=self.id.strip(),
            title=" ".join(self.title.split()),
            topic=self.topic.strip(),
            stage=self.stage.strip(),
            source_section=" ".join(self.source_section.split()),
            body=body,
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(article_to_text(self.article(1)).encode("utf-8")).hexdigest()


def problems(content: Content) -> list[str]:
    """What is wrong with the content, as the article validator says it (empty: it is valid)."""
    if not ID_PATTERN.match(content.id or ""):
        return [f"id '{content.id}' must be kebab-case (a-z, 0-9, '-')"]
    try:
        article_from_text(content.id, article_to_text(content.article(1)))
    except ArticleError as error:
        return [part.strip() for part in str(error).split(":", 1)[-1].split(";")]
    return []


@dataclass(frozen=True)
class VersionInfo:
    version: int
    content: Content
    content_hash: str
    origin: str
    note: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class SignOffInfo:
    version: int
    clinician: str
    signed_at: datetime
    review_by: date
    note: str | None
    content_hash: str


@dataclass(frozen=True)
class ArticleState:
    """An article as staff see it: status, the draft being worked on, the published version."""

    id: str
    status: str
    head: VersionInfo
    published: VersionInfo | None
    signoff: SignOffInfo | None  # of the published version
    updated_at: datetime

    def review_due(self, today: date) -> bool:
        return self.signoff is not None and self.published is not None and self.signoff.review_by <= today

    @property
    def has_unpublished_changes(self) -> bool:
        return self.published is None or self.head.version != self.published.version


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class ArticleStore:
    """Reads and changes articles; every change is audited in its own transaction."""

    def __init__(self, db: Database, review_months: int = 12) -> None:
        self.db = db
        self.review_months = review_months

    # --- reading ---------------------------------------------------------------------------------------
    def states(self) -> list[ArticleState]:
        """Every article, in three queries whatever the size of the knowledge base."""
        with self.db.session() as session:
            records = session.scalars(select(ArticleRecord).order_by(ArticleRecord.id)).all()
            wanted = {(r.id, r.head_version) for r in records} | {
                (r.id, r.published_version) for r in records if r.published_version is not None
            }
            versions = {
                (row.article_id, row.version): row
                for row in session.scalars(select(ArticleVersion))
                if (row.article_id, row.version) in wanted
            }
            signoffs = {
                (row.article_id, row.version): row
                for row in session.scalars(select(SignOff).order_by(SignOff.id))
            }
            return [_state_of(record, versions, signoffs) for record in records]

    def state(self, article_id: str) -> ArticleState | None:
        with self.db.session() as session:
            record = session.get(ArticleRecord, article_id)
            return self._state(session, record) if record is not None else None

    def versions(self, article_id: str) -> list[VersionInfo]:
        """Every version, newest first."""
        query = (
            select(ArticleVersion)
            .where(ArticleVersion.article_id == article_id)
            .order_by(ArticleVersion.version.desc())
        )
        with self.db.session() as session:
            return [_version_info(row) for row in session.scalars(query)]

    def version(self, article_id: str, version: int) -> VersionInfo | None:
        with self.db.session() as session:
            row = _version_row(session, article_id, version)
            return _version_info(row) if row is not None else None

    def signoffs(self, article_id: str) -> dict[int, SignOffInfo]:
        query = select(SignOff).where(SignOff.article_id == article_id).order_by(SignOff.id)
        with self.db.session() as session:
            return {row.version: _signoff_info(row) for row in session.scalars(query)}

    def published_articles(self) -> list[Article]:
        """What patients are told: the published version of every article, as the index takes it."""
        with self.db.session() as session:
            return _published(session)

    def working_articles(self) -> list[Article]:
        """Every article at its newest version (drafts included) as if published: for "try it"."""
        with self.db.session() as session:
            records = session.scalars(select(ArticleRecord).where(ArticleRecord.status != "retired")).all()
            articles = []
            for record in records:
                row = _version_row(session, record.id, record.head_version)
                if row is not None:
                    articles.append(Content.from_row(row).article(row.version, "approved", UNREVIEWED))
            return sorted(articles, key=lambda article: article.id)

    def export(self) -> list[Article]:
        """Every article that is not retired at its newest version, with its review state in the front
        matter: `approved` (and the clinician) when that version is the published one, else `draft`."""
        with self.db.session() as session:
            records = session.scalars(select(ArticleRecord).where(ArticleRecord.status != "retired")).all()
            exported = []
            for record in records:
                row = _version_row(session, record.id, record.head_version)
                if row is None:
                    continue
                if record.published_version == record.head_version:
                    signoff = _signoff_row(session, record.id, row.version)
                    reviewer = signoff.clinician if signoff is not None else UNREVIEWED
                    exported.append(Content.from_row(row).article(row.version, "approved", reviewer))
                else:
                    exported.append(Content.from_row(row).article(row.version))
            return sorted(exported, key=lambda article: article.id)

    def latest_release(self) -> tuple[int, str] | None:
        """(id, content hash) of the newest release: what every app instance should be serving."""
        query = select(KnowledgeRelease.id, KnowledgeRelease.content_hash).order_by(
            KnowledgeRelease.id.desc()
        )
        with self.db.session() as session:
            row = session.execute(query.limit(1)).first()
        return (row[0], row[1]) if row else None

    def is_empty(self) -> bool:
        with self.db.session() as session:
            return not session.scalar(select(func.count()).select_from(ArticleRecord))

    # --- writing ---------------------------------------------------------------------------------------
    def seed(self, folder: Path) -> int:
        """Import the Markdown articles as they are (approved ones published) into an empty store.

        Two instances starting together may both try: the second finds the store filled and does nothing.
        """
        articles = load_articles(folder)
        try:
            with self.db.session() as session:
                if session.scalar(select(func.count()).select_from(ArticleRecord)):
                    return 0
                for article in articles:
                    self._seed_one(session, article)
                session.flush()
                _release(session, SEED_ACTOR, "seed")
                audit.record(session, SEED_ACTOR, "seeded", "articles", str(folder.name), count=len(articles))
        except IntegrityError:
            return 0
        return len(articles)

    def create(self, content: Content, actor: Actor, origin: str = "edit", note: str | None = None) -> int:
        """A new article with its first version (a draft); returns the version number."""
        content = _checked(content)
        with self.db.session() as session:
            if session.get(ArticleRecord, content.id) is not None:
                raise ConflictError(f"an article with the id '{content.id}' already exists")
            now = utcnow()
            session.add(
                ArticleRecord(id=content.id, head_version=1, status="draft", created_at=now, updated_at=now)
            )
            session.flush()
            _add_version(session, content, 1, origin, note, actor)
            audit.record(session, actor, "created", "article", content.id, 1, origin=origin)
        return 1

    def save(
        self,
        content: Content,
        actor: Actor,
        base_version: int | None = None,
        origin: str = "edit",
        note: str | None = None,
    ) -> int | None:
        """A new draft version of an existing article; None when nothing changed.

        `base_version` is the version the editor started from: if someone saved since, the save is refused
        rather than silently dropping their change.
        """
        content = _checked(content)
        with self.db.session() as session:
            record = _locked(session, content.id)
            if base_version is not None and base_version != record.head_version:
                raise ConflictError(
                    f"'{content.id}' was changed (now version {record.head_version}) since you opened "
                    f"version {base_version}; open it again and redo your change"
                )
            head = _version_row(session, record.id, record.head_version)
            if head is not None:
                content = content.with_answering_of(Content.from_row(head))
            if head is not None and Content.from_row(head) == content and record.status != "retired":
                return None
            version = record.head_version + 1
            _add_version(session, content, version, origin, note, actor)
            record.head_version, record.status, record.updated_at = version, "draft", utcnow()
            audit.record(session, actor, "saved", "article", content.id, version, origin=origin)
        return version

    def submit(self, article_id: str, version: int, actor: Actor) -> None:
        """Put the draft up for a clinician's review."""
        with self.db.session() as session:
            record = _locked(session, article_id)
            _expect_head(record, version)
            if record.status != "draft":
                raise StoreError(f"'{article_id}' version {version} is {record.status}, not a draft")
            record.status, record.updated_at = "in_review", utcnow()
            audit.record(session, actor, "submitted", "article", article_id, version)

    def send_back(self, article_id: str, version: int, actor: Actor, note: str | None) -> None:
        """The clinician wants changes: the version goes back to draft, with the reason in the audit log."""
        with self.db.session() as session:
            record = _locked(session, article_id)
            _expect_head(record, version)
            if record.status != "in_review":
                raise StoreError(f"'{article_id}' version {version} is not in review")
            record.status, record.updated_at = "draft", utcnow()
            audit.record(session, actor, "sent_back", "article", article_id, version, note=note or "")

    def publish(
        self,
        session: Session,
        article_id: str,
        version: int,
        actor: Actor,
        review_by: date,
        note: str | None,
        reason: str = "publish",
    ) -> None:
        """Make `version` the published one with a sign-off, in the caller's transaction (the publisher
        checks the safety gate's verdict in that same transaction)."""
        record = _locked(session, article_id)
        _expect_head(record, version)
        if reason == "publish" and record.status != "in_review":
            raise StoreError(
                f"'{article_id}' version {version} must be submitted for review before publishing"
            )
        row = _version_row(session, article_id, version)
        assert row is not None
        session.add(
            SignOff(
                article_id=article_id,
                version=version,
                content_hash=row.content_hash,
                clinician_id=actor.id,
                clinician=actor.display_name,
                signed_at=utcnow(),
                review_by=review_by,
                note=note,
            )
        )
        record.published_version, record.status, record.updated_at = version, "published", utcnow()
        session.flush()
        _release(session, actor, reason, article_id, version)
        audit.record(
            session,
            actor,
            "published",
            "article",
            article_id,
            version,
            review_by=review_by.isoformat(),
            reason=reason,
        )

    def restore(self, session: Session, article_id: str, from_version: int, actor: Actor) -> int:
        """Copy an old version into a new head version (a draft), in the caller's transaction."""
        record = _locked(session, article_id)
        old = _version_row(session, article_id, from_version)
        if old is None:
            raise StoreError(f"'{article_id}' has no version {from_version}")
        version = record.head_version + 1
        note = f"rollback to version {from_version}"
        _add_version(session, Content.from_row(old), version, "rollback", note, actor)
        record.head_version, record.status, record.updated_at = version, "draft", utcnow()
        session.flush()
        audit.record(session, actor, "rolled_back", "article", article_id, version, to_version=from_version)
        return version

    def retire(self, session: Session, article_id: str, actor: Actor) -> None:
        """Stop telling patients this article (every version is kept), in the caller's transaction."""
        record = _locked(session, article_id)
        if record.published_version is None:
            raise StoreError(f"'{article_id}' is not published")
        retired = record.published_version
        record.published_version, record.status, record.updated_at = None, "retired", utcnow()
        session.flush()
        _release(session, actor, "retire", article_id, retired)
        audit.record(session, actor, "retired", "article", article_id, retired)

    def import_articles(
        self, articles: Iterable[Article], actor: Actor, origin: str = "import"
    ) -> ImportResult:
        """Bring files in as drafts: new articles are created, changed ones get a new version, identical
        ones are left alone (so exporting and importing again changes nothing). Never publishes."""
        created, updated, unchanged = [], [], []
        for article in articles:
            content = Content.from_article(article).normalised()
            if self.state(content.id) is None:
                self.create(content, actor, origin)
                created.append(content.id)
            elif self.save(content, actor, origin=origin) is None:
                unchanged.append(content.id)
            else:
                updated.append(content.id)
        return ImportResult(created, updated, unchanged)

    def new_review_by(self, today: date) -> date:
        """The default review-by date of a sign-off made today."""
        return _add_months(today, self.review_months)

    # --- internals -------------------------------------------------------------------------------------
    def _state(self, session: Session, record: ArticleRecord) -> ArticleState:
        numbers = {record.head_version, record.published_version} - {None}
        versions = {(record.id, n): _version_row(session, record.id, n) for n in numbers}
        signoffs = {}
        if record.published_version is not None:
            signoffs[(record.id, record.published_version)] = _signoff_row(
                session, record.id, record.published_version
            )
        return _state_of(record, versions, {key: row for key, row in signoffs.items() if row is not None})

    def _seed_one(self, session: Session, article: Article) -> None:
        content = Content.from_article(article).normalised()
        approved = article.is_published
        now = utcnow()
        session.add(
            ArticleRecord(
                id=article.id,
                head_version=article.version,
                published_version=article.version if approved else None,
                status="published" if approved else "draft",
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        row = _add_version(session, content, article.version, "seed", None, SEED_ACTOR)
        if approved:
            session.add(
                SignOff(
                    article_id=article.id,
                    version=article.version,
                    content_hash=row.content_hash,
                    clinician=article.reviewer,
                    signed_at=now,
                    review_by=self.new_review_by(date.today()),
                    note="approved in the seed files",
                )
            )


def published_in(session: Session) -> list[Article]:
    """The published articles, read in the caller's transaction."""
    return _published(session)


def published_hash(session: Session) -> str:
    return content_hash(_published(session))


def _published(session: Session) -> list[Article]:
    """The published version of every article with its clinician, in two queries."""
    published = (ArticleRecord.id == ArticleVersion.article_id) & (
        ArticleRecord.published_version == ArticleVersion.version
    )
    rows = session.scalars(select(ArticleVersion).join(ArticleRecord, published)).all()
    signed = (ArticleRecord.id == SignOff.article_id) & (ArticleRecord.published_version == SignOff.version)
    clinicians = {
        s.article_id: s.clinician
        for s in session.scalars(select(SignOff).join(ArticleRecord, signed).order_by(SignOff.id))
    }
    articles = [
        Content.from_row(row).article(row.version, "approved", clinicians.get(row.article_id, UNREVIEWED))
        for row in rows
    ]
    return sorted(articles, key=lambda article: article.id)


def _state_of(record: ArticleRecord, versions: dict, signoffs: dict) -> ArticleState:
    head = versions[(record.id, record.head_version)]
    published = signoff = None
    if record.published_version is not None:
        row = versions.get((record.id, record.published_version))
        published = _version_info(row) if row is not None else None
        signed = signoffs.get((record.id, record.published_version))
        signoff = _signoff_info(signed) if signed is not None else None
    return ArticleState(record.id, record.status, _version_info(head), published, signoff, record.updated_at)


def _checked(content: Content) -> Content:
    content = content.normalised()
    found = problems(content)
    if found:
        raise StoreError("; ".join(found))
    return content


def _locked(session: Session, article_id: str) -> ArticleRecord:
    record = session.get(ArticleRecord, article_id, with_for_update=True)
    if record is None:
        raise StoreError(f"there is no article '{article_id}'")
    return record


def _expect_head(record: ArticleRecord, version: int) -> None:
    if record.head_version != version:
        raise ConflictError(
            f"'{record.id}' is now at version {record.head_version}, not {version}: open it again to see "
            "the newest change"
        )


def _version_row(session: Session, article_id: str, version: int) -> ArticleVersion | None:
    query = select(ArticleVersion).where(
        ArticleVersion.article_id == article_id, ArticleVersion.version == version
    )
    return session.scalars(query).first()


def _signoff_row(session: Session, article_id: str, version: int) -> SignOff | None:
    query = (
        select(SignOff)
        .where(SignOff.article_id == article_id, SignOff.version == version)
        .order_by(SignOff.id.desc())
    )
    return session.scalars(query).first()


def _add_version(
    session: Session, content: Content, version: int, origin: str, note: str | None, actor: Actor
) -> ArticleVersion:
    row = ArticleVersion(
        article_id=content.id,
        version=version,
        title=content.title,
        topic=content.topic,
        stage=content.stage,
        days_first=content.days[0] if content.days else None,
        days_last=content.days[1] if content.days else None,
        source_section=content.source_section,
        body=content.body,
        answering=json.dumps(content.answering) if any(content.answering.values()) else None,
        content_hash=content.digest,
        origin=origin,
        note=(note or None) and note[:300],
        created_by_id=actor.id,
        created_by=actor.display_name,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def _release(
    session: Session, actor: Actor, reason: str, article_id: str | None = None, version: int | None = None
) -> None:
    session.add(
        KnowledgeRelease(
            content_hash=content_hash(_published(session)),
            reason=reason,
            article_id=article_id,
            version=version,
            created_by=actor.display_name,
            created_at=utcnow(),
        )
    )


def _version_info(row: ArticleVersion) -> VersionInfo:
    return VersionInfo(
        row.version,
        Content.from_row(row),
        row.content_hash,
        row.origin,
        row.note,
        row.created_by,
        row.created_at,
    )


def _signoff_info(row: SignOff) -> SignOffInfo:
    return SignOffInfo(row.version, row.clinician, row.signed_at, row.review_by, row.note, row.content_hash)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    return day + timedelta(days=30 * months)
