"""Command line for the knowledge base: `python -m knowledge build | search | explain | answer | calibrate`.

build       articles -> a new index version under var/index/, printed manifest
search      the ranked passages for a question, with scores
explain     why passages matched: cosine, topic boost, treatment-day filter, threshold decision
answer      the reply a patient would get
calibrate   recall@1/@3 on knowledge/retrieval_eval.yml and the answer/fallback threshold (--write
            saves it in settings.yml)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from knowledge.answers import Answer, Answerer
from knowledge.articles import ArticleError, load_articles, published_articles
from knowledge.clinic import load_clinic_profile
from knowledge.embedding import Embedder, SentenceTransformerEmbedder
from knowledge.index import IndexMismatchError, PassageStore, content_hash
from knowledge.retriever import SETTINGS_FILE, Hit, Retriever

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ARTICLES = PACKAGE_DIR / "articles"
DEFAULT_INDEX = PACKAGE_DIR.parent / "var" / "index"
DEFAULT_EVAL = PACKAGE_DIR / "retrieval_eval.yml"
SHOWN_CANDIDATES = 10
THRESHOLD_LINE = re.compile(r"^(?P<indent>\s*)threshold:.*$", re.MULTILINE)


@dataclass(frozen=True)
class EvalQuestion:
    """One labelled question: the article that should answer it, or None when out of scope."""

    question: str
    article: str | None
    day: int | None = None
    intent: str | None = None


@dataclass(frozen=True)
class EvalResult:
    item: EvalQuestion
    ranked_articles: tuple[str, ...]  # distinct article ids, best first
    top_score: float  # best cosine: what the answer/fallback decision compares with the threshold

    @property
    def in_scope(self) -> bool:
        """The guidance covers the question: the assistant should answer rather than fall back."""
        return self.item.article is not None

    @property
    def top_is_right(self) -> bool:
        return self.ranked_articles[:1] == (self.item.article,)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (ArticleError, IndexMismatchError, FileNotFoundError, ValueError) as error:
        # Problems staff can fix (an article, a stale index, a label): the message, not a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m knowledge", description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES, help="article folder")
    parser.add_argument(
        "--index-dir", type=Path, default=DEFAULT_INDEX, help="index root (versions, current)"
    )
    parser.add_argument("--model", type=Path, help="sentence-transformers model folder (default: bundled)")
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE, help="retrieval settings file")
    commands = parser.add_subparsers(required=True, metavar="command")
    commands.add_parser("build", help="index the approved articles").set_defaults(command=build_command)
    for name, handler, text in (
        ("search", search_command, "ranked passages for a question"),
        ("explain", explain_command, "why passages matched and the threshold decision"),
        ("answer", answer_command, "the reply a patient would get"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("query")
        sub.add_argument("--intent", help="Rasa intent, e.g. ask_makeup")
        sub.add_argument("--day", type=int, help="treatment day (0 = day of the treatment)")
        sub.set_defaults(command=handler)
    calibrate = commands.add_parser("calibrate", help="recall@1/@3 and the answer/fallback threshold")
    calibrate.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="labelled questions (YAML)")
    calibrate.add_argument("--write", action="store_true", help="store the threshold in the settings file")
    calibrate.set_defaults(command=calibrate_command)
    return parser


def build_command(args: argparse.Namespace) -> int:
    articles = load_articles(args.articles)
    embedder = _embedder(args)
    started = time.perf_counter()
    store = PassageStore.build(articles, embedder)
    elapsed = time.perf_counter() - started
    folder = store.save(args.index_dir)
    print(json.dumps(asdict(store.manifest), indent=2))
    published = len(published_articles(articles))
    print(f"{published}/{len(articles)} articles published, {len(store)} passages, built in {elapsed:.2f}s")
    print(f"saved to {folder}")
    return 0


def search_command(args: argparse.Namespace) -> int:
    retriever = _retriever(args)
    for rank, hit in enumerate(retriever.search(args.query, args.intent, args.day), start=1):
        print(f"{rank}. {hit.adjusted_score:.3f} (cosine {hit.score:.3f})  {_label(hit)}")
        print(f"   {_preview(hit.passage.text)}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    retriever = _retriever(args)
    answerer = Answerer.from_settings(retriever, load_clinic_profile(), args.settings)
    print(
        f"intent: {args.intent or '-'}   treatment day: {_or_unknown(args.day)}   "
        f"threshold: {answerer.threshold:.3f} (on the cosine)   topic boost: {retriever.topic_boost:.2f}"
    )
    for rank, hit in enumerate(retriever.rank(args.query, args.intent, args.day)[:SHOWN_CANDIDATES], start=1):
        verdict = _verdict(hit, answerer.threshold)
        print(f"{rank:2}. {hit.adjusted_score:.3f}  {verdict:<9} {_label(hit)}")
        for reason in hit.reasons:
            print(f"      - {reason}")
    _print_answer(answerer.answer(args.query, args.intent, args.day))
    return 0


def answer_command(args: argparse.Namespace) -> int:
    answerer = Answerer.from_settings(_retriever(args), load_clinic_profile(), args.settings)
    _print_answer(answerer.answer(args.query, args.intent, args.day))
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    articles = published_articles(load_articles(args.articles))
    questions = load_eval_questions(args.eval, {article.id for article in articles})
    embedder = _embedder(args)
    retriever = Retriever.from_settings(PassageStore.build(articles, embedder), embedder, args.settings)
    results = [evaluate(retriever, question) for question in questions]
    threshold = choose_threshold(results)
    _print_results(results, threshold)
    in_scope = sum(result.in_scope for result in results)
    if args.write and not 0 < in_scope < len(results):
        print("not writing: calibration needs both in-scope and out-of-scope questions", file=sys.stderr)
        return 1
    if args.write:
        _write_threshold(args.settings, threshold, results)
        print(f"threshold {threshold:.3f} written to {args.settings}")
    return 0


def load_eval_questions(path: Path, article_ids: set[str]) -> list[EvalQuestion]:
    """Read the labelled questions, refusing labels that name no published article."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    questions = [
        EvalQuestion(str(item["question"]), item.get("article"), item.get("day"), item.get("intent"))
        for item in raw
    ]
    if not questions:
        raise ValueError(f"{path}: no labelled questions")
    unknown = sorted({q.article for q in questions if q.article is not None and q.article not in article_ids})
    if unknown:
        raise ValueError(f"{path}: labels name unknown or unpublished articles: {', '.join(unknown)}")
    return questions


