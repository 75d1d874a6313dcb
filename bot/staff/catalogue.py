"""The article list staff search and filter: by words, topic, stage, status and review due."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from bot.staff.articles import ArticleState
from bot.staff.models import ARTICLE_STATUSES
from knowledge.articles import STAGES

REVIEW_FILTERS = ("due", "ok")


@dataclass(frozen=True)
class Filters:
    q: str = ""
    topic: str = ""
    stage: str = ""
    status: str = ""
    review: str = ""  # due | ok | "" (any)

    def cleaned(self) -> Filters:
        return Filters(
            q=" ".join(self.q.split())[:100],
            topic=self.topic.strip()[:64],
            stage=self.stage if self.stage in STAGES else "",
            status=self.status if self.status in ARTICLE_STATUSES else "",
            review=self.review if self.review in REVIEW_FILTERS else "",
        )


def matching(states: Iterable[ArticleState], filters: Filters, today: date) -> list[ArticleState]:
    filters = filters.cleaned()
    words = filters.q.lower().split()
    found = []
    for state in states:
        content = state.head.content
        if filters.topic and content.topic != filters.topic:
            continue
        if filters.stage and content.stage != filters.stage:
            continue
        if filters.status and state.status != filters.status:
            continue
        if filters.review == "due" and not state.review_due(today):
            continue
        if filters.review == "ok" and state.review_due(today):
            continue
        haystack = " ".join((content.id, content.title, content.source_section, content.body)).lower()
        if all(word in haystack for word in words):
            found.append(state)
    return found


def topics(states: Iterable[ArticleState]) -> list[str]:
    return sorted({state.head.content.topic for state in states})
