"""Loads the knowledge base the app answers from: the published articles of the article store.

The store (the database) is where staff edit articles. On the first start it is empty and is seeded from
the Markdown files in `settings.articles_dir`; after that those files are only the seed and the export
format. The index for the published articles is loaded when a saved version matches their content, and
built (and saved) otherwise; later publishes swap it through `knowledge.live.LiveIndex`.
"""

from __future__ import annotations

import logging

from bot.db import Database
from bot.settings import Settings
from bot.staff.articles import ArticleStore
from knowledge.answers import Answerer
from knowledge.clinic import ClinicProfile
from knowledge.embedding import Embedder, SentenceTransformerEmbedder
from knowledge.index import PassageStore
from knowledge.live import AnswererFactory, LiveIndex
from knowledge.retriever import Retriever

log = logging.getLogger(__name__)


def answerer_factory(clinic: ClinicProfile) -> AnswererFactory:
    """How every knowledge version gets its answerer (settings.yml decides retrieval and thresholds)."""

    def make(store: PassageStore, embedder: Embedder) -> Answerer:
        return Answerer.from_settings(Retriever.from_settings(store, embedder), clinic)

    return make


def load_knowledge(settings: Settings, clinic: ClinicProfile, db: Database) -> LiveIndex:
    """The live index over the published articles (the store is seeded from the files when empty)."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    embedder = SentenceTransformerEmbedder(settings.embedding_model or None)
    store = ArticleStore(db, settings.staff_review_months)
    if store.is_empty():
        seeded = store.seed(settings.articles_dir)
        if seeded:
            log.info("article store seeded with %d articles from %s", seeded, settings.articles_dir.name)
    live = LiveIndex(embedder, answerer_factory(clinic), settings.index_dir)
    live.refresh(store.published_articles())
    return live
