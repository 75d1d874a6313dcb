"""Publishing: the safety gate, the clinician's sign-off and the swap, in that order.

Only a clinician publishes. The gate compares the live content with the candidate (the live content with
this change) and must pass; the sign-off names the exact version and its content hash; the release row
that makes every app instance swap is written in the same transaction. If someone else published in
between, the gate runs again on the new live content before anything is committed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date

from bot.staff import audit
from bot.staff.articles import ArticleStore, Content, StoreError, published_hash
from bot.staff.audit import Actor
from bot.staff.sync import KnowledgeSync
from knowledge.articles import Article
from knowledge.gate import GateReport, SafetyGate
from knowledge.live import LiveIndex

log = logging.getLogger(__name__)
MAX_REVIEW_DAYS = 3 * 366
ATTEMPTS = 3


class GateRefused(StoreError):
    """The safety gate refused the change; `report` says why."""

    def __init__(self, report: GateReport) -> None:
        super().__init__("; ".join(report.refusals))
        self.report = report


class NotAllowed(StoreError):
    """The acting user's role may not do this."""


@dataclass(frozen=True)
class Change:
    """What would be published: `version` of `article_id` (None: the article is retired)."""

    article_id: str
    content: Content | None
    version: int | None


class Publisher:
    def __init__(self, store: ArticleStore, live: LiveIndex, gate: SafetyGate, sync: KnowledgeSync) -> None:
        self.store = store
        self.live = live
        self.gate = gate
        self.sync = sync
        self._lock = (
            threading.Lock()
        )  # one publish at a time in this instance (the database orders instances)

    # --- what the clinician sees before publishing -----------------------------------------------------
    def review(self, article_id: str, actor: Actor, version: int | None = None) -> GateReport:
        """The gate's report for publishing `version` (default: the newest) as `actor`."""
        change = self._change(article_id, version)
        return self._check(self.store.published_articles(), change, actor)

    def review_retirement(self, article_id: str, actor: Actor) -> GateReport:
        return self._check(self.store.published_articles(), Change(article_id, None, None), actor)

    # --- changes ---------------------------------------------------------------------------------------
    def publish(
        self, article_id: str, version: int, actor: Actor, review_by: date, note: str | None
    ) -> GateReport:
        """Sign off and publish exactly `version`; raises GateRefused when the gate refuses it."""
        _clinician(actor)
        _check_review_by(review_by)
        change = self._change(article_id, version)
        return self._commit(
            change, actor, lambda s: self.store.publish(s, article_id, version, actor, review_by, note)
        )

    def rollback(
        self, article_id: str, to_version: int, actor: Actor, publish: bool, review_by: date | None = None
    ) -> tuple[int, GateReport | None]:
        """Copy `to_version` into a new version; a clinician may publish it in the same step."""
        if not publish:
            with self.store.db.session() as session:
                return self.store.restore(session, article_id, to_version, actor), None
        _clinician(actor)
        review_by = review_by or self.store.new_review_by(date.today())
        _check_review_by(review_by)
        old = self.store.version(article_id, to_version)
        state = self.store.state(article_id)
        if old is None or state is None:
            raise StoreError(f"'{article_id}' has no version {to_version}")
        new_version = state.head.version + 1
        change = Change(article_id, old.content, new_version)

        def apply(session) -> None:  # noqa: ANN001 - a SQLAlchemy session
            made = self.store.restore(session, article_id, to_version, actor)
            if made != new_version:
                raise StoreError(f"'{article_id}' changed while rolling back; try again")
            self.store.publish(
                session,
                article_id,
                made,
                actor,
                review_by,
                f"rollback to version {to_version}",
                reason="rollback",
            )

        return new_version, self._commit(change, actor, apply)

    def retire(self, article_id: str, actor: Actor) -> GateReport:
        """Stop telling patients this article; refused for a red-flag article the gate protects."""
        _clinician(actor)
        return self._commit(
            Change(article_id, None, None), actor, lambda s: self.store.retire(s, article_id, actor)
        )

    # --- internals -------------------------------------------------------------------------------------
    def _change(self, article_id: str, version: int | None) -> Change:
        state = self.store.state(article_id)
        if state is None:
            raise StoreError(f"there is no article '{article_id}'")
        chosen = state.head if version is None else self.store.version(article_id, version)
        if chosen is None:
            raise StoreError(f"'{article_id}' has no version {version}")
        return Change(article_id, chosen.content, chosen.version)

    def _check(self, published: list[Article], change: Change, actor: Actor) -> GateReport:
        candidate = [article for article in published if article.id != change.article_id]
        if change.content is not None and change.version is not None:
            candidate.append(change.content.article(change.version, "approved", actor.display_name))
        live_store = self.live.candidate(published).store
        candidate_store = self.live.candidate(sorted(candidate, key=lambda a: a.id)).store
        return self.gate.check(live_store, candidate_store)

    def _commit(self, change: Change, actor: Actor, apply) -> GateReport:  # noqa: ANN001 - session -> None
        with self._lock:
            for _ in range(ATTEMPTS):
                report = self._check(self.store.published_articles(), change, actor)
                if not report.passed:
                    audit.write(
                        self.store.db,
                        actor,
                        "publish_refused",
                        target_type="article",
                        target_id=change.article_id,
                        version=change.version,
                        gate=report.summary(),
                    )
                    raise GateRefused(report)
                with self.store.db.session() as session:
                    if published_hash(session) != report.live_hash:
                        continue  # someone published meanwhile: check again against what is live now
                    apply(session)
                    audit.record(
                        session,
                        actor,
                        "gate_passed",
                        "article",
                        change.article_id,
                        change.version,
                        gate=report.summary(),
                    )
                self.sync.wake()
                return report
        raise StoreError("the knowledge base kept changing while publishing; try again")


def _clinician(actor: Actor) -> None:
    if actor.role != "clinician":
        raise NotAllowed("only a clinician can publish, roll back a published article or retire one")


def _check_review_by(review_by: date) -> None:
    today = date.today()
    if review_by <= today:
        raise StoreError("the review-by date must be in the future")
    if (review_by - today).days > MAX_REVIEW_DAYS:
        raise StoreError("the review-by date must be within three years")
