from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from knowledge import index as index_module
from knowledge.index import (
    CURRENT_POINTER,
    MANIFEST_FILE,
    PASSAGES_FILE,
    IndexMismatchError,
    PassageStore,
    content_hash,
    resolve_version_dir,
)


class OtherModel:
    """Same vectors as the keyword embedder, reported under another model name or dimension."""

    def __init__(self, inner, model_name=None, dimension=None):
        self._inner = inner
        self.model_name = model_name or inner.model_name
        self.dimension = dimension or inner.dimension

    def encode(self, texts):
        return self._inner.encode(texts)


def test_build_indexes_every_passage_of_the_published_articles(fixture_store, fixture_articles):
    article_ids = {passage.article_id for passage in fixture_store.passages}
    assert "exercise-draft" not in article_ids
    assert article_ids == {article.id for article in fixture_articles if article.is_published}
    assert len(fixture_store) == fixture_store.manifest.count == 6  # the makeup article has two paragraphs


def test_manifest_records_what_the_index_was_built_from(fixture_articles, keyword_embedder):
    store = PassageStore.build(
        fixture_articles, keyword_embedder, now=datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    )
    manifest = store.manifest
    assert (manifest.model_name, manifest.dimension) == ("fake-keywords", keyword_embedder.dimension)
    assert manifest.content_hash == content_hash(fixture_articles)
    assert manifest.version == f"{manifest.content_hash[:12]}-20261124T093000Z"
    assert manifest.built_at == "2026-11-24T09:30:00+00:00"


def test_content_hash_changes_with_published_text_only(fixture_articles):
    original = content_hash(fixture_articles)
    edited = [
        dataclasses.replace(a, body=a.body + " More.") if a.id == "sun-protection" else a
        for a in fixture_articles
    ]
    draft_edited = [
        dataclasses.replace(a, body="Changed.") if a.id == "exercise-draft" else a for a in fixture_articles
    ]
    assert content_hash(edited) != original
    assert content_hash(draft_edited) == original
    assert content_hash(reversed(fixture_articles)) == original


def test_search_returns_cosine_scores_best_first(fixture_store, keyword_embedder):
    results = fixture_store.search(keyword_embedder.encode(["sun"])[0], k=3)
    assert results[0][0].article_id == "sun-protection"
    assert results[0][1] == pytest.approx(0.999, abs=0.01)
    assert [score for _, score in results] == sorted((score for _, score in results), reverse=True)


def test_search_never_returns_more_than_the_store_holds(fixture_store, keyword_embedder):
    assert len(fixture_store.search(keyword_embedder.encode(["sun"])[0], k=100)) == len(fixture_store)


def test_an_empty_knowledge_base_builds_and_finds_nothing(keyword_embedder):
    store = PassageStore.build([], keyword_embedder)
    assert len(store) == 0
    assert store.search(keyword_embedder.encode(["sun"])[0], k=5) == []


def test_save_writes_a_version_folder_and_points_current_at_it(fixture_store, tmp_path: Path):
    folder = fixture_store.save(tmp_path)
    assert folder == tmp_path / fixture_store.manifest.version
    assert sorted(path.name for path in folder.iterdir()) == ["index.faiss", "manifest.json", "passages.json"]
    assert (tmp_path / CURRENT_POINTER).read_text().strip() == fixture_store.manifest.version
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([folder.name, CURRENT_POINTER])


def test_load_round_trips_passages_manifest_and_vectors(fixture_store, keyword_embedder, tmp_path: Path):
    fixture_store.save(tmp_path)
    loaded = PassageStore.load(tmp_path, keyword_embedder)
    assert loaded.passages == fixture_store.passages
    assert loaded.manifest == fixture_store.manifest
    query = keyword_embedder.encode(["redness normal"])[0]
    assert loaded.search(query, k=3) == fixture_store.search(query, k=3)


def test_a_new_build_becomes_current_and_old_versions_stay(
    fixture_articles, keyword_embedder, tmp_path: Path
):
    old = PassageStore.build(fixture_articles, keyword_embedder, now=datetime(2026, 1, 1, tzinfo=UTC))
    new = PassageStore.build(fixture_articles[:2], keyword_embedder, now=datetime(2026, 1, 2, tzinfo=UTC))
    old_folder, new_folder = old.save(tmp_path), new.save(tmp_path)
    assert resolve_version_dir(tmp_path) == new_folder
    assert len(PassageStore.load(tmp_path, keyword_embedder)) == len(new)
    assert len(PassageStore.load(old_folder, keyword_embedder)) == len(old)


def test_a_failed_save_leaves_no_half_written_version(fixture_store, tmp_path: Path, monkeypatch):
    def disk_full(*args):
        raise OSError("No space left on device")

    monkeypatch.setattr(index_module.faiss, "write_index", disk_full)
    with pytest.raises(OSError, match="No space left"):
        fixture_store.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_saving_the_same_build_twice_is_harmless(fixture_store, tmp_path: Path):
    assert fixture_store.save(tmp_path) == fixture_store.save(tmp_path)


