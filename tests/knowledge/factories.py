"""Test data builders for the knowledge base."""

from typing import Any

from knowledge.articles import Article


def make_article(**fields: Any) -> Article:
    """An approved aftercare article; pass only the fields a test cares about."""
    defaults: dict[str, Any] = {
        "id": "test-article",
        "title": "Test article",
        "topic": "redness",
        "stage": "aftercare",
        "days": None,
        "source_section": "Aftercare",
        "review_status": "approved",
        "reviewer": "test-clinician",
        "version": 1,
        "body": "",
    }
    return Article(**{**defaults, **fields})
