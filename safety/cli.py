"""`python -m safety`: measure, explain and retrain triage without starting the product.

python -m safety check [--half held-out|train|both] [--misses]   figures on the labelled bank
python -m safety explain "my cheek is hot and the red is spreading" [--day 4]
python -m safety train                                          retrain the learned layer now
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from knowledge.clinic import load_clinic_profile
from safety.engine import TriageEngine

DEFAULT_LEARNED_DIR = Path(__file__).resolve().parent.parent / "var" / "learned"


def build_engine(learned_dir: Path, retrain: bool = False) -> TriageEngine:
    """The engine with every layer, as the app builds it (the learned layer loaded or trained)."""
    import torch

    from knowledge.embedding import SentenceTransformerEmbedder

    torch.set_num_threads(int(os.environ.get("ASSISTANT_TORCH_THREADS", "1")))
    embedder = SentenceTransformerEmbedder(os.environ.get("ASSISTANT_EMBEDDING_MODEL") or None)
    engine = TriageEngine(load_clinic_profile())
    engine.load_learned_layer(embedder, learned_dir, retrain)
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m safety", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learned-dir", type=Path, default=DEFAULT_LEARNED_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="figures on the project's labelled messages")
    check.add_argument("--half", choices=["held-out", "train", "both"], default="both")
    check.add_argument("--misses", action="store_true", help="list the misses (train half only)")
    explain = commands.add_parser("explain", help="what each layer made of one message")
    explain.add_argument("text")
    explain.add_argument("--day", type=int, help="the treatment day, when known")
    commands.add_parser("train", help="retrain the learned layer on labelled/train now")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if args.command == "train":
        engine = build_engine(args.learned_dir, retrain=True)
        print(f"trained: thresholds {engine.learned.thresholds}")  # type: ignore[union-attr]
        return 0
    engine = build_engine(args.learned_dir)
    if args.command == "explain":
        print(json.dumps(engine.explain(args.text, args.day), indent=2, ensure_ascii=False))
        return 0
    from safety.check import run

    halves = ["held-out", "train"] if args.half == "both" else [args.half]
    run(engine, halves, args.misses)
    return 0
