"""`make bench`: throughput and latency of the real product on this machine (`make bench ARGS="--only d"`).

(a) capacity: N concurrent closed-loop conversations (5 turns each, a server-issued session each) through
    the clinic app's /api/chat, then the same load against Rasa's REST webhook alone; msg/s, latency
    percentiles, errors, resident memory of both processes.
(b) latency at a realistic load: messages arriving at a fixed rate (default 10 msg/s for 60 s), open loop.
(c) per-turn latency over one long conversation (turns 1-5 against turns 46-50).
(d) triage alone, in-process: 300- and 2,000-character messages, rules only and with the learned layer.
(e) a flood: 1,000 red-flag messages from one client, and meanwhile a real emergency from another patient;
    how long until staff receive that emergency, against the same on a quiet product. Runs with the real
    (default) rate limits and escalation caps.
(f) texting channels: webhook acknowledgement and webhook-to-reply-sent (SMS, WhatsApp) against the chat
    API in the same run; (g) the SMS segments of the ten longest answers (scripts/bench_texting.py).
(h) publish-to-live for 54 and 200 articles (scripts/bench_publish.py; its own products).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time

import httpx
import yaml

from scripts import bench_texting
from scripts.bench_publish import publish_to_live
from scripts.common import ROOT, Chat, percentile, rss_mb, running_product, staff_api_token, summary_ms

TURNS = 5


def patient_messages() -> list[str]:
    """The project's own labelled questions (not the shared evaluation set)."""
    items = yaml.safe_load((ROOT / "knowledge" / "retrieval_eval.yml").read_text())
    return [item["question"] for item in items]


async def timed(latencies: list[float], call) -> bool:
    started = time.perf_counter()
    try:
        await call
    except httpx.HTTPError:
        return False
    latencies.append(time.perf_counter() - started)
    return True


