"""Command line for the knowledge base: `python -m knowledge build | search | explain | answer | calibrate |
train-gate | check`.

build       articles -> a new index version under var/index/, printed manifest
search      the ranked passages for a question, with scores
explain     why articles matched: the three signals, the fused score, topic boost, treatment-day filter, the
            things the question names, and the decision
answer      the reply a patient would get (--day, --stage, --topic give the conversation's context)
calibrate   choose the fusion weights and answer thresholds on the train half of the labelled questions
            (--write saves them in settings.yml)
train-gate  train the domain gate on the labelled train half (writes knowledge/domain_gate.json)
check       the answer figures on a labelled half (`--half train|held-out`, `--misses` for train only,
            `--url` to measure through a running product's /api/chat as well)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
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
DEFAULT_LABELLED = PACKAGE_DIR.parent / "labelled" / "train"
SHOWN_CANDIDATES = 8


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (ArticleError, IndexMismatchError, FileNotFoundError, ValueError) as error:
        # Problems staff can fix (an article, a stale index, a label): the message, not a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from knowledge.check import HALVES, check_command

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
        ("explain", explain_command, "why articles matched and the decision"),
        ("answer", answer_command, "the reply a patient would get"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("query")
        sub.add_argument("--intent", help="Rasa intent, e.g. ask_makeup")
        sub.add_argument("--day", type=int, help="treatment day (0 = day of the treatment)")
        sub.add_argument("--stage", choices=("before", "after"), help="the stage the conversation knows")
        sub.add_argument("--topic", help="the article the previous answer came from (follow-ups)")
        sub.set_defaults(command=handler)
    calibrate = commands.add_parser("calibrate", help="fusion weights and thresholds on the train half")
    calibrate.add_argument(
        "--eval",
        type=Path,
        default=DEFAULT_LABELLED,
        help="labelled questions: a YAML file, or a folder's questions*.yml",
    )
    calibrate.add_argument("--write", action="store_true", help="store the numbers in the settings file")
    calibrate.set_defaults(command=calibrate_command)
    gate = commands.add_parser("train-gate", help="train the domain gate on the labelled train half")
    gate.set_defaults(command=train_gate_command)
    check = commands.add_parser("check", help="answer figures on a labelled half")
    check.add_argument("--half", choices=sorted(HALVES), default="train")
    check.add_argument("--misses", action="store_true", help="list every miss (train half only)")
    check.add_argument("--url", help="also measure through a running product's /api/chat")
    check.set_defaults(command=check_command)
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
    quotable = len(store.quotable)
    print(
        f"{published}/{len(articles)} articles published, {quotable} passages and "
        f"{len(store) - quotable} listed questions, built in {elapsed:.2f}s"
    )
    print(f"saved to {folder}")
    return 0


def search_command(args: argparse.Namespace) -> int:
    retriever = _retriever(args)
    for rank, hit in enumerate(retriever.search(args.query, args.intent, args.day), start=1):
        print(f"{rank}. {hit.adjusted_score:.3f} (cosine {hit.score:.3f})  {_label(hit)}")
        print(f"   {_preview(hit.passage.text)}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    from knowledge import context
    from knowledge.lexical import terms

    answerer = _answerer(args)
    retriever, decision = answerer.retriever, answerer.decision
    query = args.query
    gate = answerer.domain_gate(retriever.embed(query)) if answerer.domain_gate else None
    print(
        f"intent: {args.intent or '-'}   treatment day: {_or_unknown(args.day)}   "
        f"stage: {args.stage or '-'}   "
        f"topic: {args.topic or '-'}   weights: {retriever.weights}"
    )
    print(
        f"things named: {[t.name for t in answerer.things.things_in(query)] or '-'}   "
        f"stage in the question: {context.question_stage(query) or '-'}   "
        f"off-topic: {'-' if gate is None else f'{gate:.3f} (gate {decision.off_topic})'}   "
        f"unknown words: {retriever.store.lexical.unknown_share(terms(query)):.2f}   "
        f"threshold: {decision.threshold} "
        f"({decision.unknown_threshold} from {decision.unknown_share} unknown)"
    )
    for rank, candidate in enumerate(
        retriever.candidates(query, args.intent, args.day)[:SHOWN_CANDIDATES], 1
    ):
        flag = (
            "excluded"
            if candidate.excluded
            else ("answers" if candidate.score >= decision.threshold else "weak")
        )
        print(f"{rank:2}. {candidate.rank_score:.3f}  {flag:<9} {candidate.article_id} ({candidate.stage})")
        for reason in candidate.reasons:
            print(f"      - {reason}")
    _print_answer(answerer.answer(query, args.intent, args.day, stage=args.stage, topic=args.topic))
    return 0


def answer_command(args: argparse.Namespace) -> int:
    answerer = _answerer(args)
    _print_answer(answerer.answer(args.query, args.intent, args.day, stage=args.stage, topic=args.topic))
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    """Choose the fusion weights and answer thresholds on the labelled train questions."""
    from knowledge.calibration import calibrate, write_calibration
    from safety.bank import read_items

    if args.eval.is_dir():
        items = read_items(args.eval, "questions")
    else:
        items = yaml.safe_load(args.eval.read_text(encoding="utf-8")) or []
    if "heldout" in args.eval.parts:
        print("refusing to calibrate on the held-out half: it is only ever measured", file=sys.stderr)
        return 2
    answerer = _answerer(args)
    result = calibrate(answerer, items)
    labelled = sum(item["kind"] in ("answer", "fallback") for item in items)
    print(f"calibrated on {labelled} labelled questions of {args.eval}")
    print(
        f"  weights {result.weights} -> right article for {100 * result.top1:.1f} % of answerable questions"
    )
    decision = result.decision
    print(
        f"  threshold {decision.threshold:.2f} ({decision.unknown_threshold:.2f} when >= "
        f"{decision.unknown_share:.2f} of the words are in no article): "
        f"answers {100 * result.answers:.1f} %, "
        f"not covered {100 * result.not_covered:.1f} %, fallback precision {100 * result.precision:.1f} %"
    )
    print(
        f"  stage margin {decision.stage_margin:.2f}: {100 * result.stage_right:.1f} % right where the stage "
        "was unknown"
    )
    if args.write:
        write_calibration(args.settings, result, labelled)
        print(f"written to {args.settings}")
    return 0


def train_gate_command(args: argparse.Namespace) -> int:
    """Train the domain gate on the labelled train half and save it (threshold into settings.yml)."""
    from knowledge.calibration import write_setting
    from knowledge.domain import GATE_FILE, train_domain_gate

    training = train_domain_gate(_embedder(args))
    GATE_FILE.write_text(training.gate.to_json(), encoding="utf-8")
    write_setting(args.settings, "off_topic", f"{training.threshold:.3f}")
    print(
        f"domain gate saved to {GATE_FILE}; threshold {training.threshold:.3f} (cross-validated: "
        f"{100 * training.questions_gated:.1f} % of the train questions gated, "
        f"{100 * training.off_topic_caught:.1f} % of the off-topic requests caught)"
    )
    return 0


def _embedder(args: argparse.Namespace) -> Embedder:
    import torch

    torch.set_num_threads(1)  # as the app runs it
    return SentenceTransformerEmbedder(args.model)


def _retriever(args: argparse.Namespace) -> Retriever:
    embedder = _embedder(args)
    return Retriever.from_settings(_open_store(args, embedder), embedder, args.settings)


def _answerer(args: argparse.Namespace) -> Answerer:
    return Answerer.from_settings(_retriever(args), load_clinic_profile(), args.settings)


def _open_store(args: argparse.Namespace, embedder: Embedder) -> PassageStore:
    """The saved current index, or an in-memory build from the articles when none fits them."""
    articles = load_articles(args.articles)
    try:
        store = PassageStore.load(args.index_dir, embedder)
    except FileNotFoundError:
        print(f"no index in {args.index_dir}; using an in-memory build of {args.articles}", file=sys.stderr)
        return PassageStore.build(articles, embedder)
    if store.manifest.content_hash != content_hash(articles):
        print(
            f"index {store.manifest.version} is older than the articles; using an in-memory build",
            file=sys.stderr,
        )
        return PassageStore.build(articles, embedder)
    return store


def _print_answer(answer: Answer) -> None:
    sources = [source["id"] for source in answer.sources]
    print(f"\n[{answer.kind} ({answer.reason}), score {answer.score:.3f}, sources {sources}]")
    print(answer.text)
    if answer.buttons:
        print(f"buttons: {answer.buttons}")


def _label(hit: Hit) -> str:
    return f"{hit.passage.article_id} #{hit.passage.position}"


def _preview(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _or_unknown(value: int | None) -> str:
    return "unknown" if value is None else str(value)
