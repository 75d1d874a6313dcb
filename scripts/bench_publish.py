"""`make bench` section (d): publish-to-live, for the clinic's 54 articles and for 200.

For each size the real product runs (Rasa server + clinic app, fresh database seeded with that many
articles). An editor edits the makeup article (a new sentence in its opening paragraph) and submits it; a
clinician opens the review (the safety gate runs), then publishes. The clock runs from the publish request
until the public chat API, through Rasa and the answer action, replies with the new sentence. Also shown:
how long the publish request itself takes, and the safety gate on a cold and on a warm process.

The 146 extra articles are made from the real articles' sentences (none about makeup), shuffled into
three paragraphs each, so the index has the size and shape of a 200-article knowledge base while the
makeup question still has one right article.

    python -m scripts.bench_publish [--runs 5] [--sizes 54 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bot.launcher import Product
from bot.settings import Settings
from knowledge.articles import Article, article_to_text, load_articles
from scripts.common import ROOT, free_port, staff_api_token

ARTICLE = "makeup-after-treatment"
QUESTION = "can I wear makeup after microneedling?"
PASSWORD = "a long bench password"
NOT_MAKEUP = re.compile(r"make-?up|concealer|foundation|powder|tinted|cosmetic", re.IGNORECASE)


def knowledge_base(size: int, folder: Path) -> Path:
    """`size` articles in `folder`: the real ones, plus made-up ones from their non-makeup sentences."""
    real = load_articles(ROOT / "knowledge" / "articles")
    folder.mkdir(parents=True, exist_ok=True)
    for article in real:
        (folder / f"{article.id}.md").write_text(article_to_text(article), encoding="utf-8")
    sentences = [
        sentence
        for article in real
        for sentence in re.split(r"(?<=[.!?])\s+", article.body.replace("\n", " "))
        if len(sentence.split()) > 6 and not NOT_MAKEUP.search(sentence)
    ]
    chooser = random.Random(12)
    for number in range(1, size - len(real) + 1):
        paragraphs = [" ".join(chooser.sample(sentences, 3)) for _ in range(3)]
        made = Article(
            id=f"practice-note-{number:03d}",
            title=f"Practice note {number}",
            topic="general",
            stage="general",
            days=None,
            source_section="Practice notes",
            review_status="approved",
            reviewer="bench",
            version=1,
            body="\n\n".join(paragraphs),
        )
        (folder / f"{made.id}.md").write_text(article_to_text(made), encoding="utf-8")
    return folder


@contextlib.contextmanager
def product_with(articles: Path, var_dir: Path) -> Iterator[Product]:
    model = Path(os.environ["ASSISTANT_RASA_MODEL"])
    settings = Settings(
        _env_file=None, environment="test", port=free_port(), rasa_port=free_port(), var_dir=var_dir
    )
    extra = {
        "ASSISTANT_ENVIRONMENT": "test",
        "ASSISTANT_ARTICLES_DIR": str(articles),
        "ASSISTANT_LEARNED_DIR": str(model.parent / "learned"),
        "ASSISTANT_RATE_LIMIT_PER_CLIENT": "100000/minute",
        "ASSISTANT_RATE_LIMIT_NEW_SESSIONS": "100000/hour",
        "ASSISTANT_KNOWLEDGE_POLL_SECONDS": "2",
    }
    product = Product(model=model, settings=settings, extra_env=extra)
    try:
        product.start(log_dir=var_dir)
        yield product
    finally:
        product.stop()


def token(product: Product, role: str) -> dict[str, str]:
    made = staff_api_token(product.environment(), role, f"bench-{role}", PASSWORD)
    return {"Authorization": f"Bearer {made}"}


def chat_says(client: httpx.Client, text: str) -> bool:
    reply = client.post("/api/chat", json={"text": QUESTION, "session_id": None}).json()
    return any(text in message["text"] for message in reply["messages"] if message["kind"] == "answer")


def one_run(client: httpx.Client, editor: dict, clinician: dict, marker: str) -> dict[str, float]:
    head = client.get(f"/admin/articles/{ARTICLE}", headers=editor).json()["head"]
    opening, rest = head["body"].split("\n\n", 1)
    fields = {key: head[key] for key in ("title", "topic", "stage", "days", "source_section")}
    body = {**fields, "body": f"{opening} {marker}\n\n{rest}", "base_version": head["version"]}
    version = client.put(f"/admin/articles/{ARTICLE}", json=body, headers=editor).json()["head_version"]
    client.post(
        f"/admin/articles/{ARTICLE}/submit", json={"version": version}, headers=editor
    ).raise_for_status()
    started = time.perf_counter()
    review = client.get(f"/admin/articles/{ARTICLE}/review", headers=clinician, timeout=300).json()
    gate = time.perf_counter() - started
    assert review["passed"], review["refusals"]
    started = time.perf_counter()
    published = client.post(
        f"/admin/articles/{ARTICLE}/publish", json={"version": version}, headers=clinician
    )
    published.raise_for_status()
    request = time.perf_counter() - started
    while not chat_says(client, marker):
        if time.perf_counter() - started > 60:
            raise RuntimeError("the chat API did not answer with the new text within 60 s")
        time.sleep(0.05)
    return {"gate": gate, "request": request, "live": time.perf_counter() - started}


def measure(size: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as folder:
        articles = knowledge_base(size, Path(folder) / "articles")
        started = time.perf_counter()
        with product_with(articles, Path(folder) / "var") as product:
            start_seconds = time.perf_counter() - started
            editor, clinician = token(product, "editor"), token(product, "clinician")
            with httpx.Client(base_url=product.url, timeout=60) as client:
                passages = client.get("/api/health").json()["index_passages"]
                results = [
                    one_run(client, editor, clinician, f"Bench sentence {run} {time.time_ns()}.")
                    for run in range(runs)
                ]
    live = [r["live"] for r in results]
    print(
        f"{size:>4} articles ({passages} passages, product up in {start_seconds:.0f} s): "
        f"publish-to-live median {statistics.median(live):.2f} s (min {min(live):.2f}, max {max(live):.2f}, "
        f"{runs} runs); publish request median {statistics.median(r['request'] for r in results):.2f} s; "
        f"safety gate cold {results[0]['gate']:.1f} s, warm median "
        f"{statistics.median(r['gate'] for r in results[1:]) if runs > 1 else float('nan'):.2f} s"
    )


def publish_to_live(runs: int = 5, sizes: tuple[int, ...] = (54, 200)) -> None:
    print("\n== (d) publish-to-live: publish request -> /api/chat answers with the new text (via Rasa)")
    for size in sizes:
        measure(size, runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[54, 200])
    args = parser.parse_args()
    publish_to_live(args.runs, tuple(args.sizes))


if __name__ == "__main__":
    main()
