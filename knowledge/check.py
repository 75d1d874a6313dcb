"""How well the assistant answers: `python -m knowledge check --half train|held-out [--misses] [--url URL]`.

Measures on the project's labelled patient messages (labelled/README.md): the train half is what thresholds
are calibrated on, the held-out half is only ever measured (never read to write rules, questions or
thresholds). `measure(url, half)` returns the figures for scripts to print or store:

in-process (the answerer alone, no Rasa; `day` from the labels):
- answers: answerable questions given the labelled article (or one of its `also`); for a stage-ambiguous
  question asking whether the treatment has happened is right too;
- not covered: questions the guidance does not answer given a fallback;
- fallback precision: of the fallback replies to those two kinds, the share that were really not covered;
- off-topic answered: everyday requests (offtopic.yml) answered from an article;
- answer latency: the answer path's own time per question (median and p95).

through the real product's `POST /api/chat` when `url` is given (each message or conversation in a fresh
server-issued session, the token sent back in X-Session-Token), the same single-question figures plus small
talk, handoff requests, other-language notices, and the multi-turn conversations (question_conversations.yml):
turns right and conversations right throughout. The product must be started with lifted per-client rate
limits (every request comes from one address), as the test suite's `product` fixture does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from safety.bank import read_items

LABELLED = Path(__file__).resolve().parent.parent / "labelled"
HALVES = {"train": LABELLED / "train", "held-out": LABELLED / "heldout"}
WORKERS = 4
RETRIES_WHEN_LIMITED = 5
LATENCY_TARGET_MS = 150.0


@dataclass(frozen=True)
class Figure:
    """One measured figure: `value` is a share (0..1) or milliseconds; `met` is None when it has no target."""

    name: str
    value: float
    target: str  # e.g. ">= 95 %", "<= 1 %", "" for none
    met: bool | None
    detail: str = ""  # e.g. "278/290"
    misses: list[str] = field(default_factory=list, compare=False, repr=False)

    def line(self) -> str:
        shown = f"{self.value:.1f} ms" if self.name.endswith("(ms)") else f"{100 * self.value:.1f} %"
        verdict = "" if self.met is None else ("  met" if self.met else "  NOT MET")
        target = f"target {self.target}" if self.target else ""
        return f"{self.name:<44} {shown:>9}  {self.detail:<12} {target}{verdict}"


def share(name: str, results: list[bool], target: str, misses: list[str] | None = None) -> Figure:
    """A share figure; `target` is ">= N %" or "<= N %"."""
    value = sum(results) / len(results) if results else 0.0
    bound = float(target.split()[1]) / 100 if target else None
    met = None if bound is None else (value >= bound if target.startswith(">=") else value <= bound)
    return Figure(
        name, value, target, met if results else None, f"{sum(results)}/{len(results)}", misses or []
    )


# --- the labelled data ----------------------------------------------------------------------------------


def folder_of(half: str) -> Path:
    if half not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}, got {half!r}")
    return HALVES[half]


def accepted(item: dict) -> list[str]:
    return [item["article"], *(item.get("also") or [])]


# --- in-process ----------------------------------------------------------------------------------------


def answer_is_right(item: dict, kind: str, sources: list[str], asked_stage: bool) -> bool:
    """The reply to one labelled question, judged the same way in-process and through the API."""
    if item["kind"] == "answer":
        if asked_stage and item.get("stage_ambiguous"):
            return True
        return kind == "answer" and bool(sources) and sources[0] in accepted(item)
    return kind == "fallback"


def single_question_figures(
    items: list[dict], offtopic: list[dict], reply: Callable[[dict], tuple[str, list[str], bool]], suffix: str
) -> list[Figure]:
    """Answers, not covered, fallback precision and off-topic answered, from a `reply` function giving
    (kind: answer|fallback|other, cited article ids, whether it asked the stage) for an item."""
    judged = [(item, *reply(item)) for item in items if item["kind"] in ("answer", "fallback")]
    answers = [(i, answer_is_right(i, k, s, a), k, s) for i, k, s, a in judged if i["kind"] == "answer"]
    covered = [(i, answer_is_right(i, k, s, a), k, s) for i, k, s, a in judged if i["kind"] == "fallback"]
    fallbacks = [i["kind"] == "fallback" for i, k, _, _ in judged if k == "fallback"]
    off = [(item, *reply(item)) for item in offtopic]
    return [
        share(f"answers correct{suffix}", [ok for _, ok, _, _ in answers], ">= 95 %", _misses(answers)),
        share(
            f"not covered given a fallback{suffix}",
            [ok for _, ok, _, _ in covered],
            ">= 95 %",
            _misses(covered),
        ),
        share(f"fallback precision{suffix}", fallbacks, ">= 95 %"),
        share(
            f"off-topic answered from articles{suffix}",
            [k == "answer" for _, k, _, _ in off],
            "<= 1 %",
            [f"{i['id']} -> {s} | {i['text'][:90]}" for i, k, s, _ in off if k == "answer"],
        ),
    ]


def _misses(judged: Iterable[tuple[dict, bool, str, list[str]]]) -> list[str]:
    return [
        f"{item['id']} want {item.get('article') or 'fallback'} got {kind} {sources} | {item['text'][:90]}"
        for item, ok, kind, sources in judged
        if not ok
    ]


def in_process(half: str) -> list[Figure]:
    """The answerer alone on the labelled questions and off-topic requests of `half`."""
    answerer = build_answerer()
    folder = folder_of(half)
    items, offtopic = read_items(folder, "questions"), read_items(folder, "offtopic")
    timings: list[float] = []

    def reply(item: dict) -> tuple[str, list[str], bool]:
        started = time.perf_counter()
        answer = answerer.answer(item["text"], None, item.get("day"))
        timings.append(time.perf_counter() - started)
        kind = "fallback" if answer.kind == "fallback" else answer.kind
        return kind, [source["id"] for source in answer.sources], answer.kind == "ask_stage"

    figures = single_question_figures(items, offtopic, reply, "")
    ms = sorted(1000 * t for t in timings)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))] if ms else 0.0
    figures.append(Figure("answer latency, median (ms)", statistics.median(ms) if ms else 0.0, "", None))
    figures.append(
        Figure(
            "answer latency, p95 (ms)",
            p95,
            f"<= {LATENCY_TARGET_MS:.0f}",
            p95 <= LATENCY_TARGET_MS,
            f"n={len(ms)}",
        )
    )
    return figures


def build_answerer():
    """The answerer over the current articles, built as the app builds it (the saved index when it fits)."""
    import torch

    from knowledge.answers import Answerer
    from knowledge.articles import load_articles
    from knowledge.cli import DEFAULT_ARTICLES, DEFAULT_INDEX
    from knowledge.clinic import load_clinic_profile
    from knowledge.embedding import SentenceTransformerEmbedder
    from knowledge.index import IndexMismatchError, PassageStore, content_hash
    from knowledge.retriever import Retriever

    torch.set_num_threads(1)  # as the app runs it (ASSISTANT_TORCH_THREADS): one question at a time
    embedder = SentenceTransformerEmbedder()
    articles = load_articles(DEFAULT_ARTICLES)
    try:
        store = PassageStore.load(DEFAULT_INDEX, embedder)
        if store.manifest.content_hash != content_hash(articles):
            raise IndexMismatchError("articles changed")
    except (FileNotFoundError, IndexMismatchError, ValueError):
        store = PassageStore.build(articles, embedder)
        store.save(DEFAULT_INDEX)
    return Answerer.from_settings(Retriever.from_settings(store, embedder), load_clinic_profile())


# --- through the product -----------------------------------------------------------------------------


class ApiPatient:
    """One patient's session with the chat API: the server issues the session and its token."""

    def __init__(self, client) -> None:
        self.client = client
        self.session_id: str | None = None
        self.token: str | None = None

    def says(self, text: str, treatment_date: date | None = None) -> dict:
        body: dict[str, Any] = {"text": text, "session_id": self.session_id}
        if treatment_date is not None:
            body["treatment_date"] = treatment_date.isoformat()
        headers = {"X-Session-Token": self.token} if self.token else {}
        for attempt in range(RETRIES_WHEN_LIMITED + 1):
            response = self.client.post("/api/chat", json=body, headers=headers)
            if response.status_code != 429 or attempt == RETRIES_WHEN_LIMITED:
                break
            time.sleep(float(response.headers.get("Retry-After", "2")))
        response.raise_for_status()
        reply = response.json()
        if reply.get("session_token"):
            self.session_id, self.token = reply["session_id"], reply["session_token"]
        return reply


