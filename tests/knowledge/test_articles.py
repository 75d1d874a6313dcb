from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from knowledge.articles import (
    Article,
    ArticleError,
    article_from_text,
    article_to_text,
    check_unique_ids,
    load_articles,
    published_articles,
)

VALID = """---
id: washing-your-face
title: Washing your face
topic: washing
stage: aftercare
days: [0, 2]
source_section: Aftercare
review_status: approved
reviewer: test-clinician
version: 1
---

Use lukewarm water only for the first two days.
"""


def with_line(old: str, new: str) -> str:
    """The valid article with one front-matter line replaced (or removed when `new` is empty)."""
    assert old in VALID
    return VALID.replace(old + "\n", new + "\n" if new else "")


def test_parses_every_field():
    article = article_from_text("washing-your-face", VALID)
    assert article == Article(
        id="washing-your-face",
        title="Washing your face",
        topic="washing",
        stage="aftercare",
        days=(0, 2),
        source_section="Aftercare",
        review_status="approved",
        reviewer="test-clinician",
        version=1,
        body="Use lukewarm water only for the first two days.",
    )


def test_loads_the_folder_sorted_by_id(fixture_articles):
    ids = [article.id for article in fixture_articles]
    assert ids == sorted(ids)
    assert "sun-protection" in ids  # written with flow-style front matter


def test_days_are_optional_and_mean_any_day(fixture_articles):
    sun = next(article for article in fixture_articles if article.id == "sun-protection")
    assert sun.days is None
    assert sun.applies_on(0) and sun.applies_on(400)


def test_days_range_is_inclusive():
    article = article_from_text("washing-your-face", VALID)
    assert [article.applies_on(day) for day in (-1, 0, 2, 3)] == [False, True, True, False]


def test_only_approved_articles_are_published(fixture_articles):
    published = published_articles(fixture_articles)
    assert "exercise-draft" not in {article.id for article in published}
    assert len(published) == len(fixture_articles) - 1


@pytest.mark.parametrize("article", ["makeup-after-treatment", "sun-protection", "exercise-draft"])
def test_export_then_import_gives_the_same_article(fixture_articles, article):
    original = next(a for a in fixture_articles if a.id == article)
    assert article_from_text(original.id, article_to_text(original)) == original


def test_export_writes_the_documented_block_front_matter():
    assert article_to_text(article_from_text("washing-your-face", VALID)) == VALID


def test_export_omits_days_when_any_day():
    article = dataclasses.replace(article_from_text("washing-your-face", VALID), days=None)
    assert "days:" not in article_to_text(article)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (with_line("topic: washing", ""), "missing field 'topic'"),
        (with_line("id: washing-your-face", "id: wash-face"), "does not match the file name"),
        (with_line("stage: aftercare", "stage: recovery"), "unknown stage 'recovery'"),
        (with_line("days: [0, 2]", "days: [3, 1]"), "first day is after the last"),
        (with_line("days: [0, 2]", "days: [0]"), "days must be [first, last]"),
        (with_line("days: [0, 2]", "days: [0, two]"), "days must be [first, last]"),
        (with_line("days: [0, 2]", "day: [0, 2]"), "unknown field 'day'"),
        (with_line("review_status: approved", "review_status: published"), "unknown review_status"),
        (with_line("version: 1", "version: yes"), "version must be a whole number"),
        (with_line("version: 1", "version: 0"), "version must be a whole number"),
        (with_line("title: Washing your face", "title: ''"), "field 'title' must be non-empty text"),
        (with_line("topic: washing", "topic: Washing Face"), "topic 'Washing Face' must be snake_case"),
        (VALID.split("---\n\n")[0] + "---\n", "the body is empty"),
        ("Just text, no front matter.", "missing field 'id'"),
    ],
)
def test_invalid_front_matter_is_refused_with_a_clear_message(text, message):
    with pytest.raises(ArticleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        article_from_text("washing-your-face", text)


def test_broken_yaml_is_reported_with_the_article_id():
    with pytest.raises(ArticleError, match="washing-your-face: front matter is not valid YAML"):
        article_from_text("washing-your-face", "---\nid: [unclosed\n---\nbody\n")


def test_several_problems_are_reported_together():
    text = with_line("stage: aftercare", "stage: later").replace("reviewer: test-clinician\n", "")
    with pytest.raises(ArticleError) as error:
        article_from_text("washing-your-face", text)
    assert "unknown stage 'later'" in str(error.value)
    assert "missing field 'reviewer'" in str(error.value)


def test_folder_errors_name_every_bad_file(tmp_path: Path):
    (tmp_path / "washing-your-face.md").write_text(VALID, encoding="utf-8")
    (tmp_path / "bad-stage.md").write_text(
        VALID.replace("washing-your-face", "bad-stage").replace("stage: aftercare", "stage: later"),
        encoding="utf-8",
    )
    (tmp_path / "wrong-id.md").write_text(VALID, encoding="utf-8")
    with pytest.raises(ArticleError) as error:
        load_articles(tmp_path)
    assert "bad-stage.md" in str(error.value)
    assert "wrong-id.md" in str(error.value)
    assert "washing-your-face.md" not in str(error.value)


def test_a_missing_folder_is_an_error_not_an_empty_knowledge_base(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="article folder not found"):
        load_articles(tmp_path / "no-such-folder")


def test_duplicate_ids_are_refused():
    article = article_from_text("washing-your-face", VALID)
    with pytest.raises(ArticleError, match="duplicate article ids: washing-your-face"):
        check_unique_ids([article, dataclasses.replace(article, version=2)])
