from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge import cli
from knowledge.index import IndexMismatchError, PassageStore
from knowledge.retriever import SETTINGS_FILE, Retriever, Weights, topic_of_intent
from tests.knowledge.factories import make_article


def article_ids(hits) -> list[str]:
    return [hit.passage.article_id for hit in hits]


@pytest.fixture
def retriever(fixture_store, keyword_embedder) -> Retriever:
    return Retriever(fixture_store, keyword_embedder, top_k=5, topic_boost=0.07)


@pytest.mark.parametrize("top_k", [0, -1, 2.5, "5", True, None])
def test_top_k_is_validated_in_the_constructor(fixture_store, keyword_embedder, top_k):
    with pytest.raises(ValueError, match="top_k"):
        Retriever(fixture_store, keyword_embedder, top_k=top_k)


@pytest.mark.parametrize("boost", [-0.1, 0.9, float("nan"), "0.1"])
def test_topic_boost_must_stay_moderate(fixture_store, keyword_embedder, boost):
    with pytest.raises(ValueError, match="topic_boost"):
        Retriever(fixture_store, keyword_embedder, topic_boost=boost)


def test_a_store_built_with_another_model_is_refused(fixture_store, keyword_embedder):
    keyword_embedder.model_name = "another-model"
    with pytest.raises(IndexMismatchError):
        Retriever(fixture_store, keyword_embedder)


def test_hits_are_best_first_with_cosine_and_reasons(retriever):
    hits = retriever.search("is redness normal")
    assert article_ids(hits)[:2] == ["redness-first-days", "redness-that-lasts"]
    best = hits[0]
    assert best.score == best.adjusted_score
    assert 0.9 < best.score <= 1.0
    assert best.reasons[0] == f"cosine similarity {best.score:.3f}"
    assert [hit.adjusted_score for hit in hits] == sorted((hit.adjusted_score for hit in hits), reverse=True)


def test_search_returns_at_most_top_k(fixture_store, keyword_embedder):
    assert len(Retriever(fixture_store, keyword_embedder, top_k=2).search("redness")) == 2


def test_the_intent_topic_breaks_a_tie(retriever):
    # "makeup" and "sun" match their articles equally well; the NLU intent decides.
    assert retriever.search("makeup in the sun", intent="ask_sun")[0].passage.article_id == "sun-protection"
    top = retriever.search("makeup in the sun", intent="ask_makeup")[0]
    assert top.passage.article_id == "makeup-after-treatment"
    assert top.adjusted_score == pytest.approx(top.score + 0.07)
    assert "topic 'makeup' matches the intent: +0.07" in top.reasons


def test_the_topic_boost_cannot_override_a_clear_match(retriever):
    assert (
        retriever.search("is redness normal", intent="ask_sun")[0].passage.article_id == "redness-first-days"
    )


@pytest.mark.parametrize("intent", [None, "greet", "nlu_fallback", "ask_"])
def test_intents_without_a_topic_add_no_boost(retriever, intent):
    assert all(
        hit.score == hit.adjusted_score for hit in retriever.search("makeup in the sun", intent=intent)
    )


def test_topic_of_intent():
    assert topic_of_intent("ask_makeup") == "makeup"
    assert topic_of_intent("ask_redness_duration") == "redness_duration"
    assert topic_of_intent("affirm") is None
    assert topic_of_intent(None) is None


def test_a_first_days_article_is_never_returned_on_day_9(retriever):
    hits = retriever.search("is redness normal", day=9)
    assert "redness-first-days" not in article_ids(hits)
    assert article_ids(hits)[0] == "redness-that-lasts"
    assert "treatment day 9 within the article's days 4-30" in hits[0].reasons


def test_a_lasting_redness_article_is_not_returned_on_day_2(retriever):
    hits = retriever.search("is redness normal", day=2)
    assert article_ids(hits)[0] == "redness-first-days"
    assert "redness-that-lasts" not in article_ids(hits)


def test_articles_without_days_apply_on_any_day(retriever):
    for day in (0, 9, 200):
        assert retriever.search("sun", day=day)[0].passage.article_id == "sun-protection"


def test_without_a_treatment_day_nothing_is_filtered(retriever):
    assert {"redness-first-days", "redness-that-lasts"} <= set(article_ids(retriever.search("redness")))


def test_rank_keeps_excluded_passages_flagged_for_explaining(retriever):
    excluded = [hit for hit in retriever.rank("is redness normal", day=9) if hit.excluded]
    assert set(article_ids(excluded)) == {"redness-first-days", "makeup-after-treatment"}  # days 0-3, 0-7
    assert "treatment day 9 excluded: outside the article's days 0-3" in excluded[0].reasons


