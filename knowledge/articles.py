"""Knowledge-base articles: Markdown files with YAML front matter, validated strictly.

An article is the clinic's own reviewed wording on one topic. Only `approved` articles are published
(indexed and quoted to patients); drafts stay in the folder while staff review them.

Three optional fields say what an article answers (see docs/answers.md): `questions`, the patient questions
it answers, in the project's own words (matched question to question); `covers`, the things of
`knowledge/things.yml` it gives guidance on; `counterparts`, the articles that answer the same question at the
other stage of the treatment (stopping retinoids before it, restarting them after it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import yaml

STAGES = ("before", "during", "aftercare", "results", "general")
REVIEW_STATUSES = ("draft", "approved")
REQUIRED_FIELDS = ("id", "title", "topic", "stage", "source_section", "review_status", "reviewer", "version")
OPTIONAL_FIELDS = ("days", "covers", "counterparts", "questions")
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TOPIC_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class ArticleError(ValueError):
    """An article (or a set of articles) is not valid; the message lists every problem found."""


@dataclass(frozen=True)
class Article:
    """One knowledge-base article: front matter fields plus the Markdown body."""

    id: str
    title: str
    topic: str
    stage: str
    days: tuple[int, int] | None
    source_section: str
    review_status: str
    reviewer: str
    version: int
    body: str
    questions: tuple[str, ...] = ()  # patient questions the article answers (project's own words)
    covers: tuple[str, ...] = ()  # things (knowledge/things.yml) it gives guidance on
    counterparts: tuple[str, ...] = ()  # article ids answering the same question at the other stage

    @property
    def is_published(self) -> bool:
        """Only articles a clinician approved are indexed and quoted to patients."""
        return self.review_status == "approved"

    def applies_on(self, day: int) -> bool:
        """True when the article is relevant on this treatment day."""
        return days_cover(self.days, day)


def days_cover(days: tuple[int, int] | None, day: int) -> bool:
    """True when `day` lies in the [first, last] treatment-day range; no range means any day."""
    return days is None or days[0] <= day <= days[1]


def article_from_text(article_id: str, text: str) -> Article:
    """Parse and validate one article; `article_id` is the expected id (the file name without `.md`)."""
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        raise ArticleError(f"{article_id}: front matter is not valid YAML: {error}") from error
    problems = _front_matter_problems(post.metadata, article_id)
    if not post.content.strip():
        problems.append("the body is empty")
    if problems:
        raise ArticleError(f"{article_id}: " + "; ".join(problems))
    meta = post.metadata
    days = meta.get("days")
    return Article(
        id=meta["id"],
        title=meta["title"].strip(),
        topic=meta["topic"],
        stage=meta["stage"],
        days=None if days is None else (days[0], days[1]),
        source_section=meta["source_section"].strip(),
        review_status=meta["review_status"],
        reviewer=meta["reviewer"].strip(),
        version=meta["version"],
        body=post.content.strip(),
        questions=_texts(meta.get("questions")),
        covers=_texts(meta.get("covers")),
        counterparts=_texts(meta.get("counterparts")),
    )


def article_to_text(article: Article) -> str:
    """Render an article back to Markdown with front matter (fields in the documented order)."""
    meta: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "topic": article.topic,
        "stage": article.stage,
    }
    if article.days is not None:
        meta["days"] = _FlowList(article.days)
    meta.update(
        source_section=article.source_section,
        review_status=article.review_status,
        reviewer=article.reviewer,
        version=article.version,
    )
    if article.covers:
        meta["covers"] = _FlowList(article.covers)
    if article.counterparts:
        meta["counterparts"] = _FlowList(article.counterparts)
    if article.questions:
        meta["questions"] = list(article.questions)
    front = yaml.dump(meta, Dumper=_FrontMatterDumper, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{article.body}\n"


def load_articles(folder: Path | str) -> list[Article]:
    """Read every `*.md` article in `folder`, sorted by id; raise `ArticleError` listing all problems."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"article folder not found: {folder}")
    articles, problems = [], []
    for path in sorted(folder.glob("*.md")):
        try:
            articles.append(article_from_text(path.stem, path.read_text(encoding="utf-8")))
        except ArticleError as error:
            problems.append(f"{path.name}: {error}")
    if problems:
        raise ArticleError("invalid articles:\n  " + "\n  ".join(problems))
    check_unique_ids(articles)
    return sorted(articles, key=lambda article: article.id)


