"""Publish = live: the index swap is atomic under load, incremental, picked up by other instances through the
database, and every answer names the article version it quoted."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from pathlib import Path

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionAnswerQuestion
from bot import services as services_module
from bot.conversation.pipeline import shape_rasa_message
from bot.knowledge_base import answerer_factory
from bot.staff.articles import ArticleStore
from bot.staff.sync import KnowledgeSync
from knowledge.articles import load_articles
from knowledge.chunking import without_treatment_name
from knowledge.live import LiveIndex
from tests.staff.conftest import ARTICLES
from tests.staff.test_articles import draft_of, publish, save, submit, wait_for

MARKER = "Mineral powder is the kindest choice once the clinic says your skin is ready."
QUESTION = "can I wear makeup after microneedling?"
TRACKER = Path(__file__).resolve().parents[1] / "actions" / "trackers" / "question.json"


class CountingEmbedder:
    def __init__(self, inner) -> None:
        self.inner, self.model_name, self.dimension = inner, inner.model_name, inner.dimension
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts += list(texts)
        return self.inner.encode(texts)

    @property
    def passages(self) -> list[str]:
        """Passage texts embedded (a passage is embedded as its title, a line break and its text)."""
        return [text for text in self.texts if "\n" in text]


def with_marker(articles):
    def change(article):
        if article.id != "makeup-after-treatment":
            return article
        first, rest = article.body.split("\n\n", 1)
        return dataclasses.replace(article, body=f"{first} {MARKER}\n\n{rest}", version=2)

    return [change(article) for article in articles]


def test_questions_in_flight_get_the_old_or_the_new_version_never_a_mix(embedder, clinic, seed_store) -> None:
    live = LiveIndex(embedder, answerer_factory(clinic))
    live.install(seed_store)
    old, new = load_articles(ARTICLES), with_marker(load_articles(ARTICLES))
    stop = threading.Event()
    seen: list[tuple[int, bool]] = []

    def ask() -> None:
        while not stop.is_set():
            answer = live.current.answerer.answer(QUESTION)
            seen.append((answer.sources[0]["version"], MARKER in answer.text))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for thread in askers:
        thread.start()
    try:
        for _ in range(6):
            for articles in (new, old):
                live.refresh(articles)
    finally:
        stop.set()
        for thread in askers:
            thread.join()
    assert {version for version, _ in seen} == {1, 2}, "questions were answered while versions swapped"
    assert all(has_marker == (version == 2) for version, has_marker in seen), "text and version always agree"


def test_a_swap_embeds_only_the_changed_article(embedder, clinic, seed_store, tmp_path) -> None:
    counting = CountingEmbedder(embedder)
    live = LiveIndex(counting, answerer_factory(clinic), tmp_path / "index")
    live.install(seed_store)
    assert live.refresh(with_marker(load_articles(ARTICLES)))
    title = without_treatment_name("Wearing makeup after microneedling")  # embedded without the name
    assert counting.texts and all(text.startswith(f"{title}\n") for text in counting.texts)
    assert len(counting.texts) == 1, "only the changed paragraph"
    assert not live.refresh(with_marker(load_articles(ARTICLES))), "the same content again: no swap"
    manifest = json.loads((tmp_path / "index" / live.current.version / "manifest.json").read_text())
    assert manifest["content_hash"] == live.current.content_hash


def test_another_instance_picks_up_a_publish_through_the_database(
    staff, embedder, clinic, seed_store
) -> None:
    # Instance B: its own live index and sync thread over the same database, its own index folder.
    counting = CountingEmbedder(embedder)
    other = LiveIndex(counting, answerer_factory(clinic), staff.services.settings.var_dir / "other-index")
    other.install(seed_store)
    sync = KnowledgeSync(ArticleStore(staff.services.db), other, poll_seconds=0.1)
    sync.start()
    try:
        body = draft_of(staff, extra="")
        first, rest = body["body"].split("\n\n", 1)
        version = save(staff, {**body, "body": f"{first} {MARKER}\n\n{rest}"}).json()["head_version"]
        submit(staff, version)
        assert publish(staff, version).status_code == 200
        wait_for(lambda: MARKER in other.current.answerer.answer(QUESTION).text)
    finally:
        sync.stop()
    assert other.current.content_hash == staff.services.knowledge.current.content_hash
    assert len(counting.passages) == 1, "instance B built it itself, embedding only the change"


def test_an_instance_sharing_the_index_folder_loads_the_saved_version(
    staff, embedder, clinic, seed_store
) -> None:
    counting = CountingEmbedder(embedder)
    shared = LiveIndex(counting, answerer_factory(clinic), staff.services.settings.index_dir)
    shared.install(seed_store)
    body = draft_of(staff, extra="")
    first, rest = body["body"].split("\n\n", 1)
    version = save(staff, {**body, "body": f"{first} {MARKER}\n\n{rest}"}).json()["head_version"]
    submit(staff, version)
    publish(staff, version)
    wait_for(lambda: MARKER in staff.services.answerer.answer(QUESTION).text)
    assert KnowledgeSync(ArticleStore(staff.services.db), shared).sync_once()
    assert counting.passages == [], "loaded from the folder the publishing instance wrote"
    assert MARKER in shared.current.answerer.answer(QUESTION).text


def test_the_answer_action_tells_the_chat_which_article_version_it_quoted(staff) -> None:
    body = draft_of(staff, extra="")
    first, rest = body["body"].split("\n\n", 1)
    version = save(staff, {**body, "body": f"{first} {MARKER}\n\n{rest}"}).json()["head_version"]
    submit(staff, version)
    publish(staff, version)
    wait_for(lambda: MARKER in staff.services.answerer.answer(QUESTION).text)

    data = json.loads(TRACKER.read_text())
    data["latest_message"].update(
        text=QUESTION, intent={"name": "ask_makeup", "confidence": 0.9}, metadata={}
    )
    dispatcher = CollectingDispatcher()
    services_module.install(staff.services)
    asyncio.run(ActionAnswerQuestion().run(dispatcher, Tracker.from_dict(data), {}))
    [sent] = dispatcher.messages
    message = shape_rasa_message({"custom": sent["custom"]}, "none")
    assert [(s.id, s.version) for s in message.sources] == [("makeup-after-treatment", 2)]
    assert message.model_dump()["sources"][0]["version"] == 2, "what the conversation record keeps"