def test_repeated_questions_are_embedded_once(retriever, keyword_embedder):
    keyword_embedder.encoded.clear()
    retriever.search("is redness normal")
    retriever.search("  is redness   normal ", day=2)
    assert keyword_embedder.encoded == ["is redness normal"]


def test_a_blank_question_finds_nothing(retriever):
    assert retriever.search("   ") == []


def test_settings_come_from_the_settings_file(fixture_store, keyword_embedder, tmp_path: Path):
    settings = tmp_path / "settings.yml"
    settings.write_text("retrieval: {top_k: 2, topic_boost: 0.05, candidates: 10}\n")
    retriever = Retriever.from_settings(fixture_store, keyword_embedder, settings)
    assert (retriever.top_k, retriever.topic_boost) == (2, 0.05)


def test_the_shipped_settings_are_valid(fixture_store, keyword_embedder):
    retriever = Retriever.from_settings(fixture_store, keyword_embedder)
    assert 0.0 < retriever.topic_boost <= 0.1
    assert retriever.weights != Weights(), "the calibrated weights are read"


@pytest.mark.integration
def test_real_model_finds_the_right_fixture_article(fixture_articles, real_embedder):
    retriever = Retriever(PassageStore.build(fixture_articles, real_embedder), real_embedder)
    assert (
        retriever.search("can I put on foundation tomorrow")[0].passage.article_id == "makeup-after-treatment"
    )
    assert (
        retriever.search("my face is still red after a week", day=7)[0].passage.article_id
        == "redness-that-lasts"
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "day", "topic"),
    [
        ("when can I wear makeup again", None, "makeup"),
        ("how long will the redness last", 1, "redness"),
        ("can I go to the gym after microneedling", None, "exercise"),
        ("do I need sunscreen after the treatment", None, "sun"),
    ],
)
def test_real_articles_answer_common_questions(real_store, real_embedder, question, day, topic):
    retriever = Retriever.from_settings(real_store, real_embedder)
    assert topic in {hit.passage.topic for hit in retriever.search(question, day=day)[:3]}


# --- fusing dense and lexical (BM25) scores


def two_articles_the_embedder_cannot_tell_apart(embedder) -> Retriever:
    # No keyword of the fake embedder: every row has the same vector, so only the words can decide.
    articles = [
        make_article(
            id="aa-general", title="General care", body="Keep the face clean and be gentle with it."
        ),
        make_article(
            id="zz-chlorhexidine",
            title="Antiseptic washes",
            body="A chlorhexidine wash is too harsh for the healing face; the clinic advises against it.",
        ),
    ]
    return Retriever(PassageStore.build(articles, embedder), embedder)


def test_bm25_ranks_the_article_with_the_rare_word_first(keyword_embedder):
    retriever = two_articles_the_embedder_cannot_tell_apart(keyword_embedder)
    first, second = retriever.candidates("may I use chlorhexidine on my face")
    assert first.question_score == second.question_score == 0.0  # neither lists questions
    assert first.passage_score == pytest.approx(second.passage_score)
    assert first.article_id == "zz-chlorhexidine"
    assert first.lexical_score > second.lexical_score
    assert first.score > second.score


def test_without_the_lexical_weight_the_rare_word_decides_nothing(keyword_embedder):
    retriever = two_articles_the_embedder_cannot_tell_apart(keyword_embedder)
    retriever.weights = Weights(question=0.5, passage=0.5, lexical=0.0)
    first, second = retriever.candidates("may I use chlorhexidine on my face")
    assert first.score == pytest.approx(second.score)


def test_the_fused_score_is_the_weighted_signals(fixture_store, keyword_embedder):
    retriever = Retriever(fixture_store, keyword_embedder, weights=Weights(0.5, 0.3, 0.2))
    [best] = [c for c in retriever.candidates("is redness normal") if c.article_id == "redness-first-days"]
    # The fixture articles list no questions: passage and words share the question's weight.
    assert best.score == pytest.approx((0.3 * best.passage_score + 0.2 * best.lexical_score) / 0.5)
    listed = make_article(id="sun-faq", body="Wear sunscreen daily.", questions=("sun exposure",))
    store = PassageStore.build([listed], keyword_embedder)
    [sun] = Retriever(store, keyword_embedder, weights=Weights(0.5, 0.3, 0.2)).candidates("sun")
    assert sun.score == pytest.approx(
        0.5 * sun.question_score + 0.3 * sun.passage_score + 0.2 * sun.lexical_score
    )


