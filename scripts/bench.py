"""`make bench`: throughput and latency of the real product on this machine.

(a) capacity: N concurrent closed-loop conversations (5 turns, fresh sender each) through the clinic app's
    /api/chat, then the same load against Rasa's REST webhook alone; msg/s, latency percentiles, errors, RSS.
(b) latency at a realistic load: messages arriving at a fixed rate (default 10 msg/s for 60 s), open loop.
(c) per-turn latency over one long conversation (turn 1-5 against turn 46-50).
(d) publish-to-live for 54 and 200 articles (scripts/bench_publish.py; its own products): `--only publish`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
import uuid

import httpx
import yaml

from scripts.bench_publish import publish_to_live
from scripts.common import ROOT, rss_mb, running_product, summary_ms

TURNS = 5


def patient_messages() -> list[str]:
    """The project's own labelled questions (not the shared evaluation set)."""
    items = yaml.safe_load((ROOT / "knowledge" / "retrieval_eval.yml").read_text())
    return [item["question"] for item in items]


async def closed_loop(client: httpx.AsyncClient, path: str, body_for, conversations: int, concurrency: int):
    """`concurrency` workers running whole conversations back to back; returns (latencies, errors, secs)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(conversations))

    async def worker() -> None:
        nonlocal errors
        for _ in queue:
            sender = uuid.uuid4().hex
            for turn in range(TURNS):
                started = time.perf_counter()
                try:
                    response = await client.post(path, json=body_for(sender, turn))
                    response.raise_for_status()
                    latencies.append(time.perf_counter() - started)
                except httpx.HTTPError:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


async def capacity(product, messages: list[str], conversations: int, concurrency: int) -> None:
    cycle = itertools.cycle(messages)
    texts = [next(cycle) for _ in range(conversations * TURNS)]
    text_of = {}

    def pick(sender: str, turn: int) -> str:
        return text_of.setdefault((sender, turn), texts[len(text_of) % len(texts)])

    loads = {
        "clinic app /api/chat": (
            product.url,
            "/api/chat",
            lambda s, t: {"session_id": s, "text": pick(s, t)},
        ),
        "Rasa REST webhook alone": (
            product.rasa_url,
            "/webhooks/rest/webhook",
            lambda s, t: {"sender": s, "message": pick(s, t)},
        ),
    }
    throughput = {}
    print(
        f"\n== (a) capacity: {concurrency} concurrent conversations x {TURNS} turns, "
        f"{conversations} conversations"
    )
    for name, (base, path, body_for) in loads.items():
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await closed_loop(client, path, body_for, 2, 2)  # warm-up
            latencies, errors, seconds = await closed_loop(client, path, body_for, conversations, concurrency)
        throughput[name] = len(latencies) / seconds
        print(f"{name:>26}: {throughput[name]:.1f} msg/s, {summary_ms(latencies)}, errors {errors}")
    print(
        f"{'RSS':>26}: clinic app {rss_mb(product.processes['app'].pid):.0f} MB, "
        f"Rasa {rss_mb(product.processes['rasa'].pid):.0f} MB"
    )
    ratio = throughput["clinic app /api/chat"] / throughput["Rasa REST webhook alone"]
    print(f"{'throughput ratio':>26}: {ratio:.2f} x Rasa alone")


async def open_loop(product, messages: list[str], rate: float, seconds: float) -> None:
    latencies: list[float] = []
    errors = 0
    cycle = itertools.cycle(messages)
    senders = [uuid.uuid4().hex for _ in range(int(rate * seconds) // TURNS + 1)]

    async with httpx.AsyncClient(base_url=product.url, timeout=60) as client:

        async def send(index: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                body = {"session_id": senders[index // TURNS], "text": next(cycle)}
                (await client.post("/api/chat", json=body)).raise_for_status()
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                errors += 1

        tasks = []
        start = time.perf_counter()
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(index)))
        await asyncio.gather(*tasks)
    print(f"\n== (b) open loop: {rate:g} msg/s for {seconds:g} s through /api/chat")
    print(f"{len(latencies)} replies, {summary_ms(latencies)}, errors {errors}")


async def long_conversation(product, messages: list[str], turns: int = 50) -> None:
    latencies = []
    sender = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=product.url, timeout=60) as client:
        for turn, text in zip(range(turns), itertools.cycle(messages), strict=False):
            started = time.perf_counter()
            (await client.post("/api/chat", json={"session_id": sender, "text": text})).raise_for_status()
            latencies.append((turn, time.perf_counter() - started))
    first = [s * 1000 for t, s in latencies if t < 5]
    last = [s * 1000 for t, s in latencies if t >= turns - 5]
    print(f"\n== (c) one conversation of {turns} turns")
    print(
        f"turns 1-5 median {statistics.median(first):.0f} ms; turns {turns - 4}-{turns} median "
        f"{statistics.median(last):.0f} ms; ratio {statistics.median(last) / statistics.median(first):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--conversations", type=int, default=80)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    # Staff (issue 12): section (d), publish-to-live, alone with `--only publish`.
    parser.add_argument("--only", choices=("publish",), help="run one section only")
    parser.add_argument("--publish-runs", type=int, default=5, help="publishes measured per size")
    args = parser.parse_args()
    if args.only != "publish":
        messages = patient_messages()
        with running_product() as product:
            asyncio.run(capacity(product, messages, args.conversations, args.concurrency))
            asyncio.run(open_loop(product, messages, args.rate, args.seconds))
            asyncio.run(long_conversation(product, messages))
    publish_to_live(args.publish_runs)


if __name__ == "__main__":
    main()
