"""Loads the knowledge base the app answers from: the newest index, rebuilt when the articles changed."""

from __future__ import annotations

import logging

from bot.settings import Settings
from knowledge.answers import Answerer
from knowledge.articles import load_articles
from knowledge.clinic import ClinicProfile
from knowledge.embedding import SentenceTransformerEmbedder
from knowledge.index import IndexMismatchError, PassageStore, content_hash
from knowledge.retriever import Retriever

log = logging.getLogger(__name__)


def load_knowledge(settings: Settings, clinic: ClinicProfile) -> tuple[Answerer, SentenceTransformerEmbedder]:
    """An answerer over the current index (a new index version is built when none matches the articles),
    and the embedder it uses (triage's learned layer shares it)."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    embedder = SentenceTransformerEmbedder(settings.embedding_model or None)
    articles = load_articles(settings.articles_dir)
    try:
        store = PassageStore.load(settings.index_dir, embedder)
        if store.manifest.content_hash != content_hash(articles):
            raise IndexMismatchError("articles changed since the index was built")
    except (FileNotFoundError, IndexMismatchError) as reason:
        log.info("building a new knowledge index (%s)", reason)
        store = PassageStore.build(articles, embedder)
        store.save(settings.index_dir)
    return Answerer.from_settings(Retriever.from_settings(store, embedder), clinic), embedder
