"""Split articles into passages: the units the index searches and the answers quote.

A passage is one paragraph of an article. Very short paragraphs (a heading, a one-line lead-in) are merged
with the next one so that every passage says something on its own; long paragraphs are split at sentence
boundaries so that one passage stays a readable reply.

The patient questions an article lists in its front matter are indexed beside its passages (kind
`question`), so a patient's question is also matched question to question. They are never quoted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from knowledge.articles import Article, days_cover
from safety.reading.nlp import blank_english

# Nearly every article and question names the treatment; in an embedding that shared word outweighs what the
# question is actually about ("how do I know if I'm a good candidate" vs "Am I a good candidate for
# microneedling?" scores 0.26, without the name 0.72). Rows and questions are embedded without it.
TREATMENT_NAME = re.compile(
    r"\b(?:micro[- ]?needl\w*|derma ?pen\w*|collagen induction therapy)\b", re.IGNORECASE
)
TREATMENT_STAND_IN = "it"
MIN_WORDS = 12
MAX_WORDS = 80
PASSAGE = "passage"  # a piece of the article's text: what answers quote
QUESTION = "question"  # a patient question the article answers: matched, never quoted
HEADING_MARK = re.compile(r"^#{1,6}\s+", re.MULTILINE)
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Passage:
    """A piece of an article with the article facts the retriever filters and boosts on."""

    article_id: str
    title: str
    topic: str
    stage: str
    days: tuple[int, int] | None
    text: str
    position: int
    version: int | None = None  # the article version it was cut from (None: an index built before versions)
    kind: str = PASSAGE
    covers: tuple[str, ...] = ()  # the article's `covers`: the things it gives guidance on
    counterparts: tuple[str, ...] = ()  # the article's `counterparts` at the other stage

    @property
    def is_quotable(self) -> bool:
        """Only the article's own text is quoted to patients, never the questions it lists."""
        return self.kind == PASSAGE

    @property
    def embedding_text(self) -> str:
        """What gets embedded: the title gives a bare paragraph its subject ("Wait 24 hours" -> makeup); a
        listed question is embedded as it is, to meet the patient's question."""
        text = f"{self.title}\n{self.text}" if self.is_quotable else self.text
        return without_treatment_name(text)

    def applies_on(self, day: int) -> bool:
        """True when the passage's article is relevant on this treatment day."""
        return days_cover(self.days, day)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (days as a list)."""
        data = asdict(self)
        data["days"] = None if self.days is None else list(self.days)
        data["covers"], data["counterparts"] = list(self.covers), list(self.counterparts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        """Inverse of `to_dict` (an index saved before questions were indexed has passages only)."""
        days = data.get("days")
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        known["days"] = None if days is None else (days[0], days[1])
        for name in ("covers", "counterparts"):
            known[name] = tuple(known.get(name) or ())
        return cls(**known)


def without_treatment_name(text: str) -> str:
    """The text as it is embedded: the treatment's name replaced by a stand-in (see TREATMENT_NAME)."""
    return TREATMENT_NAME.sub(TREATMENT_STAND_IN, text)


def chunk_article(article: Article) -> list[Passage]:
    """The article's passages, in reading order."""
    texts = _merge_short(_paragraphs(article.body))
    pieces = [piece for text in texts for piece in _split_long(text)]
    return [_row(article, piece, position, PASSAGE) for position, piece in enumerate(pieces)]


def question_rows(article: Article) -> list[Passage]:
    """The patient questions the article lists, as index rows of kind `question`."""
    return [_row(article, text, position, QUESTION) for position, text in enumerate(article.questions)]


def _row(article: Article, text: str, position: int, kind: str) -> Passage:
    return Passage(
        article_id=article.id,
        title=article.title,
        topic=article.topic,
        stage=article.stage,
        days=article.days,
        text=text,
        position=position,
        version=article.version,
        kind=kind,
        covers=article.covers,
        counterparts=article.counterparts,
    )


def word_count(text: str) -> int:
    """Whitespace-separated words: good enough to size passages."""
    return len(text.split())


def _paragraphs(body: str) -> list[str]:
    # Heading marks are dropped: a heading reads as the lead line of the paragraph it is merged into.
    text = HEADING_MARK.sub("", body)
    return [paragraph.strip() for paragraph in PARAGRAPH_BREAK.split(text) if paragraph.strip()]


def _merge_short(paragraphs: list[str]) -> list[str]:
    """Merge each paragraph under MIN_WORDS with the next one (the last one with the previous)."""
    merged: list[str] = []
    pending = ""
    for paragraph in paragraphs:
        pending = f"{pending}\n{paragraph}" if pending else paragraph
        if word_count(pending) >= MIN_WORDS:
            merged.append(pending)
            pending = ""
    if pending and merged:
        merged[-1] = f"{merged[-1]}\n{pending}"
    elif pending:
        merged.append(pending)
    return merged


def _split_long(paragraph: str) -> list[str]:
    """Split a paragraph over MAX_WORDS into runs of whole sentences (list lines count as sentences)."""
    if word_count(paragraph) <= MAX_WORDS:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for line in paragraph.splitlines():
        for index, sentence in enumerate(_sentences(line)):
            joint = " " if index else "\n"
            candidate = f"{current}{joint}{sentence}" if current else sentence
            if current and word_count(candidate) > MAX_WORDS:
                pieces.append(current)
                candidate = sentence
            current = candidate
    pieces.append(current)
    return pieces


def _sentences(line: str) -> list[str]:
    return [sentence.text.strip() for sentence in blank_english()(line).sents if sentence.text.strip()]
