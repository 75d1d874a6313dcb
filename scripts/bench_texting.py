"""`make bench`, texting channels (issue 11): what a patient who texts waits for, against the chat API.

(d) One open-loop run through the real product: messages arrive at a fixed rate, taking turns between the
    chat API, Twilio's SMS webhook and the WhatsApp Cloud API webhook, so all three share the same load.
    Twilio and Meta are the project's fakes, run inside this script so each reply's arrival is timed
    exactly: webhook acknowledgement (the provider's HTTP request answered) and webhook-to-reply-sent (the
    reply reached the provider's API through the outbox), against the chat API's request latency.
(e) The SMS segments of the ten longest knowledge-base answers: the answers the assistant gives to the
    project's own labelled questions, as one unshortened SMS and as rendered within the segment budget.

    python -m scripts.bench --only fg
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.channels.render import SmsStyle, Wording, gsm_friendly, plain_text, render, sms_segments
from bot.fakes import FakeMetaGraph, FakeTwilio
from bot.schemas import ChatMessage, Source
from scripts.common import ROOT, running_product, summary_ms

ACCOUNT_SID = "AC" + "be4c" * 8
AUTH_TOKEN = "bench-auth-token"
CLINIC_NUMBER = "+15550100100"
PUBLIC_URL = "https://chat.clinic.example"  # what the fakes sign; requests go to the local product
META = {"token": "bench-graph-token", "secret": "bench-app-secret", "number_id": "100000000000077"}


class _Timed:
    """Remembers when each recipient's message arrived (the fake's `store` is called as it accepts one)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.arrived = threading.Condition()

    def stamp(self, recipient: str) -> None:
        with self.arrived:
            self.arrivals.setdefault(recipient, time.perf_counter())
            self.arrived.notify_all()


class TimedTwilio(FakeTwilio, _Timed):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FakeTwilio.__init__(self, *args, **kwargs)
        _Timed.__init__(self)

    def store(self, item: dict[str, Any]) -> None:
        super().store(item)
        self.stamp(item["to"])


class TimedMeta(FakeMetaGraph, _Timed):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        FakeMetaGraph.__init__(self, *args, **kwargs)
        _Timed.__init__(self)

    def store(self, item: dict[str, Any]) -> None:
        super().store(item)
        self.stamp(str(item["to"]))


def _environment(twilio: FakeTwilio, meta: FakeMetaGraph) -> dict[str, str]:
    return {
        "ASSISTANT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "ASSISTANT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "ASSISTANT_TWILIO_FROM_NUMBER": CLINIC_NUMBER,
        "ASSISTANT_TWILIO_BASE_URL": twilio.url,
        "ASSISTANT_TWILIO_MESSAGING_ENABLED": "true",
        "ASSISTANT_PUBLIC_URL": PUBLIC_URL,
        "ASSISTANT_WHATSAPP_ENABLED": "true",
        "ASSISTANT_WHATSAPP_GRAPH_URL": meta.url,
        "ASSISTANT_WHATSAPP_ACCESS_TOKEN": META["token"],
        "ASSISTANT_WHATSAPP_APP_SECRET": META["secret"],
        "ASSISTANT_WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
        "ASSISTANT_WHATSAPP_PHONE_NUMBER_ID": META["number_id"],
        # One machine plays every patient: the per-address limits would measure themselves.
        "ASSISTANT_RATE_LIMIT_PER_CLIENT": "1000000/minute",
        "ASSISTANT_RATE_LIMIT_NEW_SESSIONS": "1000000/hour",
        "ASSISTANT_RATE_LIMIT_GLOBAL": "1000000/minute",
        "ASSISTANT_ESCALATIONS_PER_SOURCE": "100000",
    }


async def _wait_arrival(fake: _Timed, recipient: str, timeout: float = 60.0) -> float | None:
    def wait() -> float | None:
        with fake.arrived:
            fake.arrived.wait_for(lambda: recipient in fake.arrivals, timeout=timeout)
            return fake.arrivals.get(recipient)

    return await asyncio.to_thread(wait)