def test_a_different_build_with_the_same_version_is_refused(
    fixture_articles, keyword_embedder, tmp_path: Path
):
    same_time = datetime(2026, 1, 1, tzinfo=UTC)
    PassageStore.build(fixture_articles, keyword_embedder, now=same_time).save(tmp_path)
    other = OtherModel(keyword_embedder, model_name="another-model")
    with pytest.raises(FileExistsError, match="different build"):
        PassageStore.build(fixture_articles, other, now=same_time).save(tmp_path)


def test_load_refuses_an_index_built_with_another_model(fixture_store, keyword_embedder, tmp_path: Path):
    fixture_store.save(tmp_path)
    with pytest.raises(IndexMismatchError, match="built with fake-keywords"):
        PassageStore.load(tmp_path, OtherModel(keyword_embedder, model_name="another-model"))


def test_load_refuses_a_dimension_mismatch(fixture_store, keyword_embedder, tmp_path: Path):
    fixture_store.save(tmp_path)
    with pytest.raises(IndexMismatchError, match="dims"):
        PassageStore.load(tmp_path, OtherModel(keyword_embedder, dimension=384))


def test_load_refuses_a_passage_count_mismatch(fixture_store, keyword_embedder, tmp_path: Path):
    folder = fixture_store.save(tmp_path)
    passages = json.loads((folder / PASSAGES_FILE).read_text())
    (folder / PASSAGES_FILE).write_text(json.dumps(passages[:-1]))
    with pytest.raises(IndexMismatchError, match="inconsistent"):
        PassageStore.load(tmp_path, keyword_embedder)


def test_load_refuses_a_manifest_count_mismatch(fixture_store, keyword_embedder, tmp_path: Path):
    folder = fixture_store.save(tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "count": manifest["count"] + 1}))
    with pytest.raises(IndexMismatchError, match="inconsistent"):
        PassageStore.load(folder, keyword_embedder)


def test_load_without_an_index_says_how_to_build_one(keyword_embedder, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="python -m knowledge build"):
        PassageStore.load(tmp_path, keyword_embedder)


def test_build_refuses_vectors_that_are_not_normalised(fixture_articles, keyword_embedder):
    class Unnormalised(OtherModel):
        def encode(self, texts):
            return self._inner.encode(texts) * np.float32(2.0)

    with pytest.raises(ValueError, match="not L2-normalised"):
        PassageStore.build(fixture_articles, Unnormalised(keyword_embedder))


@pytest.mark.integration
def test_real_articles_build_save_load_and_search(real_store, real_articles, real_embedder, tmp_path: Path):
    assert {passage.article_id for passage in real_store.passages} == {
        a.id for a in real_articles if a.is_published
    }
    real_store.save(tmp_path)
    loaded = PassageStore.load(tmp_path, real_embedder)
    assert loaded.manifest == real_store.manifest
    assert loaded.manifest.dimension == 384
    results = loaded.search(real_embedder.encode(["how long will my face stay red"])[0], k=5)
    assert any(passage.topic == "redness" for passage, _ in results)


def test_an_index_saved_before_questions_were_indexed_still_loads(fixture_store, keyword_embedder, tmp_path):
    folder = fixture_store.save(tmp_path)
    rows = json.loads((folder / PASSAGES_FILE).read_text())
    for row in rows:  # the fields the answers work added
        del row["kind"], row["covers"], row["counterparts"]
    (folder / PASSAGES_FILE).write_text(json.dumps(rows))
    loaded = PassageStore.load(tmp_path, keyword_embedder)
    assert loaded.passages == fixture_store.passages
    assert all(passage.is_quotable for passage in loaded.passages)


def test_a_rebuild_embeds_only_changed_rows_and_every_row_keeps_its_article_version(
    fixture_articles, keyword_embedder
):
    listed = [
        dataclasses.replace(a, questions=(f"a question about {a.id}",)) if a.id == "sun-protection" else a
        for a in fixture_articles
    ]
    old = PassageStore.build(listed, keyword_embedder)
    changed = [
        dataclasses.replace(a, body=a.body + " Reapply at noon.", version=2)
        if a.id == "sun-protection"
        else a
        for a in listed
    ]
    keyword_embedder.encoded.clear()
    new = PassageStore.build(changed, keyword_embedder, reuse=old)
    assert len(keyword_embedder.encoded) == 1 and "Reapply at noon." in keyword_embedder.encoded[0]
    sun_rows = [p for p in new.passages if p.article_id == "sun-protection"]
    assert sorted(p.kind for p in sun_rows) == ["passage", "question"]
    assert {p.version for p in sun_rows} == {2}, "the unchanged question row carries the new version too"
    others = {p.article_id: p.version for p in new.passages if p.article_id != "sun-protection"}
    assert others == {a.id: a.version for a in changed if a.is_published and a.id != "sun-protection"}