# --- (a) capacity -----------------------------------------------------------------------------------
async def closed_loop(send_turn, conversations: int, concurrency: int) -> tuple[list[float], int, float]:
    """`concurrency` workers running whole conversations back to back; returns (latencies, errors, secs)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(conversations))

    async def worker() -> None:
        nonlocal errors
        for conversation in queue:
            talk = send_turn(conversation)
            for turn in range(TURNS):
                errors += not await timed(latencies, talk(turn))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


async def capacity(product, messages: list[str], conversations: int, concurrency: int) -> None:
    cycle = itertools.cycle(messages)
    texts = [next(cycle) for _ in range(conversations * TURNS + 2 * TURNS)]

    async with (
        httpx.AsyncClient(base_url=product.url, timeout=60) as app,
        httpx.AsyncClient(base_url=product.rasa_url, timeout=60) as rasa,
    ):

        def through_app(conversation: int):
            chat = Chat(app)
            return lambda turn: chat.send(texts[conversation * TURNS + turn])

        def rasa_alone(conversation: int):
            sender = f"bench-{conversation}-{time.monotonic_ns()}"

            async def send(turn: int):
                body = {"sender": sender, "message": texts[conversation * TURNS + turn]}
                (await rasa.post("/webhooks/rest/webhook", json=body)).raise_for_status()

            return send

        print(
            f"\n== (a) capacity: {concurrency} concurrent conversations x {TURNS} turns, "
            f"{conversations} conversations"
        )
        throughput = {}
        for name, send_turn in (
            ("clinic app /api/chat", through_app),
            ("Rasa REST webhook alone", rasa_alone),
        ):
            await closed_loop(send_turn, 2, 2)  # warm-up
            latencies, errors, seconds = await closed_loop(send_turn, conversations, concurrency)
            throughput[name] = len(latencies) / seconds
            print(f"{name:>26}: {throughput[name]:.1f} msg/s, {summary_ms(latencies)}, errors {errors}")
    print(
        f"{'RSS':>26}: clinic app {rss_mb(product.processes['app'].pid):.0f} MB, "
        f"Rasa {rss_mb(product.processes['rasa'].pid):.0f} MB"
    )
    ratio = throughput["clinic app /api/chat"] / throughput["Rasa REST webhook alone"]
    print(f"{'throughput ratio':>26}: {ratio:.2f} x Rasa alone")


# --- (b) open loop ----------------------------------------------------------------------------------
async def open_loop(product, messages: list[str], rate: float, seconds: float) -> None:
    latencies: list[float] = []
    errors = 0
    cycle = itertools.cycle(messages)
    async with httpx.AsyncClient(base_url=product.url, timeout=60) as client:
        chats = [Chat(client) for _ in range(int(rate * seconds) // TURNS + 1)]

        async def send(index: int) -> None:
            nonlocal errors
            errors += not await timed(latencies, chats[index // TURNS].send(next(cycle)))

        tasks = []
        start = time.perf_counter()
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(index)))
        await asyncio.gather(*tasks)
    print(f"\n== (b) open loop: {rate:g} msg/s for {seconds:g} s through /api/chat")
    print(f"{len(latencies)} replies, {summary_ms(latencies)}, errors {errors}")


# --- (c) one long conversation --------------------------------------------------------------------------
async def long_conversation(product, messages: list[str], turns: int = 50) -> None:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=product.url, timeout=60) as client:
        chat = Chat(client)
        for _, text in zip(range(turns), itertools.cycle(messages), strict=False):
            await timed(latencies, chat.send(text))
    first = [s * 1000 for s in latencies[:5]]
    last = [s * 1000 for s in latencies[-5:]]
    print(f"\n== (c) one conversation of {turns} turns")
    print(
        f"turns 1-5 median {statistics.median(first):.0f} ms; turns {turns - 4}-{turns} median "
        f"{statistics.median(last):.0f} ms; ratio {statistics.median(last) / statistics.median(first):.2f}"
    )


# --- (d) triage alone --------------------------------------------------------------------------------
def triage_latency(repeats: int = 200) -> None:
    """The engine as the app builds it (one torch thread), on messages of the bank cut or joined to size."""
    from safety.bank import symptom_examples
    from safety.cli import build_engine

    engine = build_engine(ROOT / "models" / "learned")
    texts = [e.text for e in symptom_examples()]
    print("\n== (d) triage alone, in-process (rules; rules + learned layer), one thread")
    for size in (300, 2000):
        joined = " ".join(texts)
        samples = [joined[i * 97 : i * 97 + size] for i in range(repeats)]
        for name, assess in (("rules", engine.rules.assess), ("rules + learned", engine.assess)):
            assess(samples[0])  # warm-up
            ms = []
            for text in samples:
                started = time.perf_counter()
                assess(text)
                ms.append(1000 * (time.perf_counter() - started))
            print(
                f"{size:>5} characters, {name:<16} p50 {statistics.median(ms):6.1f} ms, "
                f"p95 {percentile(ms, 0.95):6.1f} ms"
            )


# --- (e) flood -------------------------------------------------------------------------------------------
EMERGENCY = "my lips and tongue are swelling fast and my throat feels like it is closing"
FLOOD = "my chin has yellow pus and I feel feverish"


async def emergency_delivery_seconds(product, flood: int) -> tuple[float, int, int]:
    """Send `flood` red flags from one client while another patient reports an emergency; seconds from that
    emergency's reply to its first staff notification at the fakes, and the flood's 200s and 429s."""
    token = staff_api_token(product.environment(), "clinician", "bench-clinician", "a long bench password")
    staff = {"Authorization": f"Bearer {token}"}
    flooder, patient = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.9"}
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=product.url, timeout=120) as client:

        async def flood_one() -> None:
            response = await client.post("/api/chat", json={"text": FLOOD}, headers=flooder)
            statuses.append(response.status_code)

        limit = asyncio.Semaphore(16)

        async def bounded() -> None:
            async with limit:
                await flood_one()

        flooding = [asyncio.create_task(bounded()) for _ in range(flood)]
        await asyncio.sleep(1.0 if flood else 0)
        reply = (await client.post("/api/chat", json={"text": EMERGENCY}, headers=patient)).json()
        replied = time.perf_counter()
        conversation = reply["session_id"]
        escalation_id = None
        while escalation_id is None:
            listed = (await client.get("/admin/escalations", params={"limit": 500}, headers=staff)).json()
            escalation_id = next((e["id"] for e in listed if e["conversation_id"] == conversation), None)
            await asyncio.sleep(0.05)
        key = f"esc{escalation_id}-"
        async with httpx.AsyncClient(base_url=product.fakes.control_url, timeout=30) as fakes:
            while True:
                received = (await fakes.get("/received")).json()
                if any(h["idempotency_key"].startswith(key) for h in received["webhook"]) or any(
                    f"Ref {key}" in m["body"] for m in received["sms"]
                ):
                    break
                await asyncio.sleep(0.05)
        delay = time.perf_counter() - replied
        await asyncio.gather(*flooding)
    return delay, statuses.count(200), statuses.count(429)


def flood_section(flood: int) -> None:
    print(f"\n== (e) {flood} red-flag messages from one client; meanwhile another patient's emergency")
    for name, count in (("quiet product", 0), (f"during a flood of {flood}", flood)):
        with running_product(measuring=False) as product:
            delay, ok, limited = asyncio.run(emergency_delivery_seconds(product, count))
        flood_text = f"; flood replies: {ok} x 200, {limited} x 429" if count else ""
        print(f"{name:>26}: emergency at staff {delay:.2f} s after its reply{flood_text}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="abcdefgh", help="the sections to run, e.g. 'd' or 'abe'")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--conversations", type=int, default=80)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--publish-runs", type=int, default=5, help="(h): publishes measured per size")
    args = parser.parse_args()
    messages = patient_messages()
    if set(args.only) & set("abc"):
        with running_product() as product:
            if "a" in args.only:
                asyncio.run(capacity(product, messages, args.conversations, args.concurrency))
            if "b" in args.only:
                asyncio.run(open_loop(product, messages, args.rate, args.seconds))
            if "c" in args.only:
                asyncio.run(long_conversation(product, messages))
    if "d" in args.only:
        triage_latency()
    if "e" in args.only:
        flood_section(args.flood)
    if "f" in args.only:
        bench_texting.texting_latency(messages)
    if "g" in args.only:
        bench_texting.longest_answers_as_sms()
    if "h" in args.only:
        publish_to_live(args.publish_runs)


if __name__ == "__main__":
    main()