async def _run(product, twilio: TimedTwilio, meta: TimedMeta, messages: list[str], rate: float, count: int):
    results: dict[str, list[float]] = {"chat": [], "sms_ack": [], "sms_sent": [], "wa_ack": [], "wa_sent": []}
    errors = {"chat": 0, "sms": 0, "whatsapp": 0}
    texts = itertools.cycle(messages)

    async with httpx.AsyncClient(base_url=product.url, timeout=60) as client:

        async def chat(text: str) -> None:
            started = time.perf_counter()
            response = await client.post("/api/chat", json={"session_id": None, "text": text})
            if response.status_code == 200:
                results["chat"].append(time.perf_counter() - started)
            else:
                errors["chat"] += 1

        async def sms(text: str) -> None:
            sender = f"+1555010{uuid.uuid4().int % 10_000:04d}"
            body, headers = twilio.incoming(
                f"{PUBLIC_URL}/channels/twilio/messages", sender, CLINIC_NUMBER, text
            )
            started = time.perf_counter()
            response = await client.post("/channels/twilio/messages", content=body, headers=headers)
            results["sms_ack"].append(time.perf_counter() - started)
            arrived = await _wait_arrival(twilio, sender) if response.status_code == 200 else None
            if arrived is None:
                errors["sms"] += 1
            else:
                results["sms_sent"].append(arrived - started)

        async def whatsapp(text: str) -> None:
            wa_id = f"1555020{uuid.uuid4().int % 100_000:05d}"
            body, headers = meta.signed(meta.message_event(wa_id, text))
            started = time.perf_counter()
            response = await client.post("/channels/whatsapp/webhook", content=body, headers=headers)
            results["wa_ack"].append(time.perf_counter() - started)
            arrived = await _wait_arrival(meta, wa_id) if response.status_code == 200 else None
            if arrived is None:
                errors["whatsapp"] += 1
            else:
                results["wa_sent"].append(arrived - started)

        for warm_up in (chat, sms, whatsapp):
            await warm_up(next(texts))
        results = {name: [] for name in results}
        kinds = itertools.cycle((chat, sms, whatsapp))
        tasks = []
        start = time.perf_counter()
        for index in range(count):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(next(kinds)(next(texts))))
        await asyncio.gather(*tasks)
    return results, errors


def texting_latency(messages: list[str], rate: float = 3.0, count: int = 150) -> None:
    twilio = TimedTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    twilio.status_callbacks = False  # the public URL is not this machine
    meta = TimedMeta(META["token"], META["secret"], META["number_id"]).start()
    try:
        with running_product(_environment(twilio, meta)) as product:
            results, errors = asyncio.run(_run(product, twilio, meta, messages, rate, count))
    finally:
        twilio.stop()
        meta.stop()
    print(f"\n== (d) texting channels: {count} messages at {rate:g} msg/s, in turn chat API / SMS / WhatsApp")
    print(f"{'chat API request':>40}: {len(results['chat'])} replies, {summary_ms(results['chat'])}")
    for label, key in (("SMS", "sms"), ("WhatsApp Cloud", "wa")):
        print(f"{label + ' webhook acknowledgement':>40}: {summary_ms(results[f'{key}_ack'])}")
        print(
            f"{label + ' webhook to reply sent':>40}: {len(results[f'{key}_sent'])} replies, "
            f"{summary_ms(results[f'{key}_sent'])}"
        )
    print(f"{'errors':>40}: {errors}")


def _questions() -> list[str]:
    """The project's own labelled questions (not the shared evaluation set)."""
    questions = [
        item["question"] for item in yaml.safe_load((ROOT / "knowledge" / "retrieval_eval.yml").read_text())
    ]
    for path in sorted((ROOT / "labelled").glob("*/questions*.yml")):
        questions += [item["text"] for item in yaml.safe_load(path.read_text()) or [] if item.get("text")]
    return questions


def longest_answers_as_sms(top: int = 10, max_segments: int = 4) -> None:
    from bot.knowledge_base import load_knowledge  # the embedding model: loaded only for this section
    from bot.settings import Settings
    from knowledge.clinic import load_clinic_profile
    from knowledge.replies import load_replies

    clinic = load_clinic_profile()
    with tempfile.TemporaryDirectory(prefix="segments-") as var_dir:
        answerer, _embedder = load_knowledge(Settings(_env_file=None, var_dir=Path(var_dir)), clinic)
        questions = _questions()
        answers = {}
        for question in questions:
            answer = answerer.answer(question)
            if answer.kind == "answer":
                answers[answer.text] = answer
    wording = Wording.from_replies(load_replies(clinic))
    longest = sorted(answers.values(), key=lambda a: len(a.text), reverse=True)[:top]
    print(
        f"\n== (e) SMS segments of the {top} longest answers ({len(answers)} distinct answers to "
        f"{len(questions)} labelled questions; budget {max_segments} segments)"
    )
    print(f"{'chars':>6} {'as one SMS':>14} {'rendered':>14} {'kept':>6}  sources")
    for answer in longest:
        whole = sms_segments(gsm_friendly(plain_text(answer.text)))
        message = ChatMessage(text=answer.text, kind="answer", sources=[Source(**s) for s in answer.sources])
        rendered = render([message], SmsStyle(max_segments), wording)
        kept = f"{len(rendered.text)}" + ("*" if rendered.shortened else "")
        titles = "; ".join(s["title"] for s in answer.sources)
        print(
            f"{len(answer.text):>6} {whole.count:>3} {whole.encoding:<10} {rendered.segments.count:>3} "
            f"{rendered.segments.encoding:<10} {kept:>6}  {titles}"
        )
    print("(* shortened at a sentence, with the note and the source kept)")