def test_listed_questions_are_scored_but_never_returned_as_passages(keyword_embedder):
    listed = "Is sun on my face fine?"
    article = make_article(
        id="sun-faq", body="Wear sunscreen daily and keep out of strong sun.", questions=(listed,)
    )
    retriever = Retriever(PassageStore.build([article], keyword_embedder), keyword_embedder)
    [candidate] = retriever.candidates(listed)
    assert candidate.question_score == pytest.approx(1.0)
    assert [p.text for p in candidate.passages] == ["Wear sunscreen daily and keep out of strong sun."]
    assert all(hit.passage.kind == "passage" for hit in retriever.rank(listed))


@pytest.mark.parametrize("weights", [(0.5, 0.5, 0.5), (-0.1, 0.6, 0.5), (float("nan"), 0.5, 0.5)])
def test_fusion_weights_must_be_non_negative_and_sum_to_one(weights):
    with pytest.raises(ValueError, match="weights"):
        Weights(*weights)


# --- the command line (knowledge/cli.py), run with the fake embedder


@pytest.fixture
def cli_paths(tmp_path: Path, monkeypatch, keyword_embedder, fixture_articles_dir) -> dict[str, Path]:
    monkeypatch.setattr(cli, "_embedder", lambda args: keyword_embedder)
    settings = tmp_path / "settings.yml"
    settings.write_text(SETTINGS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    labels = tmp_path / "eval.yml"
    labels.write_text(
        "- {text: 'is redness normal', kind: answer, article: redness-first-days}\n"
        "- {text: 'makeup tips', kind: answer, article: makeup-after-treatment}\n"
        "- {text: 'sun cream', kind: answer, article: sun-protection}\n"
        "- {text: 'where do I park', kind: fallback}\n"
        "- {text: 'do you sell gift cards', kind: fallback}\n"
    )
    return {
        "settings": settings,
        "eval": labels,
        "index": tmp_path / "index",
        "articles": fixture_articles_dir,
    }


def run_cli(paths: dict[str, Path], *args: str) -> int:
    common = ["--articles", str(paths["articles"]), "--index-dir", str(paths["index"])]
    return cli.main([*common, "--settings", str(paths["settings"]), *args])


def test_calibrate_prints_the_figures_and_writes_weights_and_thresholds(cli_paths, capsys):
    assert run_cli(cli_paths, "calibrate", "--eval", str(cli_paths["eval"]), "--write") == 0
    output = capsys.readouterr().out
    assert "calibrated on 5 labelled questions" in output
    assert re.search(r"weights Weights\(.*\) -> right article for \d+\.\d % of answerable questions", output)
    settings = cli_paths["settings"].read_text()
    assert re.search(r"^  threshold: 0\.\d\d   # calibrated", settings, re.M)
    assert re.search(r"^  weights: \{question: [\d.]+, passage: [\d.]+, lexical: [\d.]+\}", settings, re.M)
    assert re.search(r"^  stage_margin: 0\.\d\d   # calibrated", settings, re.M)
    assert "# last calibrated " in settings and "# How an article's three signals are fused" in settings


def test_calibrate_refuses_the_held_out_half(cli_paths, tmp_path: Path, capsys):
    held_out = tmp_path / "heldout" / "questions.yml"
    held_out.parent.mkdir()
    held_out.write_text(cli_paths["eval"].read_text())
    assert run_cli(cli_paths, "calibrate", "--eval", str(held_out)) == 2
    assert "held-out" in capsys.readouterr().err


def test_build_then_search_and_explain(cli_paths, capsys):
    assert run_cli(cli_paths, "build") == 0
    assert '"model_name": "fake-keywords"' in capsys.readouterr().out
    assert run_cli(cli_paths, "search", "is redness normal", "--day", "9") == 0
    assert capsys.readouterr().out.startswith("1. ")
    assert run_cli(cli_paths, "explain", "is redness normal", "--day", "9") == 0
    explained = capsys.readouterr().out
    assert "excluded" in explained and "redness-that-lasts" in explained


def test_a_bad_article_folder_is_an_error_message_not_a_traceback(cli_paths, tmp_path: Path, capsys):
    (tmp_path / "broken.md").write_text("no front matter")
    assert cli.main(["--articles", str(tmp_path), "--index-dir", str(cli_paths["index"]), "build"]) == 2
    assert "missing field 'id'" in capsys.readouterr().err
