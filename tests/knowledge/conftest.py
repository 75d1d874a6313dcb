"""Shared fixtures for the knowledge-base tests: tiny articles and a fake embedder with hand-made vectors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from knowledge.articles import Article, load_articles
from knowledge.clinic import ClinicProfile
from knowledge.index import PassageStore

FIXTURE_ARTICLES = Path(__file__).parent / "fixtures" / "articles"
REAL_ARTICLES = Path(__file__).resolve().parents[2] / "knowledge" / "articles"

# Each keyword is one dimension; synonyms share it. The last dimension is a small constant so that a text
# with no keyword still has a direction (and a low cosine with everything).
KEYWORD_DIMENSIONS = {
    "makeup": 0,
    "redness": 1,
    "sun": 2,
    "sunscreen": 2,
    "exercise": 3,
    "retinol": 4,
    "normal": 5,
}
BIAS = 0.1


class KeywordEmbedder:
    """Bag-of-keywords vectors: cosine similarity is predictable by hand."""

    model_name = "fake-keywords"
    dimension = max(KEYWORD_DIMENSIONS.values()) + 2

    def __init__(self) -> None:
        self.encoded: list[str] = []  # every text ever encoded, to observe caching

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in KEYWORD_DIMENSIONS:
                    vectors[row, KEYWORD_DIMENSIONS[word]] += 1
            vectors[row, -1] = BIAS
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def keyword_embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


@pytest.fixture(scope="session")
def fixture_articles_dir() -> Path:
    return FIXTURE_ARTICLES


@pytest.fixture(scope="session")
def fixture_articles() -> list[Article]:
    return load_articles(FIXTURE_ARTICLES)


@pytest.fixture
def fixture_store(fixture_articles: list[Article], keyword_embedder: KeywordEmbedder) -> PassageStore:
    return PassageStore.build(fixture_articles, keyword_embedder)


@pytest.fixture(scope="session")
def clinic() -> ClinicProfile:
    return ClinicProfile(
        name="Test Skin Clinic",
        phone="(555) 010-0000",
        hours="Mon-Fri 9-5",
        emergency_number="911",
        booking_url="https://clinic.example/book",
        email="care@clinic.example",
        timezone="UTC",
        on_call_phone="+15550100001",
    )


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2 model, loaded once per test session (integration tests only)."""
    from knowledge.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def real_articles() -> list[Article]:
    """The clinic's real articles; tests using them are skipped while the folder is still empty."""
    if not any(REAL_ARTICLES.glob("*.md")):
        pytest.skip("knowledge/articles has no articles yet")
    return load_articles(REAL_ARTICLES)


@pytest.fixture(scope="session")
def real_store(real_articles, real_embedder) -> PassageStore:
    """The real articles indexed with the real model, built once per test session."""
    return PassageStore.build(real_articles, real_embedder)
