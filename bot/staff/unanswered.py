"""What the assistant could not answer, grouped by similarity for staff, who link a group to an article or
start a new draft from it. Resolved groups leave the list; a later question like them starts a new group.

Questions are stored redacted (bot/records.py). Grouping is greedy and stable: a new question joins the
open group whose first question is most similar (cosine of sentence embeddings at or above `threshold`)
or starts its own group, so a group never changes under the staff member working on it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from bot.db import Database
from bot.models import UnansweredQuestion, as_utc, utcnow
from bot.staff import audit
from bot.staff.audit import Actor
from bot.staff.models import UnansweredGroup

SIMILAR = 0.7
EXAMPLES = 5


@dataclass(frozen=True)
class Group:
    id: int
    representative: str
    count: int
    last_asked: datetime
    examples: tuple[str, ...]
    reasons: dict[str, int]


class UnansweredQuestions:
    def __init__(self, db: Database, embedder=None, threshold: float = SIMILAR) -> None:  # noqa: ANN001
        self.db = db
        self.embedder = embedder  # None: questions group only with identical ones
        self.threshold = threshold

    def group_pending(self) -> int:
        """Put every question not in a group yet into one; returns how many were placed."""
        with self.db.session() as session:
            pending = session.scalars(
                select(UnansweredQuestion)
                .where(UnansweredQuestion.group_id.is_(None))
                .order_by(UnansweredQuestion.id)
            ).all()
            if not pending:
                return 0
            groups = session.scalars(
                select(UnansweredGroup).where(UnansweredGroup.resolved_at.is_(None))
            ).all()
            vectors = self._vectors([row.question for row in pending])
            known = [(group, np.frombuffer(group.vector, dtype=np.float32)) for group in groups]
            for row, vector in zip(pending, vectors, strict=True):
                best = max(known, key=lambda pair: float(pair[1] @ vector), default=None)
                if best is not None and float(best[1] @ vector) >= self.threshold:
                    row.group_id = best[0].id
                    continue
                group = UnansweredGroup(
                    representative=row.question,
                    vector=vector.astype(np.float32).tobytes(),
                    created_at=utcnow(),
                )
                session.add(group)
                session.flush()
                row.group_id = group.id
                known.append((group, vector))
            return len(pending)

    def groups(self, limit: int = 200) -> list[Group]:
        """Open groups, the most asked first."""
        self.group_pending()
        with self.db.session() as session:
            counts = session.execute(
                select(UnansweredQuestion.group_id, func.count(), func.max(UnansweredQuestion.created_at))
                .join(UnansweredGroup, UnansweredGroup.id == UnansweredQuestion.group_id)
                .where(UnansweredGroup.resolved_at.is_(None))
                .group_by(UnansweredQuestion.group_id)
            ).all()
            result = []
            for group_id, count, last in counts:
                group = session.get(UnansweredGroup, group_id)
                rows = session.scalars(
                    select(UnansweredQuestion)
                    .where(UnansweredQuestion.group_id == group_id)
                    .order_by(UnansweredQuestion.id.desc())
                ).all()
                examples = tuple(dict.fromkeys(row.question for row in rows))[:EXAMPLES]
                reasons = dict(Counter(row.reason for row in rows))
                result.append(Group(group_id, group.representative, count, as_utc(last), examples, reasons))
        result.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
        return result[:limit]

    def group(self, group_id: int) -> Group | None:
        return next((g for g in self.groups(limit=10_000) if g.id == group_id), None)

    def resolve(self, group_id: int, article_id: str, actor: Actor, resolution: str) -> bool:
        """The group is dealt with (`linked` to an existing article, or `drafted` into a new one)."""
        with self.db.session() as session:
            group = session.get(UnansweredGroup, group_id)
            if group is None or group.resolved_at is not None:
                return False
            group.resolved_at, group.resolved_by = utcnow(), actor.display_name
            group.resolution, group.article_id = resolution, article_id
            audit.record(
                session, actor, f"questions_{resolution}", "question_group", str(group_id), article=article_id
            )
            return True

    def _vectors(self, texts: list[str]) -> np.ndarray:
        if self.embedder is not None:
            return np.asarray(self.embedder.encode(texts), dtype=np.float32)
        # Without a model: identical questions (ignoring case and punctuation) share a direction.
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            key = " ".join(re.findall(r"[a-z0-9]+", text.lower()))
            seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(64).astype(np.float32)
            vectors[row] = vector / np.linalg.norm(vector)
        return vectors
