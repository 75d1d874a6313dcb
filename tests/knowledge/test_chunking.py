from __future__ import annotations

import dataclasses

from knowledge.chunking import MAX_WORDS, Passage, chunk_article, word_count
from tests.knowledge.factories import make_article

ARTICLE = make_article(id="swelling", title="Swelling after treatment", topic="swelling", days=(0, 3))
FIRST = "Mild swelling around the treated area is common on the first day and goes down by itself."
SECOND = "A cool compress for a few minutes at a time can make the first evening more comfortable."
SENTENCE = "Keep your head a little raised at night, and sleep on a clean pillowcase every single night."


def passages_of(body: str) -> list[Passage]:
    return chunk_article(dataclasses.replace(ARTICLE, body=body))


def test_each_paragraph_is_one_passage_with_the_article_facts():
    passages = passages_of(f"{FIRST}\n\n{SECOND}")
    assert [passage.text for passage in passages] == [FIRST, SECOND]
    assert [passage.position for passage in passages] == [0, 1]
    first = passages[0]
    assert (first.article_id, first.title, first.topic, first.stage, first.days) == (
        "swelling",
        "Swelling after treatment",
        "swelling",
        "aftercare",
        (0, 3),
    )


def test_a_heading_is_merged_into_the_paragraph_it_introduces():
    passages = passages_of(f"## What is normal\n\n{FIRST}\n\n{SECOND}")
    assert [passage.text for passage in passages] == [f"What is normal\n{FIRST}", SECOND]


def test_a_short_last_paragraph_joins_the_previous_one():
    passages = passages_of(f"{FIRST}\n\nCall us if unsure.")
    assert [passage.text for passage in passages] == [f"{FIRST}\nCall us if unsure."]


def test_a_short_article_is_one_passage():
    assert [passage.text for passage in passages_of("Call us if unsure.")] == ["Call us if unsure."]


def test_a_long_paragraph_is_split_at_sentence_boundaries():
    sentences = [SENTENCE] * 12  # ~200 words in one paragraph
    passages = passages_of(" ".join(sentences))
    assert len(passages) > 1
    assert all(word_count(passage.text) <= MAX_WORDS for passage in passages)
    assert all(passage.text.endswith(".") for passage in passages)
    assert " ".join(passage.text for passage in passages) == " ".join(sentences)


def test_a_long_list_is_split_between_its_items():
    items = [f"- {SENTENCE[:-1]}, item {number}" for number in range(10)]
    passages = passages_of("\n".join(items))
    assert len(passages) > 1
    assert all(word_count(passage.text) <= MAX_WORDS for passage in passages)
    assert [line for passage in passages for line in passage.text.splitlines()] == items


def test_the_title_is_embedded_with_the_text():
    passage = passages_of(FIRST)[0]
    assert passage.embedding_text == f"Swelling after treatment\n{FIRST}"


def test_passages_survive_a_round_trip_through_json_data():
    for passage in passages_of(f"{FIRST}\n\n{SECOND}") + chunk_article(
        dataclasses.replace(ARTICLE, days=None, body=FIRST)
    ):
        assert Passage.from_dict(passage.to_dict()) == passage