def reply_kind(reply: dict) -> tuple[str, list[str]]:
    """What a chat reply amounts to: answer (with its sources), fallback, handoff, smalltalk or escalation."""
    messages = reply["messages"]
    kinds = [message["kind"] for message in messages]
    sources = [
        source["id"] for message in messages if message["kind"] == "answer" for source in message["sources"]
    ]
    for kind in ("handoff", "answer", "fallback", "smalltalk", "escalation"):
        if kind in kinds:
            return kind, sources
    return "none", sources


def asked_stage(reply: dict, ask_text: str) -> bool:
    return any(message["text"] == ask_text for message in reply["messages"])


def turn_is_right(expect: dict, reply: dict) -> bool:
    kind, sources = reply_kind(reply)
    if expect["kind"] == "answer":
        return (
            kind == "answer"
            and bool(sources)
            and sources[0] in [expect["article"], *(expect.get("also") or [])]
        )
    return kind == expect["kind"]


def through_api(url: str, half: str) -> list[Figure]:
    import httpx

    from knowledge.clinic import load_clinic_profile
    from knowledge.replies import load_replies

    replies = load_replies(load_clinic_profile())
    ask_text = replies.text("ask_stage")
    folder = folder_of(half)
    items, offtopic = read_items(folder, "questions"), read_items(folder, "offtopic")
    conversations = read_items(folder, "question_conversations")
    today = load_clinic_profile().today()  # the product counts days in the clinic's time zone
    with httpx.Client(base_url=url, timeout=60) as client:

        def ask(item: dict) -> dict:
            day = item.get("day")
            return ApiPatient(client).says(
                item["text"], today - timedelta(days=day) if day is not None else None
            )

        with ThreadPoolExecutor(WORKERS) as pool:
            single = dict(
                zip((i["id"] for i in items + offtopic), pool.map(ask, items + offtopic), strict=True)
            )
            turns = list(pool.map(lambda c: _converse(client, c, today), conversations))

    def reply(item: dict) -> tuple[str, list[str], bool]:
        got = single[item["id"]]
        kind, sources = reply_kind(got)
        return kind, sources, asked_stage(got, ask_text)

    figures = single_question_figures(items, offtopic, reply, " (/api/chat)")
    figures += _kind_figures(items, single, replies)
    figures += _conversation_figures(conversations, turns)
    return figures