def check_unique_ids(articles: Iterable[Article]) -> None:
    """Raise `ArticleError` when two articles share an id (e.g. when importing a batch)."""
    counts = Counter(article.id for article in articles)
    duplicates = sorted(article_id for article_id, count in counts.items() if count > 1)
    if duplicates:
        raise ArticleError(f"duplicate article ids: {', '.join(duplicates)}")


def published_articles(articles: Iterable[Article]) -> list[Article]:
    """The approved articles: the only ones the assistant may quote."""
    return [article for article in articles if article.is_published]


class _FlowList(list):
    """A list written inline (`days: [0, 7]`), as in the documented front matter."""


class _FrontMatterDumper(yaml.SafeDumper):
    pass


_FrontMatterDumper.add_representer(
    _FlowList, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _front_matter_problems(meta: Mapping[str, Any], expected_id: str) -> list[str]:
    """Every problem with the front matter, in a form an article author can act on."""
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    # Unknown keys are refused so that a typo such as `day:` cannot silently mean "any day".
    unknown = sorted(set(meta) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    problems = [f"missing field '{name}'" for name in missing]
    problems += [f"unknown field '{name}'" for name in unknown]
    problems += _text_field_problems(meta)
    if "id" in meta and meta["id"] != expected_id:
        problems.append(f"id '{meta['id']}' does not match the file name '{expected_id}'")
    if isinstance(meta.get("id"), str) and not ID_PATTERN.match(meta["id"]):
        problems.append(f"id '{meta['id']}' must be kebab-case (a-z, 0-9, '-')")
    if isinstance(meta.get("topic"), str) and not TOPIC_PATTERN.match(meta["topic"]):
        problems.append(f"topic '{meta['topic']}' must be snake_case (the Rasa intent without 'ask_')")
    if "stage" in meta and meta["stage"] not in STAGES:
        problems.append(f"unknown stage '{meta['stage']}' (expected one of: {', '.join(STAGES)})")
    if "review_status" in meta and meta["review_status"] not in REVIEW_STATUSES:
        problems.append(f"unknown review_status '{meta['review_status']}' (expected draft or approved)")
    if "version" in meta and not (_is_int(meta["version"]) and meta["version"] >= 1):
        problems.append(f"version must be a whole number >= 1, got {meta['version']!r}")
    if meta.get("days") is not None:
        problems += _days_problems(meta["days"])
    problems += _text_list_problems(meta)
    return problems


def _text_list_problems(meta: Mapping[str, Any]) -> list[str]:
    """`questions`, `covers` and `counterparts` are lists of non-empty texts when present."""
    problems = []
    for name in ("questions", "covers", "counterparts"):
        value = meta.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            problems.append(f"field '{name}' must be a list of non-empty texts")
    if isinstance(meta.get("counterparts"), list) and meta.get("id") in meta["counterparts"]:
        problems.append("an article cannot be its own counterpart")
    return problems


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(" ".join(item.split()) for item in value) if isinstance(value, list) else ()


def _text_field_problems(meta: Mapping[str, Any]) -> list[str]:
    text_fields = ("id", "title", "topic", "stage", "source_section", "review_status", "reviewer")
    return [
        f"field '{name}' must be non-empty text"
        for name in text_fields
        if name in meta and not (isinstance(meta[name], str) and meta[name].strip())
    ]


def _days_problems(days: Any) -> list[str]:
    if not (isinstance(days, list) and len(days) == 2 and all(_is_int(day) for day in days)):
        return [f"days must be [first, last] treatment days (whole numbers), got {days!r}"]
    if days[0] > days[1]:
        return [f"days [{days[0]}, {days[1]}]: the first day is after the last"]
    return []


def _is_int(value: Any) -> bool:
    # YAML `true` is a bool, which Python also counts as an int.
    return isinstance(value, int) and not isinstance(value, bool)