def evaluate(retriever: Retriever, item: EvalQuestion) -> EvalResult:
    """Rank the articles for one labelled question the way the answerer would see them."""
    hits = [hit for hit in retriever.rank(item.question, item.intent, item.day) if not hit.excluded]
    ranked = tuple(dict.fromkeys(hit.passage.article_id for hit in hits))
    return EvalResult(item, ranked, hits[0].score if hits else 0.0)


def choose_threshold(results: list[EvalResult]) -> float:
    """The threshold that best separates in-scope top scores from out-of-scope ones.

    It maximises the balanced accuracy of the answer-vs-fallback decision (the mean of the in-scope answer
    rate and the out-of-scope fallback rate), so the result does not depend on how many out-of-scope
    questions the labelled set happens to hold. Ties go to fewer out-of-scope answers, then to the middle
    of the tied range so the choice does not sit on one question's score.
    """
    scores = sorted({result.top_score for result in results})
    candidates = [
        scores[0] - 0.01,
        *((a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)),
        scores[-1] + 0.01,
    ]
    keys = {t: _selection_key(_decision_counts(results, t)) for t in candidates}
    best = max(keys.values())
    tied = [t for t, key in keys.items() if key == best]
    return round(tied[len(tied) // 2], 3)


def _selection_key(counts: dict[str, int]) -> tuple[float, int]:
    return round(_balanced_accuracy(counts), 9), -counts["out_of_scope_answered"]


def _balanced_accuracy(counts: dict[str, int]) -> float:
    in_scope = counts["in_scope_answered"] + counts["in_scope_fallback"]
    out_of_scope = counts["out_of_scope_answered"] + counts["out_of_scope_fallback"]
    answer_rate = counts["in_scope_answered"] / in_scope if in_scope else 1.0
    fallback_rate = counts["out_of_scope_fallback"] / out_of_scope if out_of_scope else 1.0
    return (answer_rate + fallback_rate) / 2


def _decision_counts(results: list[EvalResult], threshold: float) -> dict[str, int]:
    decisions = [(result.top_score >= threshold, result.in_scope) for result in results]
    return {
        "in_scope_answered": sum(answered and in_scope for answered, in_scope in decisions),
        "in_scope_fallback": sum(in_scope and not answered for answered, in_scope in decisions),
        "out_of_scope_answered": sum(answered and not in_scope for answered, in_scope in decisions),
        "out_of_scope_fallback": sum(not answered and not in_scope for answered, in_scope in decisions),
    }


def _print_results(results: list[EvalResult], threshold: float) -> None:
    print("decision top-1  score  labelled article                 top article                      question")
    for result in results:
        got = result.ranked_articles[0] if result.ranked_articles else "-"
        decision = "ok " if (result.top_score >= threshold) == result.in_scope else "BAD"
        top = "right" if result.top_is_right else "-    " if not result.in_scope else "WRONG"
        print(
            f"{decision:<8} {top}  {result.top_score:.3f}  {result.item.article or '(none)':<32} {got:<32} "
            f"{_preview(result.item.question, 60)}"
        )
    in_scope = [result for result in results if result.in_scope]
    if in_scope:
        for k in (1, 3):
            hits = sum(result.item.article in result.ranked_articles[:k] for result in in_scope)
            print(f"recall@{k}: {hits / len(in_scope):.3f} ({hits}/{len(in_scope)} in-scope questions)")
    print(f"{len(results) - len(in_scope)} out-of-scope questions")
    print("threshold  balanced-accuracy  accuracy   in-scope answered  out-of-scope answered")
    sweep = sorted({round(0.25 + 0.05 * step, 2) for step in range(10)} | {threshold})
    for t in sweep:
        counts = _decision_counts(results, t)
        accuracy = (counts["in_scope_answered"] + counts["out_of_scope_fallback"]) / len(results)
        marker = "  <- chosen" if t == threshold else ""
        print(
            f"{t:9.3f}  {_balanced_accuracy(counts):17.3f}  {accuracy:8.3f}  "
            f"{counts['in_scope_answered']:8} of {len(in_scope):<6}  "
            f"{counts['out_of_scope_answered']:10} of {len(results) - len(in_scope)}{marker}"
        )


def _write_threshold(settings: Path, threshold: float, results: list[EvalResult]) -> None:
    """Replace the `threshold:` line in place so the file's comments survive."""
    accuracy = _balanced_accuracy(_decision_counts(results, threshold))
    text = settings.read_text(encoding="utf-8")
    if not THRESHOLD_LINE.search(text):
        raise ValueError(f"{settings}: no 'threshold:' line to update")
    date = time.strftime("%Y-%m-%d")
    note = f"# calibrated {date}: balanced accuracy {accuracy:.3f}, {len(results)} questions"
    line = f"\\g<indent>threshold: {threshold:.3f}   {note}"
    settings.write_text(THRESHOLD_LINE.sub(line, text, count=1), encoding="utf-8")


def _embedder(args: argparse.Namespace) -> Embedder:
    return SentenceTransformerEmbedder(args.model)


def _retriever(args: argparse.Namespace) -> Retriever:
    embedder = _embedder(args)
    return Retriever.from_settings(_open_store(args, embedder), embedder, args.settings)


def _open_store(args: argparse.Namespace, embedder: Embedder) -> PassageStore:
    """The saved current index, or an in-memory build from the articles when none was built yet."""
    articles = load_articles(args.articles)
    try:
        store = PassageStore.load(args.index_dir, embedder)
    except FileNotFoundError:
        print(f"no index in {args.index_dir}; using an in-memory build of {args.articles}", file=sys.stderr)
        return PassageStore.build(articles, embedder)
    if store.manifest.content_hash != content_hash(articles):
        print(
            f"warning: index {store.manifest.version} was built from older article text; run build",
            file=sys.stderr,
        )
    return store


def _print_answer(answer: Answer) -> None:
    print(f"\n[{answer.kind}, score {answer.score:.3f}, sources {[s['id'] for s in answer.sources]}]")
    print(answer.text)


def _verdict(hit: Hit, threshold: float) -> str:
    if hit.excluded:
        return "excluded"
    return "quotable" if hit.score >= threshold else "too weak"


def _label(hit: Hit) -> str:
    return f"{hit.passage.article_id} #{hit.passage.position}"


def _preview(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _or_unknown(value: int | None) -> str:
    return "unknown" if value is None else str(value)