def _kind_figures(items: list[dict], single: dict[str, dict], replies) -> list[Figure]:
    smalltalk = [
        (i, reply_kind(single[i["id"]])[0] == "smalltalk") for i in items if i["kind"] == "smalltalk"
    ]
    handoff = [(i, reply_kind(single[i["id"]])[0] == "handoff") for i in items if i["kind"] == "handoff"]
    other = []
    for item in (i for i in items if i["kind"] == "other_language"):
        notice = replies.text("other_language", item.get("language", "en"))
        other.append((item, any(m["text"] == notice for m in single[item["id"]]["messages"])))

    def misses(judged: list[tuple[dict, bool]]) -> list[str]:
        return [
            f"{i['id']} got {reply_kind(single[i['id']])[0]} | {i['text'][:90]}" for i, ok in judged if not ok
        ]

    return [
        share("small talk (/api/chat)", [ok for _, ok in smalltalk], ">= 95 %", misses(smalltalk)),
        share("handoff requests (/api/chat)", [ok for _, ok in handoff], ">= 95 %", misses(handoff)),
        share("other-language notice (/api/chat)", [ok for _, ok in other], ">= 95 %", misses(other)),
    ]


def _converse(client, conversation: dict, today: date) -> list[tuple[dict, dict]]:
    patient = ApiPatient(client)
    day = conversation.get("day")
    treatment_date = today - timedelta(days=day) if day is not None else None
    return [(turn, patient.says(turn["text"], treatment_date)) for turn in conversation["turns"]]


def _conversation_figures(conversations: list[dict], turns: list[list[tuple[dict, dict]]]) -> list[Figure]:
    graded = [
        (c, t, turn_is_right(t["expect"], r), r)
        for c, ts in zip(conversations, turns, strict=True)
        for t, r in ts
    ]
    whole = [all(turn_is_right(t["expect"], r) for t, r in ts) for ts in turns]
    misses = [
        f"{c['id']} ({c['family']}) want {t['expect']} got {reply_kind(r)} | {t['text'][:80]}"
        for c, t, ok, r in graded
        if not ok
    ]
    return [
        share("multi-turn turns correct (/api/chat)", [ok for _, _, ok, _ in graded], ">= 90 %", misses),
        share("multi-turn conversations right throughout (/api/chat)", whole, ""),
    ]


# --- the entry points ----------------------------------------------------------------------------------


def measure(url: str | None, half: str) -> list[Figure]:
    """Every figure for `half` ("train" or "held-out"): in-process, plus through `url` when given."""
    figures = in_process(half)
    if url:
        figures += through_api(url, half)
    return figures


def check_command(args: argparse.Namespace) -> int:
    """`python -m knowledge check`: print the figures (and, for the train half, the misses)."""
    if args.misses and args.half != "train":
        print(
            "--misses is for the train half only: the held-out half is measured, never read", file=sys.stderr
        )
        return 2
    figures = measure(args.url, args.half)
    print(f"== Answers on the {args.half} half (labelled/{folder_of(args.half).name})")
    for figure in figures:
        print(figure.line())
    if args.misses:
        for figure in figures:
            for miss in figure.misses:
                print(f"  MISS [{figure.name}] {miss}")
    return 0
